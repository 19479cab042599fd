"""The --affected mechanics without nox or pytest: the selection rules, the diff parser,
failures first (the map and its file: test_coveragemap.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from noxlib import affected
from noxlib.affected import Rules, Selection, select
from noxlib.config import parse_config
from noxlib.coveragemap import CoverageMap, FileLines
from noxlib.errors import ConfigError, UsageError
from noxlib.gitdiff import FileChange, Hunk, parse_hunks, parse_name_status
from noxlib.machine import Machine
from noxlib.options import parse_options
from noxlib.plan import MODES, make_plan

OLD = textwrap.dedent(
    """\
    LIMIT = 3


    def small(x):
        return x < LIMIT


    def total(items):
        result = 0
        for item in items:
            result += item
        # a comment
        return (
            result
            * 2
        )
    """
)
TESTS = ("tests/test_m.py::test_small", "tests/test_m.py::test_total", "tests/test_n.py::test_n")


def old_map() -> CoverageMap:
    """small() run by test 0, total() by test 1; test 2 runs nothing of m.py."""
    lines = FileLines(
        {5: frozenset({0}), 9: frozenset({1}), 10: frozenset({1}), 11: frozenset({1})}
        | {13: frozenset({1})},
        outside=frozenset({1, 4, 8}),
    )
    return CoverageMap("c0ffee" * 6 + "abcd", TESTS, {"m.py": lines})


def choose(*changes: FileChange, cmap: CoverageMap | None = None) -> Selection:
    return select(cmap or old_map(), changes, lambda path: OLD, lambda path: None, Rules())


def kept(selection: Selection) -> set[str]:
    assert selection.everything is None, selection.everything
    return set(TESTS) - selection.skip


def modified(*hunks: Hunk) -> FileChange:
    return FileChange("m.py", "modified", hunks)


def test_a_changed_line_selects_the_tests_that_ran_it() -> None:
    assert kept(choose(modified(Hunk(5, 1)))) == {TESTS[0]}


def test_a_line_inside_a_multi_line_statement_selects_who_ran_the_statement() -> None:
    # Line 15 ("* 2") is never recorded: coverage records the statement at its first line, 13.
    assert kept(choose(modified(Hunk(15, 1)))) == {TESTS[1]}


def test_an_insertion_selects_the_tests_of_the_lines_around_it() -> None:
    # Lines inserted after line 11 (inside the loop), between two lines test 1 ran.
    assert kept(choose(modified(Hunk(11, 0)))) == {TESTS[1]}


def test_a_replaced_comment_selects_the_tests_of_its_neighbours() -> None:
    assert kept(choose(modified(Hunk(12, 1)))) == {TESTS[1]}


def test_a_changed_def_line_selects_who_ran_the_function_and_the_module() -> None:
    # The def line ran at import time (outside any test): every test of the module runs.
    assert kept(choose(modified(Hunk(4, 1)))) == {TESTS[0], TESTS[1]}


def test_a_module_level_change_selects_every_test_that_ran_the_module() -> None:
    assert kept(choose(modified(Hunk(1, 1)))) == {TESTS[0], TESTS[1]}


def test_a_module_no_test_ran_runs_everything_when_its_import_time_lines_change() -> None:
    cmap = CoverageMap("abc", TESTS, {"m.py": FileLines({}, frozenset({1}))})
    selection = choose(modified(Hunk(1, 1)), cmap=cmap)
    assert selection.everything is not None
    assert "ran outside any test" in selection.everything
    assert selection.skip == frozenset()


def test_a_changed_test_file_runs_whole_and_a_new_one_is_counted() -> None:
    selection = choose(
        FileChange("tests/test_m.py", "modified", (Hunk(1, 1),)),
        FileChange("tests/test_new.py", "untracked"),
    )
    assert kept(selection) == {TESTS[0], TESTS[1]}
    assert selection.new_test_files == ("tests/test_new.py",)
    assert selection.line(TESTS) == (
        "--affected: 2 of 3 tests (2 changed files; 1 new test file run whole; map from c0ffeec)"
    )


def test_a_new_module_selects_nothing_by_itself() -> None:
    assert kept(choose(FileChange("newmod.py", "untracked"))) == set()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (FileChange("tests/conftest.py", "modified"), "conftest.py changed (tests/conftest.py)"),
        (FileChange("pyproject.toml", "modified"), "configuration changed (pyproject.toml)"),
        (FileChange("tox.ini", "modified"), "configuration changed (tox.ini)"),
        (FileChange("m.py", "deleted"), "a file was deleted (m.py)"),
        (FileChange("data/x.csv", "modified"), "a file that is not Python changed (data/x.csv)"),
        (FileChange("helpers.py", "modified"), "helpers.py changed and the map has no line"),
    ],
)
def test_what_the_map_cannot_see_runs_everything(change: FileChange, why: str) -> None:
    selection = choose(change)
    assert selection.everything is not None
    assert selection.everything.startswith(why)
    assert selection.skip == frozenset()
    assert selection.line(TESTS).startswith(f"--affected: every test, because {why}")


def test_ignored_files_change_nothing() -> None:
    rules = affected.rules_for([".test_durations", "reports/"], ["docs/**", "*.md"], ["test_*.py"])
    changes = [
        FileChange(p, "untracked")
        for p in ("docs/a.rst", "README.md", "reports/x.json", ".test_durations", "a/b.pyc")
    ]
    selection = select(old_map(), changes, lambda p: OLD, lambda p: None, rules)
    assert selection.everything is None
    assert selection.changed == ()


def test_a_file_dirty_when_the_map_was_made_runs_all_its_tests_once_changed() -> None:
    base = old_map()
    cmap = CoverageMap(base.commit, TESTS, base.files, {"m.py": "hash-then"})
    change = modified(Hunk(5, 1))
    same = select(cmap, [change], lambda p: OLD, lambda p: "hash-then", Rules())
    other = select(cmap, [change], lambda p: OLD, lambda p: "hash-now", Rules())
    assert set(TESTS) - same.skip == set()
    assert set(TESTS) - other.skip == {TESTS[0], TESTS[1]}


def test_failures_of_the_last_run_of_the_session_go_first() -> None:
    history = [
        {"session": "tests", "failures": [{"nodeid": "a::old", "status": "failed"}]},
        {
            "session": "tests",
            "failures": [
                {"nodeid": "t.py::b", "status": "failed"},
                {"nodeid": "broken.py", "status": "error"},
            ],
        },
        {"session": "ci", "failures": [{"nodeid": "t.py::c", "status": "failed"}]},
    ]
    first = affected.last_failures(history, "tests")
    assert first == ["t.py::b", "broken.py"]
    ids = ["t.py::a", "broken.py::x", "t.py::b", "t.py::c", "broken.py::y"]
    order = affected.run_first(ids, first)
    assert [ids[i] for i in order] == [
        "broken.py::x",
        "t.py::b",
        "broken.py::y",
        "t.py::a",
        "t.py::c",
    ]
    assert affected.last_failures(history, "tests-parallel") == []
    # Run first, an order-dependent victim would pass without its polluter: it stays in place.
    victim = {"nodeid": "t.py::v", "status": "failed", "triage": "order-dependent"}
    ordered = [{"session": "tests", "failures": [victim, {"nodeid": "t.py::b"}]}]
    assert affected.last_failures(ordered, "tests") == ["t.py::b"]


def test_the_diff_parser_reads_old_sides() -> None:
    diff = textwrap.dedent(
        """\
        diff --git a/m.py b/m.py
        --- a/m.py
        +++ b/m.py
        @@ -5 +5 @@ def small(x):
        @@ -11,0 +12,2 @@ def total(items):
        @@ -20,3 +22,0 @@
        diff --git a/gone.py b/gone.py
        deleted file mode 100644
        --- a/gone.py
        +++ /dev/null
        @@ -1,2 +0,0 @@
        diff --git a/new.py b/new.py
        --- /dev/null
        +++ b/new.py
        @@ -0,0 +1 @@
        """
    )
    assert parse_hunks(diff) == {
        "m.py": (Hunk(5, 1), Hunk(11, 0), Hunk(20, 3)),
        "gone.py": (Hunk(1, 2),),
        "new.py": (Hunk(0, 0),),
    }
    assert parse_name_status("M\tm.py\nD\tgone.py\nA\tnew.py\n") == {
        "m.py": "modified",
        "gone.py": "deleted",
        "new.py": "added",
    }


def test_the_option_and_ci_refusing_it(tmp_path: Path) -> None:
    options, rest = parse_options(["--affected", "-x"])
    assert options.affected
    assert rest == ("-x",)
    (tmp_path / "tests").mkdir()
    config = parse_config({"groups": {"unit": {"paths": ["tests"]}}}, tmp_path, tmp_path / "p")
    machine = Machine(cpus=2, available_memory=2**34)
    with pytest.raises(UsageError, match="ci never selects: it runs every test"):
        make_plan(MODES["ci"], ["--affected"], {}, config, machine)
    plan = make_plan(MODES["tests"], ["--affected"], {}, config, machine)
    assert plan.options.affected


def test_the_settings_table(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    table = {
        "groups": {"unit": {"paths": ["tests"]}},
        "affected": {"map-file": "ci/map.json", "ignore": ["docs/**"]},
    }
    default = parse_config({"groups": table["groups"]}, tmp_path, tmp_path / "pyproject.toml")
    assert default.affected.record is False  # opt-in: the map costs ci about a fifth
    table["affected"]["record"] = True
    config = parse_config(table, tmp_path, tmp_path / "pyproject.toml")
    assert config.affected.record is True
    assert config.map_path == tmp_path / "ci" / "map.json"
    assert config.affected.ignore == ("docs/**",)
    bad = {"groups": {"unit": {"paths": ["tests"]}}, "affected": {"record": "yes", "ignor": []}}
    with pytest.raises(ConfigError) as caught:
        parse_config(bad, tmp_path, tmp_path / "pyproject.toml")
    assert "tool.noxlib.affected.record = 'yes': expected true or false" in str(caught.value)
    assert "tool.noxlib.affected.ignor = []: unknown key; did you mean 'ignore'?" in str(
        caught.value
    )
