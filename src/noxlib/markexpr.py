"""A group's ``markers``, parsed by pytest's own ``-m`` expression parser before any venv exists.

pytest is imported only when a group has markers: its mark package costs some 60 ms to import,
which a project without markers should not pay on every ``nox`` start.
"""

from __future__ import annotations


def markers_problem(expression: str) -> str | None:
    """Why pytest would refuse ``expression`` as ``-m``, or None when it parses (or when pytest
    is not importable here: the session's pytest then judges it)."""
    try:
        from _pytest.mark.expression import Expression
    except ImportError:  # pragma: no cover - pytest is a dependency; an odd install lacks it
        return None
    try:
        Expression.compile(expression)
    except SyntaxError as exc:
        # pytest's message names the column: "at column 10: expected ...; got end of input".
        column = f"at column {exc.offset}: " if exc.offset else ""
        return f"{column}{exc.msg}"
    return None
