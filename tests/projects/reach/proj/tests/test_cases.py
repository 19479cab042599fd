import pytest

from calc.cases import Bound, cases


@pytest.mark.parametrize("n", cases())
def test_case_is_small(n):
    assert n < 10


@pytest.mark.parametrize("bound", [Bound("5")], ids=["five"])
def test_bound_is_five(bound):
    assert bound.limit == 5
