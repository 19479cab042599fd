"""Small words of user messages, spelt once."""

from __future__ import annotations

from collections.abc import Sequence


def plural(count: int, word: str) -> str:
    """``1 worker``, ``2 workers``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def some(names: Sequence[str], shown: int) -> str:
    """The first ``shown`` of ``names``, then how many more: ``a, b, c and 2 more``."""
    listed = ", ".join(names[:shown])
    return listed + (f" and {len(names) - shown} more" if len(names) > shown else "")
