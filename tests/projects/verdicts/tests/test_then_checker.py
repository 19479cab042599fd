"""The victim: it fails whenever test_holder ran before it in the same process."""

import os


def test_checker():
    assert "NOXLIB_DEMO_HELD" not in os.environ, "the environment holds NOXLIB_DEMO_HELD"
