from calc.cached import table


def test_table_has_one():
    assert table()["one"] == 1


def test_table_has_two():
    # table() is cached: its body ran in the test before this one.
    assert table()["two"] == 2
