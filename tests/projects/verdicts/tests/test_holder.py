"""The polluter: it sets an environment variable and never takes it back."""

import os


def test_holder():
    os.environ["NOXLIB_DEMO_HELD"] = "1"


def test_neighbour():
    assert True
