import pytest


@pytest.fixture
def sides():
    return {"triangle": 3, "square": 4}
