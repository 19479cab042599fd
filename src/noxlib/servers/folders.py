"""A managed server's files: its folders (log, HOME, TMPDIR, XDG_*, working directory), its
environment, argv placeholders, and the log tails that error messages carry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from noxlib.reaping.runs import RUN_DIR_ENV, RUN_ID_ENV

LOG_TAIL_LINES = 40
LOG_FILE = "server.log"
XDG_FOLDERS = {
    "XDG_CONFIG_HOME": "xdg-config",
    "XDG_CACHE_HOME": "xdg-cache",
    "XDG_DATA_HOME": "xdg-data",
    "XDG_STATE_HOME": "xdg-state",
    "XDG_RUNTIME_DIR": "xdg-runtime",
}


def read_tail(path: Path, *, start: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the file at ``path``, reading from byte offset ``start``."""
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def tail_block(path: Path, text: str) -> str:
    """``text`` (a log tail) framed so that it stands out inside an error message."""
    body = text if text.strip() else "(the log is empty)"
    return f"--- last {LOG_TAIL_LINES} lines of {path} ---\n{body}\n--- end of {path.name} ---"


def expand(template: str, values: Mapping[str, str]) -> str:
    """Replace the known ``{placeholders}`` of ``template`` by ``values``.

    Not ``str.format``: argv items often hold braces of their own (JSON, shell code).
    """
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


@dataclass(frozen=True)
class Folders:
    """A server's own folders under ``root``: log, HOME, TMPDIR, XDG_* and working directory."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    @property
    def log(self) -> Path:
        return self.root / LOG_FILE

    def create(self) -> Folders:
        for folder in (self.home, self.tmp, self.cwd):
            folder.mkdir(parents=True, exist_ok=True)
        for name in XDG_FOLDERS.values():
            # 0700: XDG_RUNTIME_DIR must be private or programs refuse it.
            (self.root / name).mkdir(mode=0o700, exist_ok=True)
        return self

    def isolated_env(self) -> dict[str, str]:
        """The variables that make a process keep its files to itself."""
        env = {"HOME": str(self.home), "TMPDIR": str(self.tmp), "TMP": str(self.tmp)}
        env["TEMP"] = str(self.tmp)
        env.update({key: str(self.root / name) for key, name in XDG_FOLDERS.items()})
        return env


def server_environment(
    base: Mapping[str, str],
    folders: Folders,
    extra: Mapping[str, str],
    values: Mapping[str, str],
    *,
    isolate: bool,
) -> dict[str, str]:
    """The environment of a server: ``base`` (usually os.environ), the isolation variables when
    ``isolate``, then ``extra`` with its placeholders filled from ``values``.

    The run's identity variables always come from ``base``: reaping matches them, so a server
    must not lose them by accident.
    """
    env = dict(base)
    if isolate:
        env.update(folders.isolated_env())
    env.update({key: expand(value, values) for key, value in extra.items()})
    for key in (RUN_ID_ENV, RUN_DIR_ENV):
        if key in base:
            env[key] = base[key]
    return env
