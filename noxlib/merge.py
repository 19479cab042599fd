"""Parts of a run, or the shards of a CI matrix, merged into one run.

Pure mechanics on files: results lines, JUnit XML, the durations file and each shard's
``run.json``. Coverage data is merged by coverage itself (noxlib/cover.py, in the session venv).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from noxlib.durations import merge_durations, read_durations, write_durations
from noxlib.errors import UsageError
from noxlib.files import write_atomic
from noxlib.parts import (
    PartFiles,
    read_lines,
)

Result = dict[str, object]
RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"
JUNIT_FILE = "junit.xml"
# Outcomes whose duration says what a test costs (a crash or a collection error says nothing).
TIMED = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "timeout")


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


def read_results(path: Path) -> list[Result]:
    """The result lines of ``path``; a line torn by a dead writer is skipped."""
    found: list[Result] = []
    with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
        for raw in handle:
            with contextlib.suppress(ValueError):
                record = json.loads(raw)
                if isinstance(record, dict) and isinstance(record.get("nodeid"), str):
                    found.append(record)
    return found


def merged_results(paths: Iterable[Path]) -> list[Result]:
    """The results of every file in ``paths``, one per node id: every shard reports the same
    collection error, and it is one error."""
    seen: dict[str, Result] = {}
    for path in paths:
        for result in read_results(path):
            seen.setdefault(str(result["nodeid"]), result)
    return list(seen.values())


def selected_event(files: PartFiles) -> dict[str, object]:
    """The first "selected" event of a part: how many tests it took, predicted seconds, plan."""
    for event in files.events():
        if event.get("event") == "selected":
            return event
    return {}


def collected(parts: Sequence[PartFiles]) -> tuple[list[str], list[str]]:
    """What the run collected before any selection (node ids, files): every part's, together.
    (Parts collect the same, or, split by file, each its own files.)"""
    ids: dict[str, None] = {}
    files: dict[str, None] = {}
    read: set[object] = set()  # digests of collections read: parts that agree are read once
    for part in parts:
        for event in part.events():
            if event.get("event") == "collected":
                if event.get("digest") in read:
                    break
                read.add(event.get("digest"))
                ids.update(dict.fromkeys(read_lines(part.collected)))
                files.update(dict.fromkeys(str(f) for f in event.get("files", [])))  # type: ignore[attr-defined]
                break
    return list(ids), list(files)


def disagreeing_parts(parts: Sequence[PartFiles]) -> list[str]:
    """Parts whose collection differs from the first part's: their plans do not fit together.
    Parts that split by file collect only their own files, so they are not compared."""
    digests = {}
    for files in parts:
        if selected_event(files).get("how") == "files":
            continue
        for event in files.events():
            if event.get("event") == "collected":
                digests[files.dir.name] = event.get("digest")
                break
    first = next(iter(digests.values()), None)
    return [name for name, digest in digests.items() if digest != first]


def measured_durations(results: Iterable[Result]) -> dict[str, float]:
    """Each test's setup + call + teardown seconds, from results that timed it."""
    return {
        str(r["nodeid"]): float(str(r.get("duration", 0.0)))
        for r in results
        if r.get("outcome") in TIMED and r.get("when") != "collect"
    }


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """The exclusive lock file ``lock``: two runs in one checkout update a file one at a time."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def update_durations(
    path: Path,
    results: Iterable[Result],
    *,
    collected_ids: Iterable[str] = (),
    whole_files: Iterable[str] = (),
    root: Path,
    lock: Path | None = None,
) -> int:
    """Merge ``results``' durations into the durations file at ``path``; return its size.

    Ids the run no longer collects from files it collected whole (``whole_files``), and ids of
    files gone from ``root``, are dropped. ``lock`` is the lock file that serialises updates
    (default: beside ``path``; noxlib keeps it in ``.noxlib/``, out of the user's tree).
    """
    with _locked(lock or path.with_name(f".{path.name.lstrip('.')}.lock")):
        try:
            old = read_durations(path)
        except UsageError:
            old = {}  # a garbled file is replaced: the run just measured what it needs
        merged = merge_durations(
            old,
            measured_durations(results),
            collected=collected_ids,
            full_files=whole_files,
            # Once per file, not once per test.
            existing_file=functools.cache(lambda rel: (root / rel).exists()),
        )
        write_durations(path, merged)
    return len(merged)


# --- JUnit XML --------------------------------------------------------------------------------


def junit_address(nodeid: str) -> tuple[str, str]:
    """(classname, name) that pytest's JUnit XML gives the test ``nodeid``: the parameters
    (which may hold ``::``, as in ``[::1]``) are set aside before the id is split."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


# What XML 1.0 cannot hold (terminal colour codes in an assertion message, say).
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` with every character XML cannot hold written as ``#x1B``, as pytest does."""
    return _NOT_XML.sub(lambda m: f"#x{ord(m.group()):02X}", text)


_JUNIT_TAG = {"failed": "failure", "timeout": "failure", "error": "error", "crashed": "error"}


def _case_for(result: Result) -> ET.Element:
    """A testcase for a result that no JUnit file holds (its process died before writing)."""
    classname, name = junit_address(str(result["nodeid"]))
    case = ET.Element(
        "testcase", classname=classname, name=name, time=f"{result.get('duration', 0):.3f}"
    )
    outcome = str(result.get("outcome"))
    text = xml_safe(str(result.get("longrepr", "")))
    if outcome in _JUNIT_TAG:
        child = ET.SubElement(case, _JUNIT_TAG[outcome], message=f"{outcome}: {text[:200]}")
        child.text = text
    elif outcome in ("skipped", "xfailed"):
        ET.SubElement(case, "skipped", message=outcome)
    return case


def merge_junit(files: Iterable[Path], results: Iterable[Result], out: Path) -> int:
    """Write one JUnit XML at ``out`` with the testcases of ``files`` and, for every result
    that none of them holds, a testcase made from the result. Returns the number of cases."""
    cases: list[ET.Element] = []
    for path in files:
        with contextlib.suppress(FileNotFoundError, ET.ParseError):
            cases += list(ET.parse(path).getroot().iter("testcase"))
    present = {(c.get("classname", ""), c.get("name", "")) for c in cases}
    for result in results:
        if result.get("when") == "collect":
            continue  # pytest's own JUnit already has the collection error of each shard
        if junit_address(str(result["nodeid"])) not in present:
            cases.append(_case_for(result))
    suite = ET.Element("testsuite", name="pytest", tests=str(len(cases)))
    counts = {"failure": 0, "error": 0, "skipped": 0}
    total = 0.0
    for case in cases:
        suite.append(case)
        total += float(case.get("time", "0") or 0)
        for tag in counts:
            if case.find(tag) is not None:
                counts[tag] += 1
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    suite.set("time", f"{total:.3f}")
    root = ET.Element("testsuites")
    root.append(suite)
    write_atomic(out, ET.tostring(root, encoding="unicode", xml_declaration=True))
    return len(cases)


def write_results(path: Path, results: Iterable[Result]) -> None:
    write_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in results))


# --- a run's description, and the shards of a CI matrix -----------------------------------------


@dataclass(frozen=True)
class RunInfo:
    """What a run leaves in its reports folder about itself (``run.json``), for ``combine``."""

    session: str
    groups: tuple[str, ...]
    shard: str | None  # "K/N", None when the run was not split across machines
    plan: str  # the fingerprint of the split, the same on every shard of one matrix
    root: str
    status: str
    wall_seconds: float
    parts: tuple[PartRow, ...]


def write_run_info(reports: Path, info: RunInfo) -> None:
    write_atomic(reports / RUN_FILE, json.dumps(asdict(info), indent=1, sort_keys=True))


def read_run_info(folder: Path) -> RunInfo:
    """The ``run.json`` of a reports folder; UsageError naming the folder when it has none."""
    path = folder / RUN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RunInfo(
            session=data["session"],
            groups=tuple(data["groups"]),
            shard=data["shard"],
            plan=data["plan"],
            root=data["root"],
            status=data["status"],
            wall_seconds=float(data["wall_seconds"]),
            parts=tuple(PartRow(**row) for row in data["parts"]),
        )
    except FileNotFoundError:
        raise UsageError(
            f"{folder} holds no {RUN_FILE}: it is not the reports folder of a noxlib run. Give "
            "combine the reports folder each shard's job uploaded."
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path} is not a noxlib run description ({exc}).") from None


def check_shard_set(infos: Sequence[tuple[Path, RunInfo]]) -> int:
    """Check that ``infos`` (reports folder, its run) are every shard of one matrix, each once;
    return N. A partial or mixed set raises UsageError naming what is wrong."""
    if not infos:
        raise UsageError("combine needs the reports folders of the shards: nox -s combine -- DIR…")
    unsharded = [str(folder) for folder, info in infos if info.shard is None]
    if unsharded:
        raise UsageError(
            f"Not the reports of a sharded run: {', '.join(unsharded)}. Each CI job runs with "
            "NOXLIB_SHARD=K/N (or the CI's own variables) and uploads its reports folder."
        )
    totals = {int(str(info.shard).split("/")[1]) for _, info in infos}
    if len(totals) != 1:
        raise UsageError(f"The folders come from matrices of different sizes: {sorted(totals)}.")
    total = totals.pop()
    by_index: dict[int, list[Path]] = {}
    for folder, info in infos:
        by_index.setdefault(int(str(info.shard).split("/")[0]), []).append(folder)
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
            "download every shard's reports (a failed job uploads them too)"
        )
    plans = {info.plan for _, info in infos}
    if len(plans) > 1:
        listed = ", ".join(f"{info.shard} has plan {info.plan}" for _, info in infos)
        raise UsageError(
            "The shards were planned differently (other code or another durations file), so "
            f"tests may be missing or run twice: {listed}. Run every shard of the matrix from "
            "one commit with one durations file"
        )
    return total
