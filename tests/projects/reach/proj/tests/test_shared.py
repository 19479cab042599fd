from sharedlib import GREETING


def test_greeting():
    assert GREETING == "hello"
