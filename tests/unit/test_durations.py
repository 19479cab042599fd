"""The durations file: missing is empty, a garbled one is refused with its name and the fix,
writes round-trip atomically, and a merge forgets only what is gone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noxlib.durations import durations_text, merge_durations, read_durations, write_durations
from noxlib.errors import UsageError


def test_missing_durations_file_is_empty(tmp_path: Path) -> None:
    assert read_durations(tmp_path / "nothing-here") == {}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ('["tests/a.py::t", 1.0]', "holds a JSON list, not an object"),
        ('"text"', "holds a JSON str, not an object"),
        ('{"tests/a.py::t": -0.5}', "test 'tests/a.py::t' has -0.5, not a number of seconds"),
        ('{"tests/a.py::t": "1.0"}', "test 'tests/a.py::t' has '1.0'"),
        ('{"tests/a.py::t": true}', "test 'tests/a.py::t' has True"),
        ('{"tests/a.py::t": null}', "test 'tests/a.py::t' has None"),
    ],
)
def test_unusable_durations_file_names_itself_and_the_fix(
    tmp_path: Path, text: str, why: str
) -> None:
    path = tmp_path / ".test_durations"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        read_durations(path)
    message = str(info.value)
    assert f"The durations file {path} cannot be used" in message
    assert why in message
    assert "Fix it, or delete it" in message


def test_durations_file_round_trips(tmp_path: Path) -> None:
    """Ints become floats; figures are kept to 4 decimals; the file is sorted, one id a line."""
    path = tmp_path / "sub" / ".test_durations"
    write_durations(path, {"tests/b.py::t": 2, "tests/a.py::t": 0.123456, "tests/a.py::u": 0})
    read = read_durations(path)
    assert read == {"tests/a.py::t": 0.1235, "tests/a.py::u": 0.0, "tests/b.py::t": 2.0}
    assert all(type(seconds) is float for seconds in read.values())
    assert list(json.loads(path.read_text())) == ["tests/a.py::t", "tests/a.py::u", "tests/b.py::t"]
    assert path.read_text().endswith("\n")


def test_the_file_is_what_json_writes_indented() -> None:
    """The same text as json.dumps(indent=1), whatever characters the ids hold."""
    figures = {"tests/ü.py::t[日本]": 1e-05, 'tests/a.py::t["q"\\\u2028]': 12.34567, "t.py::z": 3}
    expected = {k: round(float(v), 4) for k, v in sorted(figures.items())}
    assert durations_text(figures) == json.dumps(expected, indent=1)
    assert durations_text({}) == json.dumps({}, indent=1)


def test_durations_write_is_atomic(tmp_path: Path) -> None:
    """A reader that opened the old file keeps reading it whole while a new one is written; no
    temporary file is left behind."""
    path = tmp_path / ".test_durations"
    write_durations(path, {"tests/a.py::old": 1.0})
    old_text = path.read_text()
    with path.open() as reader:
        write_durations(path, {f"tests/a.py::new_{i}": 2.0 for i in range(100)})
        assert reader.read() == old_text
    assert set(read_durations(path)) == {f"tests/a.py::new_{i}" for i in range(100)}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".test_durations"]


def test_merge_durations_forgets_only_what_is_gone() -> None:
    """Ids gone from a file collected whole, and ids of deleted files, are dropped; ids of files
    this run did not collect whole (other groups, -k) keep their figures."""
    old = {
        "tests/unit/test_a.py::kept": 1.0,
        "tests/unit/test_a.py::removed": 2.0,
        "tests/unit/test_b.py::filtered_out": 3.0,
        "tests/slow/test_s.py::other_group": 40.0,
        "tests/unit/test_deleted.py::t": 5.0,
    }
    measured = {"tests/unit/test_a.py::kept": 1.5, "tests/unit/test_a.py::added": 0.5}
    merged = merge_durations(
        old,
        measured,
        collected=["tests/unit/test_a.py::kept", "tests/unit/test_a.py::added"],
        full_files=["tests/unit/test_a.py"],
        existing_file=lambda path: path != "tests/unit/test_deleted.py",
    )
    assert merged == {
        "tests/unit/test_a.py::kept": 1.5,
        "tests/unit/test_a.py::added": 0.5,
        "tests/unit/test_b.py::filtered_out": 3.0,
        "tests/slow/test_s.py::other_group": 40.0,
    }
    assert old["tests/unit/test_a.py::kept"] == 1.0  # the old figures are not modified
