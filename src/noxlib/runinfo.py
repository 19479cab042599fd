"""What a run says about itself (``run.json``), and whether CI shards belong to one matrix.

Each run writes ``run.json`` into its reports folder; ``combine`` reads one per CI shard and
refuses a set that does not belong together: a shard missing or given twice, another commit or
other uncommitted code, another session, Python, group list or noxlib version, another collected
set or plan, or a shard that never ran its tests. It compares what identifies the code, never
the folder of the checkout: CI runners check out at paths of their own.

Pure: json and the dataclasses below.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from noxlib.errors import UsageError
from noxlib.files import write_atomic
from noxlib.parts import parse_shard

RUN_FILE = "run.json"


@dataclass(frozen=True)
class PartRow:
    """One part (a shard, the serial process) in the report: tests, predicted and actual time."""

    name: str
    status: str
    tests: int
    predicted: float
    seconds: float
    attempts: int = 1
    problem: str = ""
    peak_rss: int = 0


@dataclass(frozen=True)
class RunInfo:
    """A run's description. ``shard`` is "K/N" (None when the run was not split across
    machines); ``plan`` the fingerprint of its split, the same on every shard of one matrix;
    ``code`` the commit and a digest of uncommitted Python files ("" outside git);
    ``collected`` a digest of what its parts collected, where every part collected everything;
    ``books`` the books' summary (books.Books.as_json)."""

    session: str
    groups: tuple[str, ...]
    shard: str | None
    plan: str
    root: str
    status: str
    wall_seconds: float
    parts: tuple[PartRow, ...]
    python: str = ""
    noxlib: str = ""
    code: str = ""
    collected: str = ""
    run_id: str = ""
    reason: str = ""  # why the status is what it is, when it is not "passed"
    books: dict[str, object] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return parse_shard(str(self.shard), RUN_FILE).index

    @property
    def total(self) -> int:
        return parse_shard(str(self.shard), RUN_FILE).total


def write_run_info(reports: Path, info: RunInfo) -> None:
    write_atomic(reports / RUN_FILE, json.dumps(asdict(info), indent=1, sort_keys=True))


def read_run_info(folder: Path) -> RunInfo:
    """The ``run.json`` of a reports folder; UsageError naming the folder and the fix when it
    does not exist, has none, or holds something else."""
    if not folder.is_dir():
        raise UsageError(
            f"{folder} (given to combine) does not exist or is no folder. Give combine the "
            "reports folder each shard's job uploaded (nox -s combine -- DIR ...)."
        )
    path = folder / RUN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        info = _from_json(data)
    except FileNotFoundError:
        raise UsageError(
            f"{folder} holds no {RUN_FILE}: it is not the reports folder of a noxlib run. Give "
            "combine the reports folder each shard's job uploaded."
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise UsageError(
            f"{path} is not a noxlib run description ({type(exc).__name__}: {exc}). Download "
            "that shard's reports folder again, or rerun its job."
        ) from None
    return info


def _from_json(data: dict[str, object]) -> RunInfo:
    """A RunInfo from ``data``; ValueError, KeyError or TypeError for what is none."""
    names = {f.name for f in fields(RunInfo)}
    values = {k: v for k, v in data.items() if k in names}
    groups = values["groups"]
    if not (isinstance(groups, list) and all(isinstance(g, str) for g in groups)):
        raise ValueError(f"groups {groups!r} is not a list of names")
    values["groups"] = tuple(groups)
    values["parts"] = tuple(PartRow(**row) for row in values["parts"])  # type: ignore[attr-defined]
    values["wall_seconds"] = float(values["wall_seconds"])  # type: ignore[arg-type]
    books = values.get("books", {})
    if not isinstance(books, dict) or not isinstance(books.get("tests", 0), int):
        raise ValueError(f"books {books!r} is not the books' summary")
    shard = values.get("shard")
    if shard is not None and not _is_shard(shard):
        raise ValueError(f"shard {shard!r} is not K/N")
    return RunInfo(**values)  # type: ignore[arg-type]


def _is_shard(shard: object) -> bool:
    if not isinstance(shard, str):
        return False
    try:
        parse_shard(shard, RUN_FILE)
    except UsageError:
        return False
    return True


# What must be the same on every shard of one matrix, and what to say when it is not.
_SAME = (
    ("session", "session", "run every shard with the same nox -s SESSION"),
    ("python", "Python", "run every shard on one Python version"),
    ("groups", "group list", "give every shard the same groups after --"),
    ("noxlib", "noxlib version", "install one noxlib version on every shard"),
    ("code", "code (commit and uncommitted files)", "run every shard from one commit, clean"),
)


def check_shard_set(infos: Sequence[tuple[Path, RunInfo]]) -> int:
    """Check that ``infos`` (reports folder, its run) are every shard of one matrix, each once,
    run alike; return N. Raises UsageError naming the shard, the field and the fix."""
    if not infos:
        raise UsageError("combine needs the reports folders of the shards: nox -s combine -- DIR…")
    unsharded = [str(folder) for folder, info in infos if info.shard is None]
    if unsharded:
        raise UsageError(
            f"Not the reports of a sharded run: {', '.join(unsharded)}. Each CI job runs with "
            "NOXLIB_SHARD=K/N (or the CI's own variables) and uploads its reports folder."
        )
    total = _one_total(infos)
    _each_once(infos, total)
    for name, label, fix in _SAME:
        _same(infos, name, label, fix)
    _same(
        infos,
        "collected",
        "collected set",
        "run every shard from one commit with one "
        "durations file (is collection random or machine-specific?)",
        skip_empty=True,
    )
    _ran_tests(infos)
    _same(
        infos,
        "plan",
        "plan",
        "run every shard from one commit with one durations file; a "
        "re-run of one shard must restore the durations the first attempt used",
    )
    return total


def _one_total(infos: Sequence[tuple[Path, RunInfo]]) -> int:
    totals = {info.total for _, info in infos}
    if len(totals) != 1:
        raise UsageError(f"The folders come from matrices of different sizes: {sorted(totals)}.")
    return totals.pop()


def _each_once(infos: Sequence[tuple[Path, RunInfo]], total: int) -> None:
    by_index: dict[int, list[Path]] = {}
    for folder, info in infos:
        by_index.setdefault(info.index, []).append(folder)
    twice = {k: v for k, v in by_index.items() if len(v) > 1}
    if twice:
        k, folders = min(twice.items())
        raise UsageError(
            f"Shard {k}/{total} is given twice: {', '.join(map(str, folders))}. Give each "
            "shard's reports folder once."
        )
    missing = [f"{k}/{total}" for k in range(1, total + 1) if k not in by_index]
    if missing:
        raise UsageError(
            f"Shard(s) {', '.join(missing)} missing: combine got {len(infos)} of {total} "
            "reports folders. A merge without them would look complete and is refused; "
            "download every shard's reports (a failed job uploads them too)."
        )


def _same(
    infos: Sequence[tuple[Path, RunInfo]], name: str, label: str, fix: str, skip_empty: bool = False
) -> None:
    values = [(folder, info, getattr(info, name)) for folder, info in infos]
    if skip_empty:
        values = [v for v in values if v[2]]
    if len({json.dumps(v, sort_keys=True, default=list) for _, _, v in values}) <= 1:
        return
    listed = "; ".join(
        f"shard {info.shard} ({folder}): {value!r}" for folder, info, value in values
    )
    raise UsageError(
        f"The shards do not belong to one run: their {label} differs ({listed}). To fix: {fix}."
    )


def _ran_tests(infos: Sequence[tuple[Path, RunInfo]]) -> None:
    tests = {folder: int(str(info.books.get("tests", 0))) for folder, info in infos}
    for folder, info in infos:
        unselected = info.books.get("unselected") or []
        # A shard may get no test only when the matrix has fewer tests than shards.
        enough = sum(tests.values()) >= len(infos)
        if tests[folder] == 0 and (unselected or enough):
            why = info.reason or info.status
            raise UsageError(
                f"Shard {info.shard} ({folder}) ran no test of its share: {why}. Its job's log "
                "says why; rerun that job, then combine again."
            )
