"""pytest-timeout's stops told apart from other failures and deaths."""

from __future__ import annotations

from noxlib.timeouts import (
    banner_excerpt,
    is_timeout_failure,
    main_thread_frames,
    thread_timeout,
    timer_event,
)


def test_the_signal_methods_messages_old_and_new_are_timeouts() -> None:
    assert is_timeout_failure("Failed: Timeout (>4.0s) from pytest-timeout.")
    assert is_timeout_failure("Failed: Timeout >2.0s")  # pytest-timeout before 2.2
    assert not is_timeout_failure("AssertionError: Timeout must be positive")
    assert not is_timeout_failure("TimeoutError: the server did not answer")
    # A test's own message that quotes pytest-timeout is the test's failure, not a timeout.
    assert not is_timeout_failure("AssertionError: Timeout >30s")
    assert not is_timeout_failure("AssertionError: Failed: Timeout (>4.0s) from pytest-timeout.")


def test_a_death_past_a_thread_timer_is_a_timeout() -> None:
    events = [
        {"event": "selected"},
        timer_event("t.py::a", "thread", 4.0, now=100.0),
        timer_event("t.py::b", "thread", 4.0, now=100.5),
    ]
    assert thread_timeout(events, "t.py::b", died_at=104.6) == 4.0
    assert thread_timeout(events, "t.py::b", died_at=104.45) == 4.0  # within the slack
    assert thread_timeout(events, "t.py::b", died_at=102.0) is None  # died before its limit
    assert thread_timeout(events, "t.py::c", died_at=200.0) is None  # never had a timer


def test_only_the_thread_method_and_the_latest_timer_count() -> None:
    signal = [timer_event("t.py::a", "signal", 1.0, now=0.0)]
    assert thread_timeout(signal, "t.py::a", died_at=50.0) is None
    # Rerun after a crash: the new process's timer started later.
    rerun = [
        timer_event("t.py::a", "thread", 4.0, 0.0),
        timer_event("t.py::a", "thread", 4.0, 10.0),
    ]
    assert thread_timeout(rerun, "t.py::a", died_at=11.0) is None
    assert thread_timeout(rerun, "t.py::a", died_at=14.2) == 4.0


def test_a_torn_timer_event_is_no_timeout() -> None:
    assert thread_timeout([{"event": "timer", "nodeid": "a", "method": "thread"}], "a", 9.0) is None


LOG = """\
tests/test_timeouts.py F+++++++++++++++++++++++++++ Timeout +++++++++++++++++++++++++++
~~~~~~~~~~~~~~~~ Stack of Thread-1 (1401) ~~~~~~~~~~~~~~~~
  File "/usr/lib/python3.11/threading.py", line 995, in _bootstrap
~~~~~~~~~~~~~~~~ Stack of MainThread (1400) ~~~~~~~~~~~~~~~~
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "/venv/lib/python3.11/site-packages/_pytest/python.py", line 187, in pytest_pyfunc_call
    result = testfunction(**testargs)
  File "/src/proj/tests/test_timeouts.py", line 13, in test_sleeps
    time.sleep(30)
+++++++++++++++++++++++++++ Timeout +++++++++++++++++++++++++++
"""


def test_the_banner_excerpt_holds_the_stacks_and_the_main_threads_frames() -> None:
    excerpt = banner_excerpt("collected 3 items\n" + LOG)
    assert excerpt.startswith("+++")
    assert "Stack of MainThread" in excerpt
    frames = main_thread_frames(excerpt)
    assert frames[-1] == ["/src/proj/tests/test_timeouts.py", 13]
    assert ["/usr/lib/python3.11/threading.py", 995] not in frames  # another thread's
    assert banner_excerpt("no banner here\n") == ""
    assert main_thread_frames("") == []
