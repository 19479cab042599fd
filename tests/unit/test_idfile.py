"""The one format of id files: any id round-trips, one line each, whatever characters it holds;
a line torn by a writer that died is skipped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from noxlib.idfile import append_id, encode, open_append, read_ids, write_ids

# Ids pytest can make once its id escaping is off: each breaks a file of plain lines.
ODD_IDS = [
    "tests/test_a.py::test_sep[\u2028]",  # LINE SEPARATOR: str.splitlines splits there
    "tests/test_a.py::test_sep[\u2029]",  # PARAGRAPH SEPARATOR
    "tests/test_a.py::test_nel[\x85]",  # NEXT LINE
    "tests/test_a.py::test_cr[a\rb]",
    "tests/test_a.py::test_lf[a\nb]",
    "tests/test_a.py::test_crlf[a\r\nb]",
    "tests/test_a.py::test_vt_ff[\x0b\x0c\x1c\x1d\x1e]",
    "tests/test_a.py::test_quotes[\"double\" 'single' \\back\\]",
    "tests/test_ü.py::test_naïve[日本語-😀]",
    "tests/test_a.py::test_nul[\x00]",
    "tests/test_a.py::test_lone_surrogate[\ud800]",
    "tests/test_a.py::test_spaces[ lead and trail ]",
    "",
]


def test_every_id_round_trips(tmp_path: Path) -> None:
    path = write_ids(tmp_path / "ids.jsonl", ODD_IDS[:-1])  # an empty id is no test
    assert read_ids(path) == ODD_IDS[:-1]
    data = path.read_bytes()
    assert data.count(b"\n") == len(ODD_IDS) - 1  # one line per id
    assert data.isascii()  # no separator but the newline, whatever str.splitlines thinks
    assert data.decode().splitlines() == [encode(i).rstrip("\n") for i in ODD_IDS[:-1]]


@pytest.mark.parametrize("nodeid", ODD_IDS)
def test_one_line_per_id(nodeid: str) -> None:
    line = encode(nodeid)
    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert len(line.splitlines()) == 1


def test_appended_ids_read_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "started.jsonl"
    fd = open_append(path)
    try:
        for nodeid in ODD_IDS[:4]:
            append_id(fd, nodeid)
            # No buffer: each id is in the file as soon as it is appended.
            assert read_ids(path)[-1] == nodeid
    finally:
        os.close(fd)
    assert read_ids(path) == ODD_IDS[:4]


@pytest.mark.parametrize("nodeid", ODD_IDS)
def test_encode_is_json_dumps(nodeid: str) -> None:
    assert encode(nodeid) == json.dumps(nodeid) + "\n"


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    """A writer killed half-way through its line leaves the start of a JSON string."""
    path = write_ids(tmp_path / "ids.jsonl", ["t.py::a", "t.py::b\u2028c"])
    with path.open("a", encoding="utf-8") as handle:
        handle.write(encode("t.py::the_last[\u2028]")[:-6])
    assert read_ids(path) == ["t.py::a", "t.py::b\u2028c"]


def test_lines_that_are_no_id_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "ids.jsonl"
    path.write_bytes(b'"t::a"\n\n5\n{"nodeid": "t::x"}\nplain text\n"t::b"\n\xff\xfe\n')
    assert read_ids(path) == ["t::a", "t::b"]
    assert read_ids(tmp_path / "missing.jsonl") == []


def test_write_ids_replaces_the_file_whole(tmp_path: Path) -> None:
    path = write_ids(tmp_path / "share.jsonl", ["t::a", "t::b"])
    write_ids(path, ["t::c"])
    assert read_ids(path) == ["t::c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["share.jsonl"]  # no partial left
