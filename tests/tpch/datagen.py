"""TPC-H data, generated once per scale factor with tpchgen-cli and reused from a cache.

Every pytest process (serial run, each xdist worker, later runs) asks :func:`ensure_dataset`
for the same folder. The first one generates under an exclusive file lock, into a temporary
folder that is renamed into place only when complete; the others wait on the lock and then
find the finished folder. A folder that exists is therefore always complete, and a run killed
half-way leaves only a temporary folder, which the next generation removes.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from noxlib import locks

SCALE_ENV = "NOXLIB_TPCH_SCALE"
CACHE_ENV = "NOXLIB_TPCH_CACHE"
DEFAULT_SCALE = "0.01"
TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")
GENERATOR = "tpchgen-cli"
# Rows of lineitem, the largest table, at SF 1 (the spec's "SF x 6,000,000", approximately):
# no TPC-H query sums more rows than lineitem's into one value (compare.float_tolerance).
LINEITEM_ROWS_SF1 = 6_001_215

# Writes the eight <table>.csv files of ``scale`` into the given folder.
Generate = Callable[[str, Path], None]


class DataError(Exception):
    """The data cannot be had: a bad scale factor, a missing generator or a failed run."""


def scale_factor(env: Mapping[str, str]) -> str:
    """The scale factor from ``NOXLIB_TPCH_SCALE`` in ``env``, normalised for the cache key."""
    raw = env.get(SCALE_ENV, "").strip() or DEFAULT_SCALE
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):  # also false for NaN
        raise DataError(
            f"Invalid TPC-H scale factor {raw!r} from {SCALE_ENV}: expected a positive number "
            f"such as 0.01 (the default, about 10 MB) or 1 (about 1 GB)."
        )
    return f"{value:g}"  # "0.010" and "1e-2" share the cache folder of "0.01"


def lineitem_rows(scale: str) -> int:
    """About how many rows lineitem has at ``scale``: 60,013 at SF 0.01, where tpchgen-cli
    writes 60,175 (each order gets one to seven lines at random)."""
    return math.ceil(LINEITEM_ROWS_SF1 * float(scale))


def cache_root(project_root: Path, env: Mapping[str, str]) -> Path:
    """``NOXLIB_TPCH_CACHE`` if set, else ``.noxlib/cache/tpch`` of the project (gitignored,
    owned by the user: never a shared, world-writable /tmp path another user could plant)."""
    override = env.get(CACHE_ENV, "").strip()
    return Path(override) if override else project_root / ".noxlib" / "cache" / "tpch"


def is_complete(folder: Path) -> bool:
    return all((folder / f"{table}.csv").is_file() for table in TABLES)


def ensure_dataset(root: Path, scale: str, generate: Generate) -> Path:
    """The folder of the eight CSV tables of ``scale`` under ``root``, generating it with
    ``generate`` only if no process has done so before."""
    target = root / f"sf{scale}"
    if is_complete(target):  # the common case: no lock needed to read a finished folder
        return target
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    # noxlib's flock: the kernel drops it when its holder dies, so a killed run can never leave
    # the cache locked.
    with locks.held(root / f"sf{scale}.lock"):
        if is_complete(target):  # another worker finished while this one waited
            return target
        shutil.rmtree(target, ignore_errors=True)  # incomplete: someone deleted a table
        partial = root / f"sf{scale}.partial-{os.getpid()}"
        for stale in root.glob(f"sf{scale}.partial-*"):  # left by a killed generation
            shutil.rmtree(stale, ignore_errors=True)
        partial.mkdir(mode=0o700)
        generate(scale, partial)
        if not is_complete(partial):
            raise DataError(f"{GENERATOR} finished but {partial} lacks some of {TABLES}")
        partial.rename(target)  # atomic on one file system: readers see all or nothing
    return target


def generator_path() -> Path:
    """tpchgen-cli next to this Python (the session venv), else on PATH."""
    beside = Path(sys.executable).parent / GENERATOR
    if beside.is_file():
        return beside
    found = shutil.which(GENERATOR)
    if found is None:
        raise DataError(
            f"{GENERATOR} was not found next to {sys.executable} or on PATH. It is in "
            f"test-requirements of [tool.noxlib]; outside nox, pip install {GENERATOR}."
        )
    return Path(found)


def run_tpchgen(scale: str, folder: Path) -> None:
    """Generate CSV tables (with a header row) of ``scale`` into ``folder`` with tpchgen-cli."""
    argv = [str(generator_path()), "csv", "-s", scale, "-o", str(folder), "--quiet"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DataError(
            f"{' '.join(argv)} exited with code {done.returncode}:\n{done.stderr[-2000:]}"
        )
