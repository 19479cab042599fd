"""Named, timed phases; post phases run after failures, interrupts and SIGTERM."""

from __future__ import annotations

import os
import signal
import time

import pytest

from noxlib.pipeline import Pipeline


def test_phases_are_timed_in_order() -> None:
    pipeline = Pipeline(log=lambda _: None)
    pipeline.execute((("a", lambda: None), ("b", lambda: None)), post=(("c", lambda: None),))
    assert [(t.name, t.ok) for t in pipeline.timings] == [("a", True), ("b", True), ("c", True)]
    assert all(t.seconds >= 0 for t in pipeline.timings)


def test_post_phases_run_after_a_failing_step_and_the_error_is_raised() -> None:
    ran = []

    def boom() -> None:
        raise RuntimeError("tests failed")

    pipeline = Pipeline(log=lambda _: None)
    with pytest.raises(RuntimeError, match="tests failed"):
        pipeline.execute(
            (("pytest", boom), ("never", lambda: ran.append("never"))),
            post=(("reap", lambda: ran.append("reap")), ("report", lambda: ran.append("report"))),
        )
    assert ran == ["reap", "report"]
    assert [(t.name, t.ok) for t in pipeline.timings] == [
        ("pytest", False),
        ("reap", True),
        ("report", True),
    ]


def test_a_failing_post_phase_does_not_stop_the_next() -> None:
    ran = []
    logged: list[str] = []

    def broken() -> None:
        raise OSError("coverage data unreadable")

    with pytest.raises(OSError, match="unreadable"):
        Pipeline(log=logged.append).execute(
            (), post=(("combine", broken), ("report", lambda: ran.append("report")))
        )
    assert ran == ["report"]
    assert logged == ["noxlib: post phase 'combine' failed: coverage data unreadable"]


def test_keyboard_interrupt_still_runs_post_phases() -> None:
    ran = []

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Pipeline(log=lambda _: None).execute(
            (("pytest", interrupted),), post=(("reap", lambda: ran.append("reap")),)
        )
    assert ran == ["reap"]


def test_sigterm_unwinds_like_ctrl_c_and_the_handler_is_restored() -> None:
    ran = []
    before = signal.getsignal(signal.SIGTERM)

    def killed() -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        Pipeline(log=lambda _: None).execute(
            (("pytest", killed),), post=(("reap", lambda: ran.append("reap")),)
        )
    assert ran == ["reap"]
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_post_phases_waits_until_they_all_ran(sig: signal.Signals) -> None:
    ran = []
    logged: list[str] = []
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def reap() -> None:
        os.kill(os.getpid(), sig)  # a second Ctrl-C (or SIGTERM) while the reaper waits
        time.sleep(0.05)
        ran.append("reap")

    with pytest.raises(KeyboardInterrupt, match=sig.name):
        Pipeline(log=logged.append).execute(
            (), post=(("reap", reap), ("report", lambda: ran.append("report")))
        )
    assert ran == ["reap", "report"]
    assert logged == [f"noxlib: {sig.name} came during the post phases, which ran to the end"]
    assert {s: signal.getsignal(s) for s in before} == before


def test_an_interrupted_run_raises_its_own_interrupt_after_the_post_phases() -> None:
    ran = []

    def interrupted() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the interrupt comes before this ends

    def reap() -> None:
        os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C
        ran.append("reap")

    pipeline = Pipeline(log=lambda _: None)
    with pytest.raises(KeyboardInterrupt, match="signal SIGINT"):
        pipeline.execute(
            (("pytest", interrupted), ("never", lambda: ran.append("never"))),
            post=(("reap", reap), ("report", lambda: ran.append("report"))),
        )
    assert ran == ["reap", "report"]
    assert [(t.name, t.ok) for t in pipeline.timings] == [
        ("pytest", False),
        ("reap", True),
        ("report", True),
    ]


def test_a_post_phase_raising_keyboard_interrupt_does_not_skip_the_rest() -> None:
    ran = []

    def cut() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Pipeline(log=lambda _: None).execute(
            (), post=(("reap", cut), ("report", lambda: ran.append("report")))
        )
    assert ran == ["report"]
