"""Fails on odd attempts: the run's first attempt fails, its first rerun passes."""

import os
from pathlib import Path


def test_fails_on_odd_attempts():
    counter = Path(__file__).parent.parent / f".attempts-{os.environ.get('NOXLIB_RUN_ID', 'none')}"
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    assert attempt % 2 == 0, f"attempt {attempt} is odd"
