"""Small words of user messages, spelt once."""


def plural(count: int, word: str) -> str:
    """``1 worker``, ``2 workers``."""
    return f"{count} {word}{'' if count == 1 else 's'}"
