"""What a run writes about itself: ``run.json`` (for combine) and a row per part (for the
report), from its parts' folders and how each ended."""

from __future__ import annotations

from pathlib import Path

from noxlib.books import Books
from noxlib.measure import venv_python
from noxlib.partrun import PartOutcome
from noxlib.parts import PartFiles
from noxlib.runinfo import PartRow, RunInfo


def describe_run(
    base: RunInfo, outcomes: list[PartOutcome], venv_bin: Path, books: Books | None
) -> RunInfo:
    """``base`` (the run's own fields) completed from its parts' folders: the plan's
    fingerprint, each part's row, the venv's Python, noxlib's version, what was collected and
    the books."""
    files = [outcome.part.files for outcome in outcomes]
    return RunInfo(
        **{
            **base.__dict__,
            "plan": _plan_fingerprint(files) if base.shard else "",
            "parts": tuple(part_row(outcome) for outcome in outcomes),
            "python": _python_of(venv_bin),
            "noxlib": _noxlib_version(),
            "collected": _collected_digest(files),
            "books": books.as_json() if books else {},
        }
    )


def part_row(outcome: PartOutcome) -> PartRow:
    event = outcome.part.files.selected_event()
    return PartRow(
        name=outcome.part.name,
        status=outcome.status,
        tests=int(str(event.get("count", 0))),
        predicted=float(str(event.get("predicted", 0.0))),
        seconds=round(outcome.seconds, 3),
        attempts=outcome.attempts,
        problem=outcome.problem,
        peak_rss=outcome.peak_rss,
    )


def _plan_fingerprint(files: list[PartFiles]) -> str:
    plans = [f.selected_event().get("plans") for f in files]
    first = next((p for p in plans if isinstance(p, list) and p), [""])
    return str(first[0])


def _collected_digest(files: list[PartFiles]) -> str:
    """What the run's parts collected, where each collected everything (shards by test);
    "" where parts collect only their own files."""
    digests = set()
    for f in files:
        if str(f.selected_event().get("how", "")).startswith("files"):
            return ""
        digests.add(f.collected_digest())
    return digests.pop() if len(digests) == 1 else ""


def _python_of(venv_bin: Path) -> str:
    version = venv_python(venv_bin.parent)
    return f"{version[0]}.{version[1]}" if version else ""


def _noxlib_version() -> str:
    from noxlib._version import __version__

    return __version__
