def test_real_failure():
    assert 1 + 1 == 3, "arithmetic is broken"
