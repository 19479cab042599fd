import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from record import record_process  # noqa: E402


def test_other():
    record_process()
