"""The --affected map without nox or pytest: built from coverage's contexts, its file round
trips compactly, and a bad file is refused with its name and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noxlib import coveragemap
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


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "it is not valid JSON"),
        ("[]", "it is not a noxlib map"),
        ('{"format": "noxlib-affected-map", "version": 9}', "it has version 9"),
        ('{"format": "noxlib-affected-map", "version": 1}', "its content is malformed"),
        (
            '{"format": "noxlib-affected-map", "version": 1, "commit": "a", "tests": ["t"], '
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
