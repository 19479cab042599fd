def test_first_import():
    # The module's body, and build() with it, runs here: in this test's time.
    from calc.lazy import TABLE

    assert TABLE


def test_table_has_a():
    # The module is already imported: this test runs no line of build().
    from calc.lazy import TABLE

    assert TABLE["a"] == 1
