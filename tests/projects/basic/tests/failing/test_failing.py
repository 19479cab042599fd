import os
import time
from pathlib import Path

import pytest


@pytest.fixture
def says_goodbye():
    # Teardown runs only when pytest unwinds cleanly (Ctrl-C, or SIGTERM turned into one).
    yield
    marker = os.environ.get("SLEEP_MARKER")
    if marker:
        Path(marker + ".teardown").write_text("torn down")


def test_fails_first():
    assert os.environ.get("FAIL") != "1", "FAIL=1 asked for a failure"


def test_hangs_past_the_ci_timeout():
    if os.environ.get("HANG") == "1":
        time.sleep(60)


def test_sleeps_until_interrupted(says_goodbye):
    marker = os.environ.get("SLEEP_MARKER")
    if marker:
        Path(marker).write_text(str(os.getpid()))
        time.sleep(120)


def test_fails_last():
    assert os.environ.get("FAIL") != "1", "FAIL=1 asked for a failure"
