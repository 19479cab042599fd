"""The --affected mechanics without nox or pytest: the selection rules, the diff parser,
failures first (the map and its file: test_coveragemap.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from noxlib import affected, runorder
from noxlib.affected import Rules, Selection, Tree, select
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


def old_map(**extra: object) -> CoverageMap:
    """small() run by test 0, total() by test 1; test 2 runs nothing of m.py."""
    lines = FileLines(
        {5: frozenset({0}), 9: frozenset({1}), 10: frozenset({1}), 11: frozenset({1})}
        | {13: frozenset({1})},
        outside=frozenset({1, 4, 8}),
    )
    return CoverageMap("c0ffee" * 6 + "abcd", TESTS, {"m.py": lines}, **extra)  # type: ignore[arg-type]


def choose(
    *changes: FileChange, cmap: CoverageMap | None = None, new: str | None = None, old: str = OLD
) -> Selection:
    tree = Tree(lambda path: old, lambda path: None, lambda path: new)
    return select(cmap or old_map(), changes, tree, Rules())


def kept(selection: Selection) -> set[str]:
    assert selection.everything is None, selection.everything
    return set(TESTS) - selection.skip


def everything(selection: Selection) -> str:
    assert selection.everything is not None, f"selected {set(TESTS) - selection.skip}"
    assert selection.skip == frozenset()
    return selection.everything


def modified(*hunks: Hunk) -> FileChange:
    return FileChange("m.py", "modified", hunks)


def replaced(line: int, text: str) -> tuple[FileChange, str]:
    """The change that replaces line ``line`` of OLD with ``text``, and the new text."""
    lines = OLD.splitlines()
    lines[line - 1] = text
    return modified(Hunk(line, 1, line, 1)), "\n".join(lines) + "\n"


def test_a_changed_line_selects_the_tests_that_ran_its_function() -> None:
    change, new = replaced(5, "    return x <= LIMIT")
    assert kept(choose(change, new=new)) == {TESTS[0]}


def test_a_change_anywhere_in_a_function_selects_whoever_ran_any_of_it() -> None:
    # Line 15 ("* 2") is never recorded, nor is the return at 13 in this map: a test that
    # ran the function's first lines may still see what the last one computes (a memo dict).
    cmap = CoverageMap("abc", TESTS, {"m.py": FileLines({9: frozenset({1})}, frozenset({8}))})
    change, new = replaced(15, "            * 3")
    assert kept(choose(change, new=new, cmap=cmap)) == {TESTS[1]}
    assert kept(choose(modified(Hunk(15, 1)), cmap=cmap)) == {TESTS[1]}  # new text unknown


def test_an_insertion_inside_a_function_selects_its_tests() -> None:
    lines = OLD.splitlines()
    new = "\n".join([*lines[:11], "        print(item)", *lines[11:]]) + "\n"
    assert kept(choose(modified(Hunk(11, 0, 12, 1)), new=new)) == {TESTS[1]}
    assert kept(choose(modified(Hunk(11, 0)))) == {TESTS[1]}  # new text unknown: neighbours


def test_a_comment_or_a_blank_line_selects_nothing() -> None:
    change, new = replaced(12, "        # another comment")
    assert kept(choose(change, new=new)) == set()
    change, new = replaced(2, "# a module comment")
    assert kept(choose(change, new=new)) == set()


@pytest.mark.parametrize(
    ("line", "text"),
    [(1, "LIMIT = 4"), (4, "def small(x, y=1):"), (7, "import os")],
)
def test_a_change_at_module_level_runs_every_test(line: int, text: str) -> None:
    # A constant a test imports, a signature, an import: each runs when the module is
    # imported, which is outside any test, so any test that imports it may see the change.
    change, new = replaced(line, text)
    assert everything(choose(change, new=new)).startswith(
        f"m.py changed at module level (line {line}"
    )


def test_a_function_added_or_code_moved_out_of_one_is_a_change_at_module_level() -> None:
    added = OLD + "\n\ndef small(x):\n    return False\n"  # shadows small()
    why = everything(choose(modified(Hunk(16, 0, 17, 4)), new=added))
    assert why.startswith("m.py changed at module level (line 19 now)")
    moved = "\n".join(OLD.splitlines()[:9]) + "\nresult = 1\n"  # out of total()
    assert everything(choose(modified(Hunk(10, 7, 10, 1)), new=moved)).startswith(
        "m.py changed at module level (line 10 now)"
    )


def test_a_cached_function_runs_every_test() -> None:
    old = "import functools\n\n\n@functools.lru_cache(maxsize=None)\ndef table():\n    return 1\n"
    cmap = CoverageMap("abc", TESTS, {"m.py": FileLines({6: frozenset({0})}, frozenset({1, 4}))})
    new = old.replace("return 1", "return 2")
    why = everything(choose(modified(Hunk(6, 1, 6, 1)), cmap=cmap, new=new, old=old))
    assert why.startswith("m.py changed in table, a cached function")


def test_a_function_that_also_ran_outside_any_test_runs_every_test() -> None:
    # Called at import time, or run by a subprocess (whose lines belong to no test).
    lines = FileLines({5: frozenset({0})}, frozenset({1, 4, 5}))
    cmap = CoverageMap("abc", TESTS, {"m.py": lines})
    change, new = replaced(5, "    return x <= LIMIT")
    assert "m.py changed in lines that ran outside any test" in everything(
        choose(change, cmap=cmap, new=new)
    )


def test_a_file_that_no_longer_parses_runs_every_test() -> None:
    change, new = replaced(5, "    return (x <")
    assert "m.py does not parse any more" in everything(choose(change, new=new))


def test_a_changed_test_file_runs_whole_and_a_new_one_is_counted() -> None:
    selection = choose(
        FileChange("tests/test_m.py", "modified", (Hunk(1, 1),)),
        FileChange("tests/test_new.py", "untracked"),
    )
    assert kept(selection) == {TESTS[0], TESTS[1]}
    assert selection.new_test_files == ("tests/test_new.py",)
    assert selection.line(TESTS) == (
        "--affected: 2 of the map's 3 tests (2 changed files; 1 new test file run whole; "
        "map from c0ffeec)"
    )


def choose_with_tree(change: FileChange, test_tree: dict[str, str]) -> Selection:
    tree = Tree(lambda path: OLD, lambda path: None, lambda path: None, lambda: test_tree)
    return select(old_map(), (change,), tree, Rules())


def test_a_changed_test_file_brings_the_tests_of_the_files_that_import_it() -> None:
    change = FileChange("tests/test_m.py", "modified", (Hunk(1, 1),))
    tree = {"tests/test_m.py": "", "tests/test_n.py": "from test_m import TestBase\n"}
    selection = choose_with_tree(change, tree)
    assert kept(selection) == set(TESTS)
    assert selection.why[TESTS[2]] == (
        "are in tests/test_n.py, which imports tests/test_m.py, which changed"
    )
    assert kept(choose_with_tree(change, {"tests/test_n.py": "import os\n"})) == {
        TESTS[0],
        TESTS[1],
    }


def test_a_changed_test_file_a_conftest_imports_runs_every_test() -> None:
    change = FileChange("tests/test_m.py", "modified", (Hunk(1, 1),))
    tree = {"tests/conftest.py": "from test_m import shared_fixture\n"}
    assert everything(choose_with_tree(change, tree)) == (
        "tests/test_m.py changed, and tests/conftest.py imports it: a conftest.py reaches "
        "every test below its folder"
    )


def test_a_new_module_brings_the_tests_of_its_package() -> None:
    # The package may list its own folder (pkgutil): whoever ran its code may see the module.
    files = {
        "src/pkg/__init__.py": FileLines({3: frozenset({0})}, frozenset({1})),
        "src/pkg/sub/a.py": FileLines({2: frozenset({1})}),
        "src/other/b.py": FileLines({2: frozenset({2})}),
        "src/quiet/c.py": FileLines({}, frozenset({1})),
    }
    cmap = CoverageMap("abc", TESTS, files)
    assert kept(choose(FileChange("src/pkg/new.py", "untracked"), cmap=cmap)) == {
        TESTS[0],
        TESTS[1],
    }
    assert kept(choose(FileChange("src/pkg/sub/new.py", "added"), cmap=cmap)) == {TESTS[1]}
    # Beside no measured module: whoever imports it changed too.
    assert kept(choose(FileChange("scripts/tool.py", "untracked"), cmap=cmap)) == set()
    quiet = choose(FileChange("src/quiet/d.py", "untracked"), cmap=cmap)
    assert "a new module of src/quiet, whose code ran only outside tests" in everything(quiet)


def test_a_data_file_brings_the_tests_that_opened_it_and_those_that_started_a_process() -> None:
    cmap = old_map(
        opened={"data/a.csv": frozenset({0})},
        opened_outside=frozenset({"data/conf.json"}),
        spawners=frozenset({2}),
        records=True,
    )
    assert kept(choose(FileChange("data/a.csv", "modified"), cmap=cmap)) == {TESTS[0], TESTS[2]}
    assert "opened outside any test (at import or collection)" in everything(
        choose(FileChange("data/conf.json", "modified"), cmap=cmap)
    )
    assert "no test opened it while the map was recorded" in everything(
        choose(FileChange("data/b.csv", "modified"), cmap=cmap)
    )
    # Without every test's records (a process crashed), nobody's reads are known.
    blind = old_map(opened={"data/a.csv": frozenset({0})}, records=False)
    assert "the map holds no record of the files tests opened" in everything(
        choose(FileChange("data/a.csv", "modified"), cmap=blind)
    )


def test_explain_says_what_brought_each_test_and_why_the_rest_may_go() -> None:
    cmap = old_map(opened={"data/a.csv": frozenset({2})}, records=True)
    change, new = replaced(5, "    return x <= LIMIT")
    selection = choose(change, FileChange("data/a.csv", "modified"), cmap=cmap, new=new)
    lines = selection.explain(TESTS, shown=1)
    assert lines[:4] == [
        "--explain: 1 test opened data/a.csv, which changed:",
        "    tests/test_n.py::test_n",
        "--explain: 1 test ran small in m.py, which changed:",
        "    tests/test_m.py::test_small",
    ]
    assert lines[-1].startswith("--explain: 1 test left out: none ran a line of a changed")
    many = choose(modified(Hunk(15, 1)), cmap=CoverageMap("a", TESTS, old_map().files))
    assert many.explain(TESTS, shown=0)[1] == "    ... and 1 more"
    assert choose(FileChange("conftest.py", "modified")).explain(TESTS) == [
        "--explain: no test is left out, because conftest.py changed (conftest.py)"
    ]


def test_files_with_no_selected_test_that_the_map_vouches_for_are_not_collected() -> None:
    cmap = old_map(vouched=frozenset({"tests/test_m.py", "tests/test_n.py", "tests/__init__.py"}))
    change, new = replaced(5, "    return x <= LIMIT")
    assert choose(change, cmap=cmap, new=new).uncollected == {"tests/test_n.py"}
    # A new module may be listed by a test file at collection time: collect everything.
    with_new = choose(change, FileChange("pkg_new.py", "untracked"), cmap=cmap, new=new)
    assert with_new.uncollected == frozenset()
    # A file the map does not vouch for (a test of it errored, or was not collected in ci).
    assert choose(change, new=new).uncollected == frozenset()


def test_a_file_is_vouched_for_when_every_test_collected_from_it_is_in_the_map() -> None:
    from noxlib.coveragemap import vouched_files

    collected = ["a.py::x", "a.py::y", "b.py::x", "c.py::x", "c.py::deselected"]
    assert vouched_files(collected, {"a.py::x", "a.py::y", "b.py::x", "c.py::x"}) == [
        "a.py",
        "b.py",
    ]


def test_explain_needs_affected() -> None:
    with pytest.raises(UsageError, match=r"--explain \(after --\) explains what --affected"):
        parse_options(["--explain"])
    assert parse_options(["--affected", "--explain"])[0].explain


def test_a_python_file_a_test_opened_brings_that_test() -> None:
    cmap = old_map(opened={"m.py": frozenset({2})}, records=True)
    change, new = replaced(5, "    return x <= LIMIT")
    assert kept(choose(change, cmap=cmap, new=new)) == {TESTS[0], TESTS[2]}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (FileChange("tests/conftest.py", "modified"), "conftest.py changed (tests/conftest.py)"),
        (FileChange("pyproject.toml", "modified"), "configuration changed (pyproject.toml)"),
        (FileChange("tox.ini", "modified"), "configuration changed (tox.ini)"),
        (FileChange("m.py", "deleted"), "a file was deleted (m.py)"),
        (FileChange("data/x.csv", "modified"), "a file that is not Python changed (data/x.csv)"),
        (FileChange("helpers.py", "modified"), "helpers.py changed and the map has no line"),
        (FileChange("../lib/x.py", "modified"), "../lib/x.py changed: it is outside the project"),
    ],
)
def test_what_the_map_cannot_see_runs_everything(change: FileChange, why: str) -> None:
    selection = choose(change)
    assert everything(selection).startswith(why)
    assert selection.line(TESTS).startswith(f"--affected: every test, because {why}")


def test_ignored_files_change_nothing() -> None:
    rules = affected.rules_for(
        [".test_durations", "reports/"], ["docs/**", "*.md", "../site/**"], ["test_*.py"]
    )
    changes = [
        FileChange(p, "untracked")
        for p in ("docs/a.rst", "README.md", "reports/x.json", ".test_durations", "a/b.pyc")
    ] + [FileChange("../site/index.html", "modified")]
    selection = select(old_map(), changes, Tree(lambda p: OLD, lambda p: None), rules)
    assert selection.everything is None
    assert selection.changed == ()


def test_a_file_dirty_when_the_map_was_made_is_compared_by_its_hash() -> None:
    cmap = old_map(dirty={"m.py": "hash-then"})
    change = modified(Hunk(5, 1))

    def with_hash(digest: str, *changes: FileChange) -> Selection:
        return select(cmap, changes, Tree(lambda p: OLD, lambda p: digest), Rules())

    assert kept(with_hash("hash-then", change)) == set()  # what was mapped, then and now
    assert "m.py differs from the text the map was made with" in everything(
        with_hash("hash-now", change)
    )
    # Reverted to the commit, git lists nothing: the hash still differs from the mapped text.
    assert "m.py differs from the text the map was made with" in everything(with_hash("hash-now"))
    assert kept(with_hash("hash-then")) == set()


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
    first = runorder.last_failures(history, "tests")
    assert first == ["t.py::b", "broken.py"]
    ids = ["t.py::a", "broken.py::x", "t.py::b", "t.py::c", "broken.py::y"]
    order = runorder.run_first(ids, first)
    assert [ids[i] for i in order] == [
        "broken.py::x",
        "t.py::b",
        "broken.py::y",
        "t.py::a",
        "t.py::c",
    ]
    assert runorder.last_failures(history, "tests-parallel") == []
    # Run first, an order-dependent victim would pass without its polluter: it stays in place.
    victim = {"nodeid": "t.py::v", "status": "failed", "triage": "order-dependent"}
    ordered = [{"session": "tests", "failures": [victim, {"nodeid": "t.py::b"}]}]
    assert runorder.last_failures(ordered, "tests") == ["t.py::b"]


def test_the_diff_parser_reads_both_sides() -> None:
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
        "m.py": (Hunk(5, 1, 5, 1), Hunk(11, 0, 12, 2), Hunk(20, 3, 22, 0)),
        "gone.py": (Hunk(1, 2, 0, 0),),
        "new.py": (Hunk(0, 0, 1, 1),),
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


@pytest.mark.parametrize(
    ("record", "fix"),
    [
        (True, "(nox -s ci writes it; or fetch CI's)"),
        (False, "while tool.noxlib.affected.record is off: set record = true under"),
    ],
)
def test_without_a_map_the_reason_says_how_to_get_one(
    tmp_path: Path, record: bool, fix: str
) -> None:
    from noxlib.entry import _affected_selection

    (tmp_path / "tests").mkdir()
    table = {"groups": {"unit": {"paths": ["tests"]}}, "affected": {"record": record}}
    config = parse_config(table, tmp_path, tmp_path / "p")
    machine = Machine(cpus=2, available_memory=2**34)
    plan = make_plan(MODES["tests"], ["--affected"], {}, config, machine)
    selection = _affected_selection(config, plan)
    assert selection is not None
    assert selection.everything is not None
    assert fix in selection.everything


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


def test_a_test_files_importers_are_looked_for_in_helper_folders_but_not_in_venvs(
    tmp_path: Path,
) -> None:
    files = {
        "tests/unit/test_m.py": "",
        "tests/helpers/kit.py": "import test_m\n",
        "noxfile.py": "",
        "tests/.venv/lib/site.py": "",
        "tests/env/pyvenv.cfg": "",
        "tests/env/lib/x.py": "",
        "m.py": "",
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    cmap = old_map()
    cmap = CoverageMap(cmap.commit, ("tests/unit/test_m.py::test_a",), cmap.files)
    assert set(affected._test_tree(tmp_path, cmap)) == {
        "tests/unit/test_m.py",
        "tests/helpers/kit.py",
        "noxfile.py",
    }


def test_a_measured_module_with_doctests_brings_its_doctests_and_the_tests_that_ran_it() -> None:
    # --doctest-modules: m.py is a test file and source at once.
    tests = (*TESTS, "m.py::m.small")
    cmap = CoverageMap(old_map().commit, tests, old_map().files)
    change, new = replaced(5, "    return x <= LIMIT")
    selection = select(cmap, (change,), Tree(lambda p: OLD, lambda p: None, lambda p: new), Rules())
    assert set(tests) - selection.skip == {TESTS[0], "m.py::m.small"}


@pytest.mark.parametrize("records", [True, False])
def test_a_function_no_measured_process_ran_brings_the_tests_that_started_processes(
    records: bool,
) -> None:
    # small() ran nowhere coverage looked: a child with a clean environment may run it.
    lines = FileLines({9: frozenset({1})}, outside=frozenset({1, 4, 8}))
    commit = old_map().commit
    cmap = CoverageMap(commit, TESTS, {"m.py": lines}, spawners=frozenset({2}), records=records)
    change, new = replaced(5, "    return x <= LIMIT")
    selection = choose(change, cmap=cmap, new=new)
    unseen = "small in m.py, which changed, ran in no measured process"
    if records:
        assert kept(selection) == {TESTS[2]}
        assert selection.why[TESTS[2]] == f"started a process, and {unseen}"
    else:
        assert everything(selection) == (
            f"{unseen}, and the map lost a process's records of who starts processes"
        )
