"""Innocent tests between the polluter and its victim: the search must clear them."""

import pytest


@pytest.mark.parametrize("n", range(6))
def test_middle(n):
    assert n >= 0
