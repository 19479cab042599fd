from calc.limits import LIMIT, clamp


def test_limit_is_ten():
    # Reads the constant: runs no line of limits.py while the test runs.
    assert LIMIT == 10


def test_clamp_keeps_small_values():
    assert clamp(5) == 5
