import pytest

from calc.cases import cases


@pytest.mark.parametrize("n", cases())
def test_case_is_small(n):
    assert n < 10
