import time

import pytest


def test_sleeps_past_the_timeout():
    time.sleep(30)


@pytest.mark.timeout(method="thread")
def test_sleeps_past_the_timeout_thread_method():
    # The thread method prints the stacks and ends the whole pytest process with os._exit(1).
    time.sleep(30)
