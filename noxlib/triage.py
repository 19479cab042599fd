"""Every failure triaged (fails-always, parallel-only, flaky) and grouped by root cause.

Pure functions over result records, the lines of a part's results.jsonl (see
``plugin.ResultsRecorder``): ``nodeid``, ``outcome`` and, for a failure, ``when``,
``longrepr``, ``sections``, ``crash`` {path, lineno, message} and ``frames`` [[path, lineno]].
The serial reruns themselves are run by the nox side (sessions.py, with the engine); what
they found comes in here as data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

Result = Mapping[str, object]

FAILING = ("failed", "error", "timeout", "crashed")
FAILS_ALWAYS = "fails-always"
PARALLEL_ONLY = "parallel-only"
FLAKY = "flaky"
NOT_RERUN = "not-rerun"
# What `tolerate-flaky` turns into warnings: failures that a serial rerun did not confirm.
TOLERABLE = (PARALLEL_ONLY, FLAKY)
# Plain names of the causes a reader knows at sight.
TIMEOUT = "timeout"
SERVER_DIED = "server died"
CRASHED = "worker or shard crashed"
COLLECTION_ERROR = "collection error"
IMPORT_ERROR = "import error"
CONNECTION_REFUSED = "connection refused"
PARALLEL_ONLY_ADVICE = (
    "A parallel-only failure is an isolation bug: the test shares something with the tests "
    "that ran beside it. Look for shared files (fixed paths), fixed ports, module globals and "
    "caches, and order dependence; see docs/testing.md#a-test-fails-in-parallel-but-not-serially."
)
SHOWN_TESTS = 3
MESSAGE_LINES = 3
MESSAGE_WIDTH = 200


@dataclass(frozen=True)
class Cause:
    """What a failure comes from: ``key`` groups failures of one root cause, ``name`` is its
    plain name (a known cause, else the exception type), ``message`` its first lines as
    written."""

    key: str
    name: str
    message: str


@dataclass(frozen=True)
class Failure:
    """One failing test, triaged: its status, ``triage`` (fails-always, parallel-only, flaky
    or not-rerun with ``reason``), its cause, and the outcomes of its serial reruns."""

    nodeid: str
    status: str
    triage: str
    cause: Cause
    reason: str = ""
    reruns: tuple[str, ...] = ()

    def record(self) -> dict[str, str]:
        """The failure in the run's ``ci_timings.jsonl`` line."""
        data = {
            "nodeid": self.nodeid,
            "status": self.status,
            "triage": self.triage,
            "category": self.cause.key,
        }
        if self.reason:
            data["reason"] = self.reason
        return data


# --- which failures are rerun, and what the reruns say ------------------------------------------


def failing(results: Iterable[Result]) -> list[Result]:
    """The results that failed, in run order."""
    return [r for r in results if r.get("outcome") in FAILING]


def is_collection_error(result: Result) -> bool:
    return result.get("when") == "collect"


def off_reason(enabled: bool, no_triage_option: bool, user_args: Sequence[str]) -> str | None:
    """Why triage does not run for this run, or None when it does."""
    if no_triage_option:
        return "--no-triage was given"
    if not enabled:
        return "triage = false in [tool.noxlib]"
    if any(arg in ("--pdb", "--trace") for arg in user_args):
        return "--pdb and --trace need a terminal; reruns have none"
    return None


def choose_reruns(
    failures: Sequence[Result], limit: int, off: str | None
) -> tuple[list[str], dict[str, str]]:
    """The node ids to rerun (at most ``limit``, in run order) and, for every other failure,
    why it is not rerun. ``off`` is why triage is off, if it is."""
    chosen: list[str] = []
    skipped: dict[str, str] = {}
    for result in failures:
        nodeid = str(result["nodeid"])
        if off:
            skipped[nodeid] = f"triage off: {off}"
        elif is_collection_error(result):
            skipped[nodeid] = "collection error: pytest could not import the file, so no test ran"
        elif len(chosen) >= limit:
            skipped[nodeid] = f"over triage-max ({limit} tests rerun)"
        else:
            chosen.append(nodeid)
    return chosen, skipped


def classify(reruns: Sequence[str], parallel: bool) -> str:
    """The triage of a failed test from its serial reruns' outcomes (in order).

    Every rerun failed: fails-always. Every rerun passed: parallel-only when the run was
    parallel (only the company of other tests made it fail), else flaky (the same serial
    conditions gave another outcome). Mixed reruns: flaky.
    """
    if not reruns:
        return NOT_RERUN
    failed = [outcome in FAILING for outcome in reruns]
    if all(failed):
        return FAILS_ALWAYS
    if not any(failed):
        return PARALLEL_ONLY if parallel else FLAKY
    return FLAKY


def judge(
    failures: Sequence[Result],
    rounds: Sequence[Mapping[str, str]],
    skipped: Mapping[str, str],
    *,
    parallel: bool,
    root: Path,
    interrupted: bool = False,
) -> list[Failure]:
    """Each failure triaged. ``rounds`` holds, per serial rerun, {node id: outcome} of the
    tests it ran; ``skipped`` why a test was not rerun (see `choose_reruns`). A chosen test
    missing from a round was not reached (``interrupted``) or not collected again."""
    judged = []
    for result in failures:
        nodeid = str(result["nodeid"])
        outcomes = tuple(r[nodeid] for r in rounds if nodeid in r)
        reason = skipped.get(nodeid, "")
        if not reason and len(outcomes) < len(rounds):
            reason = (
                "triage was interrupted"
                if interrupted
                else "a serial rerun did not run it (not collected again?)"
            )
        elif not reason and not rounds:
            reason = "triage was interrupted" if interrupted else "no rerun ran"
        triage = NOT_RERUN if reason else classify(outcomes, parallel)
        judged.append(
            Failure(
                nodeid=nodeid,
                status=str(result.get("outcome")),
                triage=triage,
                cause=cause_of(result, root),
                reason=reason,
                reruns=outcomes,
            )
        )
    return judged


def tolerated(failures: Sequence[Failure]) -> bool:
    """Whether every failure is one that a serial rerun did not confirm (parallel-only or
    flaky): what `tolerate-flaky` turns into warnings."""
    return bool(failures) and all(f.triage in TOLERABLE for f in failures)


def annotate(results: Iterable[Result], failures: Sequence[Failure]) -> list[dict[str, object]]:
    """``results`` with each failure's triage and category added, for results.jsonl (which
    `combine` reads back from every CI shard)."""
    by_id = {f.nodeid: f for f in failures}
    annotated = []
    for result in results:
        record = dict(result)
        found = by_id.get(str(result.get("nodeid")))
        if found is not None:
            record.update(triage=found.triage, category=found.cause.key)
            if found.reason:
                record["triage_reason"] = found.reason
        annotated.append(record)
    return annotated


def from_annotated(results: Iterable[Result], root: Path) -> list[Failure]:
    """The failures of results annotated by `annotate` (a CI shard's); a failure that carries
    no triage was not triaged there."""
    found = []
    for result in failing(results):
        triage = str(result.get("triage", NOT_RERUN))
        reason = str(result.get("triage_reason", ""))
        if "triage" not in result:
            reason = "not triaged on its CI shard"
        found.append(
            Failure(
                str(result["nodeid"]),
                str(result["outcome"]),
                triage,
                cause_of(result, root),
                reason,
            )
        )
    return found


# --- root causes ------------------------------------------------------------------------------

_TEMP_PATH = re.compile(
    r"(?:/private)?/(?:tmp|var/tmp|var/folders)/[^\s'\"),:]*"
    r"|[^\s'\"]*pytest-of-[^/\s]+/pytest-\d+/[^\s'\"),:]*"
    r"|[A-Za-z]:\\[^\s'\"]*\\Temp\\[^\s'\"),:]*"
)
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b")
_HOST_PORT = re.compile(r"(?<=[\w\]]):\d{2,5}\b")
_PORT_WORD = re.compile(r"\b(port)\s*[=:]?\s*\d+", re.I)
_NUMBER = re.compile(r"(?<!\w)[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
_SPACES = re.compile(r"\s+")
_TYPE_LINE = re.compile(r"^([A-Za-z_][\w.]*): ?(.*)$")
_TYPE_AT_END = re.compile(r"^\S+:\d+: ([A-Za-z_][\w.]*)$")
_E_LINE = re.compile(
    r"^E\s+([A-Za-z_][\w.]*(?:Error|Exception|Exit|Failed|Warning|Interrupt))(?:: ?(.*))?$"
)
_SERVER_DIED = re.compile(
    r"server '([^']+)' (?:died with (SIG[A-Z0-9]+)|exited with code (-?\d+)|exited \(exit status)"
)
_PROCESS_DEATH = re.compile(r"(died with SIG[A-Z0-9]+|exited with code -?\d+)")
_VENVS = (".nox", ".tox", ".venv", "venv", ".eggs", "build")


def normalise(message: str) -> str:
    """``message`` with what changes from run to run taken out: temp paths, UUIDs, hex
    addresses, ports and numbers. Whitespace collapsed, cut at MESSAGE_WIDTH."""
    text = _TEMP_PATH.sub("<tmp>", message)
    text = _UUID.sub("<uuid>", text)
    text = _HEX.sub("<hex>", text)
    text = _HOST_PORT.sub(":<port>", text)
    text = _PORT_WORD.sub(r"\1 <port>", text)
    text = _NUMBER.sub("N", text)
    return _SPACES.sub(" ", text).strip()[:MESSAGE_WIDTH]


def project_frame(frames: Iterable[Sequence[object]], root: Path) -> str | None:
    """``path:line`` of the innermost frame in the project's own code: under ``root``, and
    not in an installed package (site-packages) or a venv. Relative paths are the project's
    (pytest writes them relative to where it runs)."""
    innermost = None
    for frame in frames:
        if len(frame) < 2:
            continue
        relative = _project_path(str(frame[0]), root)
        if relative is not None:
            innermost = f"{relative}:{frame[1]}"
    return innermost


def _project_path(path: str, root: Path) -> str | None:
    if not path or path.startswith("<"):
        return None
    pure = PurePosixPath(path)
    if pure.is_absolute():
        try:
            pure = pure.relative_to(PurePosixPath(root.as_posix()))
        except ValueError:
            return None
    parts = pure.parts
    if not parts or parts[0] in ("..", *_VENVS):
        return None
    if any(p in ("site-packages", "dist-packages") for p in parts):
        return None
    return pure.as_posix()


def exception_of(result: Result) -> tuple[str, str]:
    """(exception type, message) of a failure, as pytest reported it; the type is "" when
    it cannot be told."""
    longrepr = str(result.get("longrepr", ""))
    crash = result.get("crash")
    message = str(crash.get("message", "")) if isinstance(crash, Mapping) else ""
    if message:
        first = message.splitlines()[0] if message.splitlines() else ""
        match = _TYPE_LINE.match(first)
        if match and _looks_like_type(match.group(1)):
            return match.group(1), message[len(match.group(1)) :].lstrip(": ").strip()
        last = longrepr.rstrip().splitlines()[-1:] or [""]
        at_end = _TYPE_AT_END.match(last[0])
        return (at_end.group(1) if at_end else ""), message.strip()
    e_lines = [m for line in longrepr.splitlines() if (m := _E_LINE.match(line.strip()))]
    if e_lines:
        return e_lines[-1].group(1), (e_lines[-1].group(2) or "").strip()
    lines = [line.strip() for line in longrepr.splitlines() if line.strip()]
    return "", lines[0] if lines else ""


def _looks_like_type(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last[:1].isupper() and " " not in name


def _frames(result: Result) -> list[Sequence[object]]:
    frames = result.get("frames")
    found: list[Sequence[object]] = list(frames) if isinstance(frames, list) else []
    crash = result.get("crash")
    if not found and isinstance(crash, Mapping) and crash.get("path"):
        found = [[crash["path"], crash.get("lineno", 0)]]
    return found


def _sections_text(result: Result) -> str:
    sections = result.get("sections")
    if not isinstance(sections, list):
        return ""
    lines = []
    for section in sections:
        if isinstance(section, (list, tuple)) and len(section) == 2:
            # A server restarted *for* this test was not its cause.
            lines += [
                line for line in str(section[1]).splitlines() if "; restarted for" not in line
            ]
    return "\n".join(lines)


def cause_of(result: Result, root: Path) -> Cause:
    """The root cause of one failure: its digest key, plain name and first message lines.

    Known causes first (timeout, worker or shard crashed, server died, import error, collection
    error, connection refused), then the exception type with its normalised message. The key
    ends with the innermost frame in the project's own code, where one is known.
    """
    etype, message = exception_of(result)
    where = project_frame(_frames(result), root)
    if is_collection_error(result):
        where = str(result.get("nodeid"))
    shown = _first_lines(f"{etype}: {message}" if etype else message)
    name, detail = _known_cause(result, etype, message)
    if name in (CRASHED, SERVER_DIED, IMPORT_ERROR):
        where = None  # one cause wherever it struck: the tests say where
    return _cause(name, detail, where, shown)


def _known_cause(result: Result, etype: str, message: str) -> tuple[str, str]:  # noqa: PLR0911
    """(plain name, detail) of a failure: a known cause, else its exception type and
    normalised message. One return per known cause, in order of precedence: it reads as the
    list it is."""
    status = result.get("outcome")
    longrepr = str(result.get("longrepr", ""))
    server = _SERVER_DIED.search("\n".join((message, longrepr, _sections_text(result))))
    if status == "timeout":
        return TIMEOUT, ""
    if status == "crashed":
        death = _PROCESS_DEATH.search(longrepr)
        return CRASHED, normalise(death.group(1)) if death else ""
    if server:
        how = server.group(2) or (f"exit code {server.group(3)}" if server.group(3) else "exit")
        return SERVER_DIED, f"'{server.group(1)}' {how}"
    if etype in ("ImportError", "ModuleNotFoundError") or "ImportError while importing" in longrepr:
        return IMPORT_ERROR, normalise(message)
    first = message.strip().split("\n", 1)[0]
    typed = f"{etype}: {first}" if etype else first
    if is_collection_error(result):
        return COLLECTION_ERROR, normalise(typed)
    if etype == "ConnectionRefusedError" or "connection refused" in message.lower():
        return CONNECTION_REFUSED, ""
    # The first line: what follows (pytest's assertion explanation, a data dump) varies more.
    return etype or "failure", normalise(message.strip().split("\n", 1)[0])


def _cause(name: str, detail: str, where: str | None, shown: str) -> Cause:
    key = name + (f": {detail}" if detail else "") + (f" at {where}" if where else "")
    return Cause(key, name, shown)


def _first_lines(text: str) -> str:
    lines = [line.rstrip()[:MESSAGE_WIDTH] for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[:MESSAGE_LINES])


# --- the digest -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Category:
    """The failures of one root cause: its key and name, its tests, the first one's message."""

    key: str
    name: str
    tests: tuple[str, ...]
    message: str

    @property
    def count(self) -> int:
        return len(self.tests)


def digest(failures: Sequence[Failure]) -> list[Category]:
    """Failures grouped by root cause, the largest group first (then by key)."""
    groups: dict[str, list[Failure]] = {}
    for failure in failures:
        groups.setdefault(failure.cause.key, []).append(failure)
    categories = [
        Category(
            key, members[0].cause.name, tuple(f.nodeid for f in members), members[0].cause.message
        )
        for key, members in groups.items()
    ]
    return sorted(categories, key=lambda c: (-c.count, c.key))


def listed_tests(tests: Sequence[str], shown: int = SHOWN_TESTS) -> str:
    """``a``, ``b``, ``c`` and 2 more."""
    listed = ", ".join(f"`{t}`" for t in tests[:shown])
    return listed + (f" and {len(tests) - shown} more" if len(tests) > shown else "")


def counts_line(failures: Sequence[Failure]) -> str:
    """``3 fails-always, 1 parallel-only, 2 flaky, 1 not-rerun``: only what occurred."""
    order = (FAILS_ALWAYS, PARALLEL_ONLY, FLAKY, NOT_RERUN)
    counted = {t: sum(f.triage == t for f in failures) for t in order}
    return ", ".join(f"{n} {t}" for t, n in counted.items() if n)


def render_failures(failures: Sequence[Failure], *, reruns: int, tolerate: bool) -> list[str]:
    """The report's "Failures" section: the verdict, a row per failing test, the advice."""
    if not failures:
        return []
    lines = ["## Failures", "", f"Triage ({reruns} serial reruns each): {counts_line(failures)}."]
    if tolerate and tolerated(failures):
        lines.append(
            "Passed with warnings: no failure was confirmed by a serial rerun, and "
            "tolerate-flaky = true lets such a run pass."
        )
    lines += ["", "| test | status | triage | root cause |", "|---|---|---|---|"]
    for f in failures:
        triage = f"{f.triage} ({f.reason})" if f.reason else f.triage
        if f.reruns:
            triage += f"; reruns: {', '.join(f.reruns)}"
        lines.append(f"| `{f.nodeid}` | {f.status} | {_cell(triage)} | {_cell(f.cause.key)} |")
    if any(f.triage == PARALLEL_ONLY for f in failures):
        lines += ["", f"> {PARALLEL_ONLY_ADVICE}"]
    return [*lines, ""]


def render_digest(failures: Sequence[Failure]) -> list[str]:
    """The report's "Root causes" section: per category its count, tests and first lines."""
    categories = digest(failures)
    if not categories:
        return []
    lines = ["## Root causes", ""]
    for category in categories:
        tests = "test" if category.count == 1 else "tests"
        lines += [f"### {category.count} {tests}: {_cell(category.key)}", ""]
        lines += [f"Tests: {listed_tests(category.tests)}", ""]
        if category.message:
            lines += ["```text", category.message.replace("```", "'''"), "```", ""]
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
