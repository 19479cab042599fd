"""The data cache: one generation per scale factor, complete or absent, never two at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from .datagen import TABLES, DataError, cache_root, ensure_dataset, scale_factor


class CountingGenerator:
    """Writes tiny stand-in tables slowly, counting its calls: the cache's mechanics are under
    test here, not tpchgen-cli (the query tests use the real thing)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay

    def __call__(self, scale: str, folder: Path) -> None:
        self.calls += 1
        for table in TABLES:
            time.sleep(self.delay / len(TABLES))
            (folder / f"{table}.csv").write_text(f"{table}_key\n1\n")


@pytest.mark.parametrize(
    ("raw", "expected"), [("", "0.01"), ("0.010", "0.01"), ("1e-2", "0.01"), (" 1 ", "1")]
)
def test_scale_factor_is_normalised_for_the_cache_key(raw: str, expected: str) -> None:
    assert scale_factor({"NOXLIB_TPCH_SCALE": raw}) == expected


@pytest.mark.parametrize("raw", ["0", "-1", "ten", "nan", "inf"])
def test_a_bad_scale_factor_names_value_and_source(raw: str) -> None:
    with pytest.raises(DataError, match=rf"'{raw}' from NOXLIB_TPCH_SCALE"):
        scale_factor({"NOXLIB_TPCH_SCALE": raw})


def test_cache_lives_in_the_project_unless_overridden(tmp_path: Path) -> None:
    assert cache_root(tmp_path, {}) == tmp_path / ".noxlib" / "cache" / "tpch"
    assert cache_root(tmp_path, {"NOXLIB_TPCH_CACHE": "/elsewhere"}) == Path("/elsewhere")


def test_generated_once_and_reused(tmp_path: Path) -> None:
    generate = CountingGenerator()
    first = ensure_dataset(tmp_path, "0.01", generate)
    second = ensure_dataset(tmp_path, "0.01", generate)
    assert first == second == tmp_path / "sf0.01"
    assert generate.calls == 1
    assert ensure_dataset(tmp_path, "0.1", generate) == tmp_path / "sf0.1"
    assert generate.calls == 2


def test_concurrent_workers_generate_once(tmp_path: Path) -> None:
    generate = CountingGenerator(delay=0.4)
    folders: list[Path] = []
    # flock locks belong to open files, so threads contend for it just as xdist workers do.
    workers = [
        threading.Thread(target=lambda: folders.append(ensure_dataset(tmp_path, "1", generate)))
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert generate.calls == 1
    assert folders == [tmp_path / "sf1"] * 3


def test_a_killed_generation_leaves_no_folder_and_is_redone(tmp_path: Path) -> None:
    def dies_half_way(scale: str, folder: Path) -> None:
        (folder / "region.csv").write_text("r\n")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ensure_dataset(tmp_path, "0.01", dies_half_way)
    assert not (tmp_path / "sf0.01").exists()
    generate = CountingGenerator()
    ensure_dataset(tmp_path, "0.01", generate)
    assert generate.calls == 1
    assert not list(tmp_path.glob("*.partial-*"))


def test_an_incomplete_folder_is_generated_again(tmp_path: Path) -> None:
    generate = CountingGenerator()
    folder = ensure_dataset(tmp_path, "0.01", generate)
    (folder / "lineitem.csv").unlink()
    ensure_dataset(tmp_path, "0.01", generate)
    assert generate.calls == 2
    assert (folder / "lineitem.csv").is_file()
