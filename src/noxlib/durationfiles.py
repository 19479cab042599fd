"""Where a run reads and writes its tests' durations, so that running the tests never dirties
a clone.

Two files in pytest-split's format: the ``durations-file`` setting (``.test_durations``), which
a project may commit, and the local copy in the state folder (``.noxlib/durations.json``, never
committed). A run reads both; where a test is in both, the newer file's figure wins, so a
pulled or stored shared file updates the local loop. A run writes the shared file when it
exists and git does not track it (a CI cache restored it), or when asked with
``--store-durations`` (pytest-split's word). Otherwise the figures go to the local copy: a
tracked file is left as it is, and a project that has none gets no new file in its tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from noxlib.durations import read_durations
from noxlib.gitdiff import is_tracked

LOCAL_DURATIONS_FILE = "durations.json"


@dataclass(frozen=True)
class DurationFiles:
    shared: Path  # the durations-file setting
    local: Path  # in the state folder

    @classmethod
    def of(cls, root: Path, durations_file: str, state_dir: Path) -> DurationFiles:
        return cls(root / durations_file, state_dir / LOCAL_DURATIONS_FILE)

    def read(self) -> dict[str, float]:
        """Every recorded figure; the newer file's where both hold a test. UsageError for a
        file that is not a durations file."""
        present = [path for path in (self.shared, self.local) if path.is_file()]
        merged: dict[str, float] = {}
        for path in sorted(present, key=lambda p: p.stat().st_mtime_ns):
            merged.update(read_durations(path))
        return merged

    def target(self, *, store: bool) -> Path:
        """The file a run's figures go to: the shared one when ``store``, or when it exists and
        git does not track it; else the local copy."""
        if store or (self.shared.is_file() and not is_tracked(self.shared.parent, self.shared)):
            return self.shared
        return self.local
