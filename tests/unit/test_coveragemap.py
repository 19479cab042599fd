"""The --affected map without nox or pytest: built from coverage's contexts, its file round
trips compactly, and a bad file is refused with its name and the fix."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from noxlib import coveragemap, testrecords
from noxlib.errors import UsageError

TESTS = ("tests/test_m.py::test_small", "tests/test_m.py::test_total", "tests/test_n.py::test_n")


def test_the_map_file_round_trips_compactly(tmp_path: Path) -> None:
    contexts = {
        str(tmp_path / "m.py"): {5: ["", TESTS[0]], 9: [TESTS[1]], 10: ["static|" + TESTS[1]]},
        "/elsewhere/site.py": {1: [TESTS[0]]},
    }
    cmap = coveragemap.build_map(contexts, TESTS, tmp_path, "abc123", {"m.py": "h"})
    path = tmp_path / ".test_affected"
    coveragemap.write_map(path, cmap)
    data = json.loads(path.read_text())
    assert data["tests"] == list(TESTS)
    assert data["files"]["m.py"] == {"lines": [5, 0, 9, 1, 10, 1], "outside": [5]}
    assert list(data["files"]) == ["m.py"]  # a file outside the project is left out
    assert coveragemap.read_map(path) == cmap
    assert coveragemap.read_map(tmp_path / "none") is None


def test_an_older_map_is_told_apart_from_a_broken_one(tmp_path: Path) -> None:
    path = tmp_path / ".test_affected"
    path.write_text('{"format": "noxlib-affected-map", "version": 1}')
    with pytest.raises(coveragemap.OldMap, match=r"written by an older noxlib \(format 1\)"):
        coveragemap.read_map(path)


def records_in(tmp_path: Path, *processes: testrecords.Records) -> testrecords.Records:
    folder = tmp_path / "reach"
    for records in processes:
        records.write(folder)
    (folder / "torn.json").write_text('{"uses": ')  # a process cut short: ignored
    return testrecords.read_records(folder)


def test_a_wider_fixtures_lines_belong_to_every_test_that_uses_it(tmp_path: Path) -> None:
    fixture = testrecords.FIXTURE_CONTEXT + "db"
    contexts = {str(tmp_path / "setup.py"): {2: [fixture], 3: [TESTS[2]]}}
    uses = {TESTS[0]: ("db", "tmp_path"), TESTS[1]: ("db",)}
    records = records_in(tmp_path, testrecords.Records(uses), testrecords.Records({TESTS[2]: ()}))
    cmap = coveragemap.build_map(contexts, TESTS, tmp_path, "abc", records=records)
    assert cmap.records
    assert cmap.files["setup.py"].by_line == {2: frozenset({0, 1}), 3: frozenset({2})}
    # With a process's records missing, the fixture's users are not known: outside.
    partial = testrecords.Records(uses)
    blind = coveragemap.build_map(contexts, TESTS, tmp_path, "abc", records=partial)
    assert not blind.records
    assert blind.files["setup.py"].outside == frozenset({2})


def test_the_files_tests_opened_and_the_tests_that_started_processes(tmp_path: Path) -> None:
    uses = {t: () for t in TESTS}
    opened = {
        TESTS[0]: {str(tmp_path / "data" / "a.csv"), "/etc/hosts"},
        "": {str(tmp_path / "conf.json"), str(tmp_path / "m.py"), str(tmp_path / ".nox/x")},
    }
    records = testrecords.Records(uses, opened, {TESTS[1]})
    cmap = coveragemap.build_map({}, TESTS, tmp_path, "abc", records=records)
    assert cmap.opened == {"data/a.csv": frozenset({0})}
    assert cmap.opened_outside == frozenset({"conf.json"})  # imports and tools' files aside
    assert cmap.spawners == frozenset({1})
    path = tmp_path / ".test_affected"
    coveragemap.write_map(path, cmap)
    assert coveragemap.read_map(path) == cmap
    # A process started outside any test may serve every test.
    anyone = testrecords.Records(uses, {}, {""})
    assert coveragemap.build_map({}, TESTS, tmp_path, "a", records=anyone).spawners == {0, 1, 2}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "it is not valid JSON"),
        ("[]", "it is not a noxlib map"),
        ('{"format": "noxlib-affected-map", "version": 9}', "it has version 9"),
        ('{"format": "noxlib-affected-map", "version": 2}', "its content is malformed"),
        (
            '{"format": "noxlib-affected-map", "version": 2, "commit": "a", "tests": ["t"], '
            '"sets": [[5]], "files": {}}',
            "its content is malformed (IndexError: 5 is not an index below 1)",
        ),
    ],
)
def test_a_bad_map_file_is_an_error_that_names_it(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / ".test_affected"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        coveragemap.read_map(path)
    message = str(caught.value)
    assert message.startswith(f"The map file {path} (tool.noxlib.affected.map-file)")
    assert why in message
    assert "Delete it and run nox -s ci to write a new one" in message


def test_the_maps_of_a_ci_matrix_merge_by_test_id() -> None:
    one = coveragemap.CoverageMap(
        "abc",
        (TESTS[0], TESTS[2]),
        {"m.py": coveragemap.FileLines({5: frozenset({0}), 7: frozenset({1})}, frozenset({1}))},
        opened={"data.csv": frozenset({1})},
        records=True,
        vouched=frozenset({"tests/test_n.py"}),
    )
    two = coveragemap.CoverageMap(
        "abc",
        (TESTS[1],),
        {
            "m.py": coveragemap.FileLines({5: frozenset({0})}, frozenset({2})),
            "n.py": coveragemap.FileLines({1: frozenset({0})}),
        },
        spawners=frozenset({0}),
        records=True,
        vouched=frozenset({"tests/test_m.py"}),
    )
    merged = coveragemap.merge_maps([one, two])
    assert merged.tests == TESTS  # sorted, each once
    assert merged.files["m.py"].by_line == {5: frozenset({0, 1}), 7: frozenset({2})}
    assert merged.files["m.py"].outside == frozenset({1, 2})
    assert merged.files["n.py"].by_line == {1: frozenset({1})}
    assert merged.opened == {"data.csv": frozenset({2})}
    assert merged.spawners == frozenset({1})
    assert merged.records
    assert merged.vouched == {"tests/test_m.py", "tests/test_n.py"}
    # One shard without every test's records: the merged map has them for not every test.
    assert not coveragemap.merge_maps([one, replace(two, records=False)]).records
    # Files that were not the commit's, from every shard; one two shards saw differently
    # matches no text.
    dirty = coveragemap.merge_maps(
        [
            replace(one, dirty={"a.py": "1", "b.py": "2"}),
            replace(two, dirty={"b.py": "3", "c.py": "4"}),
        ]
    ).dirty
    assert dirty["a.py"] == "1"
    assert dirty["c.py"] == "4"
    assert dirty["b.py"] not in ("2", "3")


def test_the_map_leaves_out_tests_that_did_not_run_to_their_end_and_skipped_ones(
    tmp_path: Path,
) -> None:
    results = [
        ("a.py::passed", "passed"),
        ("a.py::failed", "failed"),
        ("a.py::xfailed", "xfailed"),
        ("b.py::skipped", "skipped"),  # where it does not skip, the map knows none of its code
        ("c.py::errored", "error"),
        ("c.py::timed_out", "timeout"),
    ]
    spec_path = coveragemap.write_map_spec(
        tmp_path,
        tmp_path / "map",
        tmp_path,
        ("c0ffee", {}),
        results,
        collected=[nodeid for nodeid, _ in results],
    )
    spec = json.loads(spec_path.read_text())
    mapped = [json.loads(line) for line in Path(spec["tests_file"]).read_text().splitlines()]
    assert sorted(mapped) == ["a.py::failed", "a.py::passed", "a.py::xfailed"]
    assert spec["vouched"] == ["a.py"]
