"""What noxlib assumes for a project that has no settings: no ``[tool.noxlib]`` table, or no
pyproject.toml.

One group, ``all``, that names no paths: pytest collects what it collects when run alone (its
``testpaths`` setting, in whichever file the project keeps it, else the folder), so the run's
tests are plain ``pytest``'s. The project itself is installed when the folder is one (a
``[project]`` table, setup.py or setup.cfg), and the PEP 735 group ``test`` or ``tests`` when
pyproject.toml has one. ``Assumed.lines`` says all of it, for the banner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ALL = "all"
ALL_DESCRIPTION = "Every test pytest collects here (no settings)"
TEST_GROUP_NAMES = ("test", "tests")


@dataclass(frozen=True)
class Assumed:
    install: tuple[str, ...]
    dependency_groups: tuple[str, ...]
    lines: tuple[str, ...]  # what was assumed, one clause each


def assume(root: Path, document: Mapping[str, Any]) -> Assumed:
    """The settings noxlib assumes for the project at ``root``, whose pyproject.toml holds
    ``document`` (empty without one)."""
    is_project = "project" in document or any(
        (root / name).is_file() for name in ("setup.py", "setup.cfg")
    )
    install = (".",) if is_project else ()
    declared = document.get("dependency-groups", {})
    groups = tuple(name for name in TEST_GROUP_NAMES if name in declared)[:1]
    lines = [
        f"group {ALL} = what plain pytest collects here",
        f"install {' '.join(install)}" if install else "nothing installed (no project here)",
    ]
    if groups:
        lines.append(f"dependency group {groups[0]}")
    return Assumed(install, groups, tuple(lines))
