"""PEP 735 ``[dependency-groups]`` of the project, resolved into requirement strings.

Resolution is done by the ``dependency-groups`` package, the very function behind nox's own
``nox.project.dependency_groups``: a group names the same requirements here as in a noxfile
that calls nox directly (names normalised, ``{include-group = "..."}`` expanded, in order).
What this module adds is the error a user can act on: checked before resolving, each problem
names the group, the bad value, the file and the fix, where the package would say only
"Dependency group 'x' not found".
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from noxlib.errors import ConfigError

TABLE = "dependency-groups"
SETTING = "tool.noxlib.dependency-groups"


def normalize(name: str) -> str:
    """A group's name as PEP 735 compares it (PEP 503 normalisation)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve_groups(
    document: Mapping[str, object], wanted: Sequence[str], source: Path
) -> tuple[str, ...]:
    """The requirements of the dependency groups ``wanted`` (from ``tool.noxlib``) in the
    parsed pyproject ``document`` read from ``source``, includes expanded, in order.

    Raises ConfigError naming the group, the value, ``source`` and the fix when a wanted group
    or an included one does not exist, when includes form a cycle, or when an entry is not a
    valid requirement.
    """
    if not wanted:
        return ()
    table = document.get(TABLE)
    if not isinstance(table, dict):
        raise ConfigError(
            f"{SETTING} = {list(wanted)!r} in {source}, but the file has no [{TABLE}] table. "
            f'Add one (PEP 735), e.g. [{TABLE}] tests = ["pytest", "hypothesis"], or remove '
            f"the setting."
        )
    names = {normalize(name): name for name in table}
    problems = [
        _unknown_group(SETTING, name, names) for name in wanted if normalize(name) not in names
    ]
    problems += _include_problems(table, names)
    problems += _cycle_problems(table, names, wanted)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"Invalid dependency groups in {source}:\n{lines}")
    return _resolve(table, wanted, source)


def _unknown_group(where: str, name: str, names: Mapping[str, str]) -> str:
    guess = difflib.get_close_matches(normalize(name), list(names), n=1)
    hint = (
        f"did you mean '{names[guess[0]]}'?"
        if guess
        else "groups are: " + (", ".join(names.values()) or "none")
    )
    return f"{where} names '{name}': no such group in [{TABLE}]; {hint}"


def _include_problems(table: Mapping[str, object], names: Mapping[str, str]) -> list[str]:
    """Includes that name no group, and entries that are neither a string nor an include."""
    problems = []
    for group, entries in table.items():
        where = f"{TABLE}.{group}"
        if not isinstance(entries, list):
            problems.append(f'{where} = {entries!r}: expected a list, e.g. ["pytest"]')
            continue
        for entry in entries:
            if isinstance(entry, str):
                continue
            target = entry.get("include-group") if isinstance(entry, dict) else None
            if not (isinstance(entry, dict) and list(entry) == ["include-group"]) or not isinstance(
                target, str
            ):
                problems.append(
                    f"{where} has {entry!r}: expected a requirement string or "
                    '{include-group = "NAME"}'
                )
            elif normalize(target) not in names:
                problems.append(
                    _unknown_group(f'{where} {{include-group = "{target}"}}', target, names)
                )
    return problems


def _includes(entries: object) -> list[str]:
    if not isinstance(entries, list):
        return []
    return [
        normalize(e["include-group"])
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("include-group"), str)
    ]


def _cycle_problems(
    table: Mapping[str, object], names: Mapping[str, str], wanted: Sequence[str]
) -> list[str]:
    """A group that includes itself, directly or through others: the path, in the file's
    spelling, so the user sees which include to drop."""
    graph = {normalize(group): _includes(entries) for group, entries in table.items()}
    found: list[str] = []

    def visit(group: str, path: list[str]) -> None:
        for child in graph.get(group, []):
            if child in path:
                loop = [names[g] for g in [*path[path.index(child) :], child]]
                found.append(
                    f"{TABLE}.{names[child]} includes itself: {' -> '.join(loop)}; "
                    "remove one of these include-group entries"
                )
            elif child in graph:
                visit(child, [*path, child])

    for group in dict.fromkeys(normalize(w) for w in wanted):
        if group in graph:
            visit(group, [group])
    return list(dict.fromkeys(found))


def _resolve(table: Mapping[str, object], wanted: Sequence[str], source: Path) -> tuple[str, ...]:
    # nox's own resolver; imported here, not at the top, so a project without the setting
    # never loads it (nor packaging, which it imports).
    from dependency_groups import resolve
    from packaging.requirements import InvalidRequirement

    try:
        return tuple(resolve(table, *wanted))  # type: ignore[arg-type]
    except (InvalidRequirement, ValueError, TypeError, LookupError) as exc:
        raise ConfigError(
            f"Invalid dependency groups in {source}: [{TABLE}] {wanted!r}: {exc}. "
            'Each entry must be a PEP 508 requirement, e.g. "pytest>=8".'
        ) from None
