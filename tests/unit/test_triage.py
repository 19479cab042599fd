"""Triage and the root-cause digest: pure functions over result records."""

from __future__ import annotations

from pathlib import Path

import pytest

from noxlib.causes import (
    COLLECTION_ERROR,
    CONNECTION_REFUSED,
    CRASHED,
    IMPORT_ERROR,
    SERVER_DIED,
    TIMEOUT,
    cause_of,
    digest,
    exception_of,
    listed_tests,
    normalise,
    project_frame,
    render_digest,
)
from noxlib.polluter import Search
from noxlib.triage import (
    FAILS_ALWAYS,
    FLAKY,
    NOT_RERUN,
    ORDER_DEPENDENT,
    PARALLEL_ONLY,
    Evidence,
    Failure,
    annotate,
    choose_reruns,
    classify,
    company_of,
    from_annotated,
    judge,
    off_reason,
    render_failures,
    tolerated,
)

ROOT = Path("/src/proj")


def failed(
    nodeid: str, message: str, frames: list[list[object]], **extra: object
) -> dict[str, object]:
    """A result record as the plugin writes one for an exception in a test."""
    etype = message.split(":", maxsplit=1)[0]
    return {
        "nodeid": nodeid,
        "outcome": "failed",
        "when": "call",
        "longrepr": f"...\nE   {message}\n\n{frames[-1][0]}:{frames[-1][1]}: {etype}",
        "crash": {
            "path": f"/src/proj/{frames[-1][0]}",
            "lineno": frames[-1][1],
            "message": message,
        },
        "frames": frames,
        **extra,
    }


# --- normalisation and keys ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("record 17 is 3.5 s late", "record <n> is <n> s late"),
        ("object at 0x7f3a2b1c9d40 is gone", "object at <hex> is gone"),
        ("no file /tmp/pytest-of-ci/pytest-12/test_a0/data.json", "no file <tmp>"),
        ("cannot read /var/folders/xy/T/abc123/f.txt, retry", "cannot read <tmp>, retry"),
        (
            "refused by localhost:51234 and 127.0.0.1:8080",
            "refused by localhost:<port> and <n>.<n>:<port>",
        ),
        ("[::1]:4242 went away", "[::<n>]:<port> went away"),
        ("bind to port 8080 failed", "bind to port <port> failed"),
        ("id 1b4e28ba-2fa1-11d2-883f-0016d3cca427 unknown", "id <uuid> unknown"),
        ("sha256 of test_a2 differs", "sha256 of test_a2 differs"),  # digits inside names stay
        ("  many   spaces\nand lines ", "many spaces and lines"),
    ],
)
def test_normalise_takes_out_what_changes_between_runs(message: str, expected: str) -> None:
    assert normalise(message) == expected


def test_the_innermost_frame_in_the_projects_own_code() -> None:
    frames: list[list[object]] = [
        ["tests/test_x.py", 10],
        ["/src/proj/src/lib/io.py", 42],
        [".nox/ci/lib/python3.11/site-packages/requests/api.py", 7],
        ["/usr/lib/python3.11/json/decoder.py", 353],
        ["<frozen runpy>", 88],
    ]
    assert project_frame(frames, ROOT) == "src/lib/io.py:42"
    assert project_frame([["/opt/venv/lib/python3.11/site-packages/x.py", 1]], ROOT) is None
    assert project_frame([["../elsewhere/y.py", 3]], ROOT) is None
    assert project_frame([], ROOT) is None


def test_exception_type_and_message_from_each_kind_of_record() -> None:
    raised = failed("t.py::a", "ValueError: bad row 3", [["t.py", 5]])
    assert exception_of(raised) == ("ValueError", "bad row 3")
    # A bare assert: pytest's crash message has no type; the last longrepr line has it.
    bare = {
        **raised,
        "crash": {"message": "assert 1 == 2"},
        "longrepr": "E  assert\n\nt.py:8: AssertionError",
    }
    assert exception_of(bare) == ("AssertionError", "assert 1 == 2")
    collect = {
        "nodeid": "t.py",
        "outcome": "error",
        "when": "collect",
        "longrepr": 'E     File "t.py", line 1\nE       def broken(:\n'
        "E   SyntaxError: invalid syntax",
    }
    assert exception_of(collect) == ("SyntaxError", "invalid syntax")


def test_five_failures_with_one_cause_and_other_numbers_share_one_key() -> None:
    results = [
        failed(
            f"tests/test_r.py::test_record[{n}]",
            f"ValueError: record {n} has checksum {hex(n * 7919)} (cache /tmp/records-{n}/idx)",
            [["tests/test_r.py", 12], ["tests/helpers.py", 7]],
        )
        for n in (3, 14, 159, 2653, 58979)
    ]
    keys = {cause_of(r, ROOT).key for r in results}
    assert keys == {"ValueError: record <n> has checksum <hex> (cache <tmp>) at tests/helpers.py:7"}
    # Another raise site is another cause, even with the same message.
    elsewhere = failed(
        "tests/test_r.py::other",
        "ValueError: record 1 has checksum 0x1 (cache /tmp/r)",
        [["tests/test_r.py", 30]],
    )
    assert cause_of(elsewhere, ROOT).key not in keys


def test_known_causes_get_plain_names() -> None:
    timeout = {
        **failed("t.py::a", "Failed: Timeout (>4.0s) from pytest-timeout.", [["t.py", 9]]),
        "outcome": "timeout",
    }
    crashed = {
        "nodeid": "t.py::b",
        "outcome": "crashed",
        "when": "call",
        "longrepr": "The pytest process of part shard-2 died with SIGKILL while this test ran",
    }
    server = failed(
        "t.py::c",
        "noxlib.errors.ServerDiedError: server 'db' died with SIGABRT (exit code -6) after t.py::b",
        [["t.py", 3]],
    )
    server_section = {
        **failed("t.py::d", "OSError: broken pipe", [["t.py", 4]]),
        "sections": [
            ["noxlib servers", "server 'api' exited with code 3 during t.py::d\nlog tail"]
        ],
    }
    restarted = {
        **failed("t.py::e", "KeyError: 'x'", [["t.py", 5]]),
        "sections": [
            [
                "noxlib servers",
                "server 'api' exited with code 3 after t.py::d; restarted for t.py::e",
            ]
        ],
    }
    imported = failed("t.py::f", "ModuleNotFoundError: No module named 'yaml'", [["t.py", 1]])
    collect = {
        "nodeid": "u.py",
        "outcome": "error",
        "when": "collect",
        "longrepr": "E   SyntaxError: invalid syntax",
    }
    collect_import = {
        "nodeid": "v.py",
        "outcome": "error",
        "when": "collect",
        "longrepr": "ImportError while importing test module '/src/proj/v.py'.\n"
        "E   ModuleNotFoundError: No module named 'yaml'",
    }
    refused = failed(
        "t.py::g", "ConnectionRefusedError: [Errno 111] Connection refused", [["t.py", 6]]
    )
    refused_text = failed(
        "t.py::h",
        "requests.exceptions.ConnectionError: ... [Errno 111] Connection refused",
        [["t.py", 6]],
    )
    names = {
        r["nodeid"]: cause_of(r, ROOT)
        for r in (
            timeout,
            crashed,
            server,
            server_section,
            restarted,
            imported,
            collect,
            collect_import,
            refused,
            refused_text,
        )
    }
    assert names["t.py::a"].name == TIMEOUT
    assert names["t.py::a"].key == "timeout at t.py:9"
    assert names["t.py::b"].key == f"{CRASHED}: died with SIGKILL"
    assert names["t.py::c"].key == f"{SERVER_DIED}: 'db' SIGABRT"
    assert names["t.py::d"].key == f"{SERVER_DIED}: 'api' exit code 3"
    assert names["t.py::e"].name == "KeyError"  # the server was fine for this test
    assert names["t.py::f"].key == f"{IMPORT_ERROR}: No module named 'yaml'"
    assert names["v.py"].key == names["t.py::f"].key  # one missing module, one cause
    assert names["u.py"].key == f"{COLLECTION_ERROR}: SyntaxError: invalid syntax at u.py"
    assert names["t.py::g"].key == f"{CONNECTION_REFUSED} at t.py:6"
    assert names["t.py::h"].name == CONNECTION_REFUSED


# --- choosing and classifying -------------------------------------------------------------------


def verdict(parallel: bool = False, **evidence: object) -> tuple[str, str]:
    return classify(Evidence(**evidence), parallel)  # type: ignore[arg-type]


def test_fails_always_needs_every_rerun_alone_to_fail() -> None:
    assert verdict(alone=("failed", "timeout")) == (FAILS_ALWAYS, "")
    assert verdict(alone=("failed", "passed")) == (FLAKY, "")
    assert verdict(alone=("crashed", "passed"), parallel=True) == (FLAKY, "")
    # Another run at the same code and inputs saw it pass: flaky, whatever these reruns said.
    assert verdict(alone=("failed", "failed"), history="passed in run X") == (FLAKY, "")


def test_passing_alone_and_failing_in_company_is_order_dependent_serial_or_not() -> None:
    company = {"alone": ("passed", "passed"), "company": ("failed", "failed"), "company_size": 9}
    assert verdict(**company) == (ORDER_DEPENDENT, "")
    assert verdict(parallel=True, **company) == (ORDER_DEPENDENT, "")
    mixed = {**company, "company": ("failed", "passed")}
    assert verdict(**mixed) == (FLAKY, "")


def test_passing_alone_and_in_company_is_parallel_only_or_flaky() -> None:
    clean = {"alone": ("passed", "passed"), "company": ("passed",), "company_size": 3}
    assert verdict(parallel=True, **clean) == (PARALLEL_ONLY, "")
    assert verdict(parallel=False, **clean) == (FLAKY, "")
    first = {"alone": ("passed", "passed"), "company_size": 0}  # nothing ran before it
    assert verdict(parallel=True, **first) == (PARALLEL_ONLY, "")
    assert verdict(parallel=False, **first) == (FLAKY, "")


def test_a_rerun_that_skips_is_no_evidence() -> None:
    # Skips alone, fails in company: a confirmed failure, never tolerable.
    lonely = {"alone": ("skipped", "skipped"), "company": ("failed", "failed"), "company_size": 4}
    assert verdict(parallel=True, **lonely) == (FAILS_ALWAYS, "")
    assert verdict(alone=("skipped", "failed")) == (FAILS_ALWAYS, "")
    triaged, reason = verdict(parallel=True, alone=("skipped", "skipped"))
    assert triaged == NOT_RERUN
    assert "skipped or did not run" in reason
    assert verdict(alone=("skipped", "passed"), company_size=0)[0] == FLAKY


def test_without_its_company_rerun_a_pass_alone_is_not_a_verdict() -> None:
    triaged, reason = verdict(
        parallel=True,
        alone=("passed", "passed"),
        company_size=5,
        stopped="its company was not rerun: triage-budget spent",
    )
    assert triaged == NOT_RERUN  # order-dependent or flaky: unknown, so not tolerable
    assert reason == (
        "it passed every rerun alone, and its company was not rerun: triage-budget spent"
    )


def test_the_company_is_what_ran_before_it_in_its_process() -> None:
    results = [
        {"nodeid": "a.py::one", "outcome": "passed", "worker": "gw0"},
        {"nodeid": "a.py::two", "outcome": "passed", "worker": "gw1"},
        {"nodeid": "broken.py", "outcome": "error", "worker": "gw0"},
        {"nodeid": "b.py::three", "outcome": "failed", "worker": "gw0"},
        {"nodeid": "b.py::victim", "outcome": "failed", "worker": "gw0"},
        {"nodeid": "c.py::after", "outcome": "passed", "worker": "gw0"},
    ]
    assert company_of(results, "b.py::victim") == ["a.py::one", "b.py::three"]
    assert company_of(results, "a.py::one") == []
    assert company_of(results, "z.py::unknown") == []


def test_which_failures_are_rerun_and_why_the_others_are_not() -> None:
    results = [
        {"nodeid": "broken.py", "outcome": "error", "when": "collect"},
        *({"nodeid": f"t.py::{i}", "outcome": "failed", "when": "call"} for i in range(4)),
    ]
    chosen, skipped = choose_reruns(results, limit=2, off=None)
    assert chosen == ["t.py::0", "t.py::1"]
    assert skipped["broken.py"].startswith("collection error")
    assert skipped["t.py::2"] == skipped["t.py::3"] == "over triage-max (2 tests rerun)"
    chosen, skipped = choose_reruns(results, limit=50, off="--no-triage was given")
    assert chosen == []
    assert set(skipped.values()) == {"triage off: --no-triage was given"}


def test_why_triage_is_off() -> None:
    def off(enabled: bool = True, asked: bool | None = None, session: str = "ci", *args: str):
        return off_reason(
            enabled=enabled,
            asked=asked,
            session=session,
            sessions=("tests-parallel", "ci"),
            user_args=args,
        )

    assert off(True, None, "ci", "-k", "x") is None
    assert off(asked=False) == "--no-triage was given"
    assert "triage = false" in str(off(enabled=False))
    assert "triage = false" in str(off(enabled=False, asked=True))  # the setting wins
    assert "--pdb" in str(off(True, None, "ci", "--pdb"))
    # The serial inner loop triages only when asked, and says how to ask.
    assert "nox -s tests -- --triage says which are real" in str(off(session="tests"))
    assert off(asked=True, session="tests") is None


def test_judge_gives_each_failure_its_verdict_and_keeps_reasons() -> None:
    results = [
        failed("t.py::pair", "AssertionError: lock held", [["t.py", 3]]),
        failed("t.py::always", "AssertionError: no", [["t.py", 4]]),
        failed("t.py::victim", "AssertionError: held", [["t.py", 5]]),
        failed("t.py::many", "AssertionError: many", [["t.py", 7]]),
    ]
    found = Search(("t.py::holder",), 6, 4.1)
    evidence = {
        "t.py::pair": Evidence(alone=("passed", "passed")),
        "t.py::always": Evidence(alone=("failed", "failed")),
        "t.py::victim": Evidence(
            alone=("passed", "passed"), company=("failed", "failed"), company_size=8, search=found
        ),
    }
    skipped = {"t.py::many": "over triage-max (3 tests rerun)"}
    judged = {f.nodeid: f for f in judge(results, evidence, skipped, parallel=True, root=ROOT)}
    assert judged["t.py::pair"].triage == PARALLEL_ONLY
    assert judged["t.py::pair"].reruns == ("passed", "passed")
    assert judged["t.py::always"].verdict_line() == "fails-always: failed 2 of 2 reruns alone"
    victim = judged["t.py::victim"]
    assert victim.triage == ORDER_DEPENDENT
    assert victim.polluter == ("t.py::holder",)
    assert victim.verdict_line() == (
        "order-dependent: fails after t.py::holder (found in 6 reruns, 4.1 s)"
    )
    assert victim.record()["polluter"] == ["t.py::holder"]
    assert judged["t.py::many"].triage == NOT_RERUN
    assert judged["t.py::many"].reason.startswith("over triage-max")


def test_only_unconfirmed_failures_are_tolerable() -> None:
    cause = cause_of(failed("t.py::a", "AssertionError: x", [["t.py", 1]]), ROOT)
    flaky = Failure("t.py::a", "failed", FLAKY, cause)
    parallel = Failure("t.py::b", "failed", PARALLEL_ONLY, cause)
    real = Failure("t.py::c", "failed", FAILS_ALWAYS, cause)
    assert tolerated([flaky, parallel])
    assert not tolerated([flaky, real])
    assert not tolerated([])


def test_triage_survives_the_results_file_for_combine() -> None:
    results = [
        {"nodeid": "t.py::ok", "outcome": "passed"},
        failed("t.py::a", "AssertionError: x", [["t.py", 1]]),
        failed("t.py::b", "AssertionError: y", [["t.py", 2]]),
    ]
    victim = Evidence(
        alone=("passed",), company=("failed",), company_size=1, search=Search(("t.py::ok",), 0, 0)
    )
    judged = judge(
        results[1:],
        {"t.py::a": victim},
        {"t.py::b": "over triage-max (1 tests rerun)"},
        parallel=True,
        root=ROOT,
    )
    back = from_annotated(annotate(results, judged), ROOT)
    assert [(f.nodeid, f.triage, f.cause.key, f.reason, f.polluter) for f in back] == [
        (f.nodeid, f.triage, f.cause.key, f.reason, f.polluter) for f in judged
    ]
    assert back[0].polluter == ("t.py::ok",)
    untriaged = from_annotated(results, ROOT)
    assert [f.reason for f in untriaged] == ["not triaged on its CI shard"] * 2


# --- the digest ------------------------------------------------------------------------------


def test_the_digest_groups_counts_and_shortens_the_test_list() -> None:
    same = [
        judge(
            [failed(f"t.py::r[{n}]", f"ValueError: record {n}", [["t.py", 9]])],
            {f"t.py::r[{n}]": Evidence(alone=("failed",))},
            {},
            parallel=True,
            root=ROOT,
        )[0]
        for n in range(5)
    ]
    other = judge(
        [failed("t.py::z", "KeyError: 'k'", [["t.py", 3]])],
        {},
        {"t.py::z": "x"},
        parallel=True,
        root=ROOT,
    )[0]
    categories = digest([(f.nodeid, f.cause) for f in (other, *same)])
    assert [c.count for c in categories] == [5, 1]
    assert categories[0].key == "ValueError: record <n> at t.py:9"
    assert categories[0].message == "ValueError: record 0"
    text = "\n".join(render_digest([(f.nodeid, f.cause) for f in (other, *same)]))
    assert "### 5 tests: ValueError: record <n> at t.py:9" in text
    assert "`t.py::r[0]`, `t.py::r[1]`, `t.py::r[2]` and 2 more" in text
    assert "### 1 test: KeyError: 'k' at t.py:3" in text
    assert listed_tests(["a", "b"], 3) == "`a`, `b`"


def test_the_failures_section_gives_the_verdict_and_the_advice() -> None:
    cause = cause_of(failed("t.py::a", "AssertionError: x|y", [["t.py", 1]]), ROOT)
    failures = [
        Failure("t.py::a", "failed", PARALLEL_ONLY, cause, evidence=Evidence(("passed", "passed"))),
        Failure("t.py::b", "failed", FLAKY, cause, evidence=Evidence(("failed", "passed"))),
    ]
    text = "\n".join(render_failures(failures, reruns=2, tolerate=True))
    assert (
        "Triage (up to 2 reruns each, alone, then in the company it failed in): "
        "1 parallel-only, 1 flaky." in text
    )
    assert "Passed with warnings" in text
    assert (
        "| `t.py::a` | failed | parallel-only (alone: passed, passed) "
        "| AssertionError: x\\|y at t.py:1 |" in text
    )
    for advice in ("shared files", "ports"):
        assert advice in text
    assert "order-dependent failure" not in text
    assert "Passed with warnings" not in "\n".join(
        render_failures(failures, reruns=2, tolerate=False)
    )
    assert render_failures([], reruns=2, tolerate=False) == []
    victim = Failure(
        "t.py::c",
        "failed",
        ORDER_DEPENDENT,
        cause,
        evidence=Evidence(("passed",), ("failed",), 3, Search(("t.py::a",), 2, 0.5)),
    )
    ordered = "\n".join(render_failures([victim], reruns=2, tolerate=True))
    assert "not fixed by running serially (PYTEST_WORKERS=1)" in ordered
    assert "Passed with warnings" not in ordered  # confirmed: never tolerated
    assert not tolerated([victim])
