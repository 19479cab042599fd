"""Failures grouped by root cause: a key per cause, plain names for the causes everyone knows.

The key of a failure is its exception type, its message with what changes from run to run taken
out (numbers, hex addresses, temp paths, ports), and the innermost frame in the project's own
code. Pure functions over result records (see ``plugin.ResultsRecorder``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from noxlib.words import some

Result = Mapping[str, object]

# Plain names of the causes a reader knows at sight.
TIMEOUT = "timeout"
SERVER_DIED = "server died"
CRASHED = "worker or shard crashed"
COLLECTION_ERROR = "collection error"
IMPORT_ERROR = "import error"
CONNECTION_REFUSED = "connection refused"
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


def is_collection_error(result: Result) -> bool:
    return result.get("when") == "collect"


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
    # "<n>", not "N": "assert N == N" reads as a tautology, "assert <n> == <n>" as numbers.
    text = _NUMBER.sub("<n>", text)
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


def digest(failures: Sequence[tuple[str, Cause]]) -> list[Category]:
    """Failures, as (node id, cause), grouped by root cause, the largest group first (then by
    key)."""
    groups: dict[str, list[tuple[str, Cause]]] = {}
    for nodeid, cause in failures:
        groups.setdefault(cause.key, []).append((nodeid, cause))
    categories = [
        Category(key, members[0][1].name, tuple(n for n, _ in members), members[0][1].message)
        for key, members in groups.items()
    ]
    return sorted(categories, key=lambda c: (-c.count, c.key))


def listed_tests(tests: Sequence[str], shown: int = SHOWN_TESTS) -> str:
    """``a``, ``b``, ``c`` and 2 more."""
    return some([f"`{t}`" for t in tests], shown)


def render_digest(failures: Sequence[tuple[str, Cause]]) -> list[str]:
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
