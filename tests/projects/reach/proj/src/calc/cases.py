def cases():
    # Called by tests/test_cases.py at import time, to parametrize its test.
    return [1, 2, 3]
