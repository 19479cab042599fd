"""The run's books: one final result per test; not-run with its source's reason; conflicts,
within one source or across sources, counted as the worse outcome and named; collection errors
once; sources that never chose their tests; the sentences the log and report show."""

from __future__ import annotations

from noxlib.books import SHOWN_IDS, Books, Conflict, Source, balance
from noxlib.outcomes import Outcome


def result(nodeid: str, outcome: str, **extra: object) -> dict[str, object]:
    return {"nodeid": nodeid, "outcome": outcome, "duration": 0.1, "when": "call", **extra}


def by_id(books: Books) -> dict[str, dict[str, object]]:
    return {str(r["nodeid"]): r for r in books.results}


# --- not-run ----------------------------------------------------------------------------------


def test_a_test_without_a_result_is_not_run_with_its_sources_reason() -> None:
    slow = Source(
        "shard-2",
        ["t.py::a", "t.py::b", "t.py::c"],
        [result("t.py::a", "passed")],
        unfinished="its time limit of 60 s",
    )
    other = Source("shard-1", ["u.py::x"], [])
    books = balance([slow, other])
    assert books.not_run == [
        ("t.py::b", "its time limit of 60 s"),
        ("t.py::c", "its time limit of 60 s"),
        ("u.py::x", "shard-1 finished without reporting it"),  # nothing explains it
    ]
    assert not books.balanced
    assert by_id(books)["t.py::b"] == {
        "nodeid": "t.py::b",
        "outcome": "not-run",
        "duration": 0.0,
        "worker": "shard-2",
        "when": "call",
        "longrepr": "Never ran: its time limit of 60 s.",
    }
    assert by_id(books)["t.py::a"] == result("t.py::a", "passed")
    assert books.tests == 4
    assert [r["nodeid"] for r in books.results] == ["t.py::a", "t.py::b", "t.py::c", "u.py::x"]


def test_a_test_another_source_reported_is_not_missing() -> None:
    """A relaunched part's second process ran what the first had not reached."""
    books = balance(
        [
            Source("shard-1", ["t::a", "t::b"], [result("t::a", "crashed")]),
            Source("shard-1 again", ["t::b"], [result("t::b", "passed")]),
        ]
    )
    assert books.balanced
    assert [r["outcome"] for r in books.results] == ["crashed", "passed"]


# --- conflicts --------------------------------------------------------------------------------


def test_a_conflict_across_sources_keeps_the_worse_result_and_names_it() -> None:
    passed = Source("shard-1", ["t::a"], [result("t::a", "passed", worker="gw0")])
    failed = Source("shard-2", ["t::a"], [result("t::a", "failed", longrepr="assert 0")])
    books = balance([passed, failed])
    (final,) = books.results
    assert final["outcome"] == "failed"
    assert final["longrepr"] == "assert 0"  # the worse result itself, not the first
    line = "t::a has 2 results (passed in shard-1, failed in shard-2); counted as failed"
    assert final["conflict"] == line
    assert books.conflicts == [
        Conflict("t::a", (("shard-1", "passed"), ("shard-2", "failed")), Outcome.FAILED)
    ]
    assert books.conflicts[0].line() == line
    assert not books.balanced
    assert books.not_run == []


def test_a_test_reported_twice_by_one_source_is_a_conflict() -> None:
    """A results line written twice (a plugin bug, a rerun in the same process)."""
    books = balance(
        [Source("serial", ["t::a"], [result("t::a", "timeout"), result("t::a", "error")])]
    )
    (conflict,) = books.conflicts
    assert conflict.kept is Outcome.TIMEOUT
    assert conflict.seen == (("serial", "timeout"), ("serial", "error"))
    assert [r["outcome"] for r in books.results] == ["timeout"]
    same = balance([Source("serial", ["t::b"], [result("t::b", "passed")] * 2)])
    assert [c.line() for c in same.conflicts] == [
        "t::b has 2 results (passed in serial, passed in serial); counted as passed"
    ]


def test_a_conflict_with_an_unknown_outcome_keeps_what_it_counts() -> None:
    books = balance([Source("s", ["t::a"], [result("t::a", "passed"), result("t::a", "weird")])])
    (conflict,) = books.conflicts
    assert conflict.kept is Outcome.ERROR
    assert books.results[0]["outcome"] == conflict.kept.value


# --- collection errors and unselected sources -------------------------------------------------


def test_a_collection_error_every_shard_reports_counts_once() -> None:
    error = {"nodeid": "tests/bad.py", "outcome": "error", "when": "collect", "duration": 0}
    sources = [
        Source(
            f"shard-{k}", [f"tests/t{k}.py::ok"], [error, result(f"tests/t{k}.py::ok", "passed")]
        )
        for k in (1, 2, 3)
    ]
    books = balance(sources)
    assert books.balanced
    assert books.conflicts == []
    assert [r["nodeid"] for r in books.results].count("tests/bad.py") == 1
    assert books.results[0] == error
    assert books.tests == 3  # a collection error is no test
    assert books.line() == "every collected test ran once (3 tests)"


def test_a_source_that_never_chose_its_tests_is_unselected() -> None:
    books = balance(
        [
            Source("shard-1", ["t::a"], [result("t::a", "passed")]),
            Source("shard-2", [], [], selected=False, problem="pytest exited with code 4"),
            Source("shard-3", [], [], selected=False),
        ]
    )
    assert books.unselected == [
        ("shard-2", "pytest exited with code 4"),
        ("shard-3", "no reason given"),
    ]
    assert not books.balanced
    assert books.problems() == [
        "shard-2 never chose its tests (pytest exited with code 4): which tests it lost is unknown",
        "shard-3 never chose its tests (no reason given): which tests it lost is unknown",
    ]


# --- what the books say -----------------------------------------------------------------------


def test_the_books_line_and_problems_name_every_kind() -> None:
    lost = [f"t::lost{i}" for i in range(SHOWN_IDS + 2)]
    books = balance(
        [
            Source("shard-1", ["t::late"], [], unfinished="the relaunch cap"),
            Source("shard-2", lost, [], unfinished="its time limit"),
            Source("shard-3", ["t::twice"], [result("t::twice", "passed")] * 2),
            Source("shard-4", [], [], selected=False, problem="it died"),
        ]
    )
    shown = ", ".join(lost[:SHOWN_IDS])
    problems = [
        "1 test never ran (the relaunch cap): t::late",
        f"{len(lost)} tests never ran (its time limit): {shown} and 2 more",
        "1 test reported more than once: t::twice",
        "shard-4 never chose its tests (it died): which tests it lost is unknown",
    ]
    assert books.problems() == problems
    assert books.line() == "the books do not balance: " + "; ".join(problems)


def test_balanced_books_say_so() -> None:
    both = [result("t::a", "skipped"), result("t::b", "xfailed")]
    books = balance([Source("serial", ["t::a", "t::b"], both)])
    assert books.balanced
    assert books.problems() == []
    assert books.line() == "every collected test ran once (2 tests)"
    assert balance([]).line() == "every collected test ran once (0 tests)"


def test_as_json_keeps_what_run_json_and_the_history_need() -> None:
    books = balance(
        [
            Source("shard-1", ["t::a", "t::b"], [result("t::a", "passed")], unfinished="-x"),
            Source("shard-2", ["t::a"], [result("t::a", "error")]),
            Source("shard-3", [], [], selected=False, problem="it died"),
        ]
    )
    assert books.as_json() == {
        "balanced": False,
        "tests": 2,
        "not_run": [["t::b", "-x"]],
        "conflicts": ["t::a has 2 results (passed in shard-1, error in shard-2); counted as error"],
        "unselected": [["shard-3", "it died"]],
        "never_collected": [],
    }
    assert balance([Source("s", ["t::a"], [result("t::a", "passed")])]).as_json() == {
        "balanced": True,
        "tests": 1,
        "not_run": [],
        "conflicts": [],
        "unselected": [],
        "never_collected": [],
    }


def test_shards_cut_from_different_collections_do_not_balance() -> None:
    # Each keeps its share of what it collected; with two collections, a test can fall between.
    agree = [
        Source("shard-1", ["t::a"], [result("t::a", "passed")], collection="d1"),
        Source("shard-2", ["t::b"], [result("t::b", "passed")], collection="d1"),
    ]
    assert balance(agree).balanced
    differ = [*agree[:1], Source("shard-2", ["t::b"], [result("t::b", "passed")], collection="d2")]
    books = balance(differ)
    assert not books.balanced
    assert books.disagreeing == ["shard-1", "shard-2"]
    assert "shard-1, shard-2 collected other tests than each other" in books.line()
    # Sources that collect only their own files are not compared.
    own_files = [*agree[:1], Source("shard-2", ["t::b"], [result("t::b", "passed")])]
    assert balance(own_files).balanced


def test_a_test_left_to_another_shard_that_none_took_never_ran() -> None:
    # shard-1 collected a.py::t[1] and a.py::t[2] in a file split by function and left them;
    # shard-2 took t[1] only.
    one = Source(
        "shard-1",
        ["a.py::t[0]"],
        [result("a.py::t[0]", "passed")],
        left=["a.py::t[1]", "a.py::t[2]"],
    )
    two = Source("shard-2", ["a.py::t[1]"], [result("a.py::t[1]", "passed")], left=["a.py::t[0]"])
    books = balance([one, two])
    assert not books.balanced
    assert books.not_run == [
        ("a.py::t[2]", "shard-1 collected it and left it to another shard, which did not take it")
    ]
    assert by_id(books)["a.py::t[2]"]["outcome"] == Outcome.NOT_RUN.value
    assert sorted(books.expected) == ["a.py::t[0]", "a.py::t[1]", "a.py::t[2]"]
    assert "1 test never ran (shard-1 collected it and left it to another shard" in books.line()


def test_tests_left_to_a_shard_that_took_them_balance() -> None:
    one = Source("shard-1", ["a.py::t[0]"], [result("a.py::t[0]", "passed")], left=["a.py::t[1]"])
    two = Source("shard-2", ["a.py::t[1]"], [result("a.py::t[1]", "failed")], left=["a.py::t[0]"])
    books = balance([one, two])
    assert books.balanced
    assert books.tests == 2


def test_a_file_every_shard_left_fails_the_run() -> None:
    # Shards by file: each left b.py to the other. No id of b.py is known anywhere, so only the
    # files' own record can tell.
    one = Source(
        "shard-1",
        ["a.py::t"],
        [result("a.py::t", "passed")],
        files_left=["b.py", "c.py"],
        files_kept=["a.py"],
    )
    two = Source(
        "shard-2",
        ["c.py::t"],
        [result("c.py::t", "passed")],
        files_left=["a.py", "b.py"],
        files_kept=["c.py"],
    )
    books = balance([one, two])
    assert not books.balanced
    assert books.never_collected == [("b.py", "shard-1")]
    assert books.line() == (
        "the books do not balance: 1 file collected by no shard (each shard pytest asked about "
        "it left it to another; its tests ran nowhere): b.py"
    )
    assert books.as_json()["never_collected"] == [["b.py", "shard-1"]]
    swapped = Source("shard-2", [], [], files_left=["a.py", "c.py"], files_kept=["b.py"])
    assert balance([one, swapped]).never_collected == [("c.py", "shard-1")]
    every = Source("shard-2", [], [], files_left=["a.py"], files_kept=["b.py", "c.py"])
    assert balance([one, every]).balanced


def test_a_file_written_after_a_shard_collected_proves_nothing() -> None:
    # A test of shard-1 wrote notes.jsonl into the tree; shard-2 collected after that and was
    # asked about it, shard-1 (its owner by path) never was.
    one = Source("shard-1", [], [], files_left=["b.py"], files_kept=["a.py"])
    two = Source("shard-2", [], [], files_left=["a.py", "notes.jsonl"], files_kept=["b.py"])
    assert balance([one, two]).balanced
