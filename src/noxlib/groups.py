"""How the plugin tells a run's groups apart: a marker per group on the items under its
paths, and the ``-m`` expression that applies each group's own markers to its own tests.

Light on purpose: every pytest process of a run imports it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from noxlib.config import Group

# The selected groups, for the plugin to mark items with: {name: [absolute paths]} as JSON.
GROUPS_ENV = "NOXLIB_GROUPS"


def group_marker(name: str) -> str:
    """The marker the plugin puts on items under a group's paths (markers are identifiers)."""
    return "noxlib_group_" + name.replace("-", "_")


def marker_expression(groups: Sequence[Group]) -> str | None:
    """The ``-m`` expression that applies each group's own markers to its own tests."""
    if not any(g.markers for g in groups):
        return None
    if len(groups) == 1:
        return groups[0].markers
    parts = [
        f"({group_marker(g.name)} and ({g.markers}))" if g.markers else group_marker(g.name)
        for g in groups
    ]
    return " or ".join(parts)


def groups_for_plugin(groups: Sequence[Group], root: Path) -> str:
    """JSON the plugin reads to mark items by group: ``{name: [absolute paths]}``."""
    return json.dumps({g.name: [str((root / p).resolve()) for p in g.paths] for g in groups})
