def test_always_fails():
    assert 2 + 2 == 5, "arithmetic is broken"
