import pytest


@pytest.fixture(scope="session")
def env():
    from calc.setup_env import make_env

    return make_env()
