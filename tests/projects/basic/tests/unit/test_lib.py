import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from record import record_process  # noqa: E402

import mylib  # noqa: E402


@pytest.mark.parametrize("n", [-3, 0, 5, 8])
def test_classify(n):
    record_process()
    assert mylib.classify(n) in {"negative", "zero", "positive"}


@pytest.mark.parametrize("n", [1, 2])
def test_parity(n):
    record_process()
    assert mylib.parity(n) in {"even", "odd"}


def test_in_a_subprocess():
    # Only measured when coverage reaches Python subprocesses (patch = subprocess).
    record_process()
    code = "import mylib, sys; print(mylib.from_subprocess(3))"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "odd-in-child"


@pytest.mark.slow
def test_deselected_by_the_group_markers():
    raise AssertionError("group 'unit' has markers = 'not slow'")
