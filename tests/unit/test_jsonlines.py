"""JSON-lines files read in one parse: the same values as one parse per line, torn and hand-made
lines skipped, and no two lines read as one value."""

from __future__ import annotations

import json

import pytest

from noxlib.jsonlines import values

WHOLE = [{"nodeid": "t.py::a", "outcome": "passed"}, "t.py::b\u2028", 3, None, [1, 2]]


def lines(*items: object) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def test_every_line_is_one_value() -> None:
    assert values(lines(*WHOLE)) == WHOLE
    assert values(b"") == []
    assert values(b"\n  \n") == []


@pytest.mark.parametrize(
    "bad",
    [
        b'{"nodeid": "t.py::torn", "outc',  # a writer that died half-way
        b'"t.py::torn',
        b'"a", "b"',  # two values on one line
        b"not json",
        b",",
        b"]",
    ],
)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_bad_line_is_skipped_and_the_rest_kept(bad: bytes, where: str) -> None:
    good = lines(*WHOLE).splitlines(keepends=True)
    at = {"first": 0, "middle": 2, "last": len(good)}[where]
    data = b"".join([*good[:at], bad + b"\n", *good[at:]])
    assert values(data) == WHOLE


def test_a_torn_line_is_not_joined_to_its_neighbour() -> None:
    """Joined with the next line, a torn string would read as one longer value."""
    data = b'"t.py::a\n' + lines('", "t.py::b')
    assert values(data) == ['", "t.py::b']
