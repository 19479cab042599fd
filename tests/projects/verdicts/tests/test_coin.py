"""Fails half the time, from a seeded random source: the seed is NOXLIB_DEMO_SEED and the
number of times this test has run in this checkout, so every run and rerun draws anew and a
seed repeats its sequence exactly."""

import os
import random
from pathlib import Path

COUNTER = Path(__file__).parent.parent / ".coin-draws"


def test_coin():
    draw = int(COUNTER.read_text()) + 1 if COUNTER.exists() else 1
    COUNTER.write_text(str(draw))
    seed = f"{os.environ.get('NOXLIB_DEMO_SEED', '0')}-{draw}"
    assert random.Random(seed).random() < 0.5, f"the coin came down tails (draw {draw})"
