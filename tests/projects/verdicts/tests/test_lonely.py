"""Skips when it runs alone (it needs other test modules imported), and fails beside them: a
rerun that skips is no evidence that it passes."""

import sys

import pytest


def test_needs_company():
    others = [name for name in sys.modules if name.startswith("test_") and name != __name__]
    if not others:
        pytest.skip("needs the company of other test modules")
    raise AssertionError(f"fails beside {len(others)} other test modules")
