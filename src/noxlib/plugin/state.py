"""What the plugin's pieces share: whether this process is part of a noxlib run, the groups
it marks, the stash keys of the part's state, and when the process started."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

import pytest

from noxlib.reaping.runs import RUN_DIR_ENV

if TYPE_CHECKING:
    from noxlib.parts import PartFiles

# When this process started, near enough: pytest loads its plugins first.
LOADED = time.monotonic()
PART_KEY: pytest.StashKey[PartFiles] = pytest.StashKey()
BATCH_KEY: pytest.StashKey[bool] = pytest.StashKey()


def in_noxlib_run() -> bool:
    return bool(os.environ.get(RUN_DIR_ENV))


def selected_groups() -> dict[str, list[str]]:
    from noxlib.groups import GROUPS_ENV  # inside a noxlib run only: pytest alone never pays

    try:
        groups = json.loads(os.environ.get(GROUPS_ENV, "{}"))
    except ValueError:
        return {}
    return groups if isinstance(groups, dict) else {}
