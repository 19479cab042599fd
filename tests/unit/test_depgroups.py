"""PEP 735 dependency groups: resolved as nox resolves them, and errors a user can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from noxlib.depgroups import resolve_groups
from noxlib.errors import ConfigError

SOURCE = Path("/src/app/pyproject.toml")
# Shaped like attrs' and packaging's own: a tests group that includes another, names in
# different spellings (PEP 735 compares them normalised).
GROUPS = {
    "dependency-groups": {
        "tests-core": ["pytest>=8", "hypothesis"],
        "Tests": [{"include-group": "tests_core"}, "pympler", "mypy; python_version >= '3.10'"],
        "docs": ["sphinx"],
        "all": [{"include-group": "tests"}, {"include-group": "docs"}],
    }
}


@pytest.mark.parametrize("wanted", [["tests"], ["all"], ["docs", "tests-core"], ["TESTS"]])
def test_groups_resolve_exactly_as_nox_resolves_them(wanted: list[str]) -> None:
    nox_project = pytest.importorskip("nox.project")
    expected = nox_project.dependency_groups(GROUPS, *wanted)
    assert resolve_groups(GROUPS, wanted, SOURCE) == expected


def test_includes_are_expanded_in_place() -> None:
    assert resolve_groups(GROUPS, ["tests"], SOURCE) == (
        "pytest>=8",
        "hypothesis",
        "pympler",
        'mypy; python_version >= "3.10"',
    )


def test_no_groups_wanted_reads_nothing() -> None:
    assert resolve_groups({}, [], SOURCE) == ()


def message(document: dict[str, object], wanted: list[str]) -> str:
    with pytest.raises(ConfigError) as info:
        resolve_groups(document, wanted, SOURCE)
    return str(info.value)


def test_an_unknown_group_is_named_with_a_guess_and_the_file() -> None:
    text = message(GROUPS, ["test"])
    assert str(SOURCE) in text
    assert "tool.noxlib.dependency-groups names 'test'" in text
    assert "no such group in [dependency-groups]; did you mean 'Tests'?" in text


def test_an_unknown_group_without_a_guess_lists_the_groups() -> None:
    text = message(GROUPS, ["zzz"])
    assert "groups are: tests-core, Tests, docs, all" in text


def test_an_unknown_include_group_names_the_group_that_includes_it() -> None:
    document = {"dependency-groups": {"tests": ["pytest", {"include-group": "lnit"}], "lint": []}}
    text = message(document, ["tests"])
    assert "dependency-groups.tests {include-group = \"lnit\"} names 'lnit'" in text
    assert "did you mean 'lint'?" in text


def test_a_cycle_is_shown_as_its_path() -> None:
    document = {
        "dependency-groups": {
            "a": [{"include-group": "b"}],
            "b": ["x", {"include-group": "a"}],
        }
    }
    text = message(document, ["a"])
    assert "dependency-groups.a includes itself: a -> b -> a" in text
    assert "remove one of these include-group entries" in text


def test_a_bad_entry_and_a_bad_requirement_are_named() -> None:
    bad_entry = {"dependency-groups": {"tests": [{"include": "x"}]}}
    assert "dependency-groups.tests has {'include': 'x'}: expected a requirement string" in (
        message(bad_entry, ["tests"])
    )
    bad_requirement = {"dependency-groups": {"tests": ["pytest >= = 8"]}}
    text = message(bad_requirement, ["tests"])
    assert "pytest >= = 8" in text
    assert "Each entry must be a PEP 508 requirement" in text


def test_a_missing_table_says_how_to_add_it() -> None:
    text = message({"project": {}}, ["tests"])
    assert "tool.noxlib.dependency-groups = ['tests']" in text
    assert "has no [dependency-groups] table" in text
    assert str(SOURCE) in text
