"""The nox boundary: the only module that imports nox.

Registration of the sessions, and `NoxHost`: the small adapter through which a run
(noxlib/run.py) logs, installs and finds its venv. Everything else lives below, nox-free.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import nox
import nox.command

from noxlib import reaping
from noxlib.config import Config, load_config
from noxlib.errors import NoxlibError, UsageError
from noxlib.host import RunFailed
from noxlib.launch import host_environment
from noxlib.plan import MODES, Mode
from noxlib.selfinstall import self_install_args
from noxlib.upfront import check_environment, check_request

VENV_BACKEND = "uv|virtualenv"


def _fail_loading(exc: NoxlibError) -> None:
    # Raised while nox imports the noxfile: a traceback would bury the message, so print it alone
    # and stop before nox creates any venv.
    sys.stderr.write(f"noxlib: {exc}\n")
    raise SystemExit(2)


def register_sessions(
    root: str | Path | None = None,
    *,
    python: str | Sequence[str] | None = None,
    venv_backend: str = VENV_BACKEND,
) -> Config:
    """Register the ``tests``, ``tests-parallel``, ``ci``, ``combine`` and ``reap`` sessions.

    ``root`` is the project folder whose pyproject.toml holds ``[tool.noxlib]``; by default the
    noxfile's folder (nox runs noxfiles from there). ``venv_backend`` goes to ``nox.session``.
    ``python``: a version string runs every session on that version; a list (without it, the
    ``python`` setting) adds one session per version and mode, ``tests-3.12``, tagged
    ``tests-matrix`` (``nox -t ci-matrix`` runs every version), while ``tests`` runs on nox's
    own Python: the plain command never asks for an interpreter the machine lacks. No session
    downloads a missing interpreter unless asked (``--download-python``, or uv's
    ``UV_PYTHON_DOWNLOADS``); a missing one is skipped with nox's one line. Returns the
    validated config, so a noxfile can build more sessions on it.
    """
    try:
        config = load_config(Path(root or Path.cwd()).resolve())
        request = _nox_request()
        if request is None:
            check_environment(os.environ, config)
        else:
            check_request(config, *request, os.environ)
    except NoxlibError as exc:
        _fail_loading(exc)
    single = python if isinstance(python, str) else None
    versions = [] if single else list(python if python is not None else config.python)
    download = _download_python()
    for mode in MODES.values():
        func = _session_for(mode, config)
        nox.session(
            name=mode.name,
            python=single,
            venv_backend=venv_backend,
            default=mode.name == "tests",
            download_python=download,
        )(func)
        for version in versions:
            nox.session(
                name=f"{mode.name}-{version}",
                python=version,
                venv_backend=venv_backend,
                default=False,
                tags=[f"{mode.name}-matrix"],
                download_python=download,
            )(_session_for(mode, config, version))
    nox.session(name="reap", venv_backend="none", default=False)(_reap_session_for(config))
    # One interpreter merges the shards of every version: combine is never parametrized.
    nox.session(name="combine", python=single, venv_backend=venv_backend, default=False)(
        _combine_session_for(config)
    )
    return config


def _download_python() -> Literal["never"] | None:
    """ "never", unless uv's own setting asks for downloads (nox's --download-python and
    NOX_DOWNLOAD_PYTHON win over a session's setting anyway)."""
    asked = os.environ.get("UV_PYTHON_DOWNLOADS", "").strip().lower()
    return None if asked in ("automatic", "manual", "true", "1") else "never"


def _nox_request() -> tuple[list[str] | None, list[str]] | None:
    """(the sessions asked for by name, or None; the arguments after ``--``) of the nox command
    that is loading this noxfile, as nox's own parser reads its command line. None when the
    noxfile is not being loaded by nox's main, or nox's parser is not where this nox keeps it
    (the sessions then check their arguments when they start)."""
    program = Path(sys.argv[0])
    if not (
        program.name == "nox" or (program.name == "__main__.py" and program.parent.name == "nox")
    ):
        return None
    try:
        from nox._options import options  # nox's parser; private, hence the fallback

        try:
            parsed = options.parse_args(sys.argv[1:])
        except TypeError:  # nox before 2026 parses sys.argv itself
            parsed = options.parse_args()
    except (ImportError, AttributeError, SystemExit, ValueError, TypeError):
        return None
    if getattr(parsed, "list_sessions", False) or getattr(parsed, "usage", None):
        return None  # listing runs nothing: its arguments are no run's
    sessions = getattr(parsed, "sessions", None)
    return (list(sessions) if sessions else None), list(getattr(parsed, "posargs", None) or [])


def _session_for(
    mode: Mode, config: Config, version: str | None = None
) -> Callable[[nox.Session], None]:
    def session_func(session: nox.Session) -> None:
        run_tests(session, config, mode.name)

    session_func.__doc__ = mode.doc if version is None else f"{mode.doc} On Python {version}."
    session_func.__name__ = mode.name.replace("-", "_") + (f"_{version}" if version else "")
    return session_func


def _reap_session_for(config: Config) -> Callable[[nox.Session], None]:
    def reap(session: nox.Session) -> None:
        """End what dead runs of this checkout left running (-- --dry-run only lists them)."""
        unknown = [a for a in session.posargs if a != "--dry-run"]
        if unknown:
            session.error(
                f"Unknown argument(s) {unknown} for the reap session; it takes --dry-run."
            )
        reaped = reaping.reap_stale_runs(
            config.state_dir,
            session.log,
            grace=config.reap_grace,
            dry_run="--dry-run" in session.posargs,
        )
        if not reaped:
            session.log("noxlib: no process left by a dead run is running")

    return reap


def _combine_session_for(config: Config) -> Callable[[nox.Session], None]:
    def combine_session(session: nox.Session) -> None:
        """Merge CI shards' reports folders (-- DIR ...) into one run's reports."""
        combine(session, config)

    combine_session.__name__ = "combine"
    return combine_session


class NoxHost:
    """A run's host (`run.Host`) in a nox session."""

    def __init__(self, session: nox.Session) -> None:
        self.session = session
        self.name = session.name  # nox's name: tests-3.12 keeps its own history

    def log(self, message: str) -> None:
        self.session.log(message)

    def warn(self, message: str) -> None:
        self.session.warn(message)

    def install(self, *args: str) -> None:
        self.session.install(*args)

    def bin(self) -> Path:
        return Path(self.session.bin)

    def env(self) -> dict[str, str]:
        return host_environment(self.session.env, self.session.bin_paths or [])


@contextmanager
def _as_nox_outcomes(session: nox.Session) -> Iterator[None]:
    """Bad input aborts the session with its message; a run that failed fails it."""
    try:
        yield
    except UsageError as exc:
        session.error(str(exc).rstrip("."))  # nox ends the sentence
    except RunFailed as exc:
        raise nox.command.CommandFailed(str(exc)) from None


def _install_only(session: nox.Session) -> bool:
    # nox's session.run skips commands under --install-only; the engine starts its processes
    # itself, so it asks the same setting.
    return bool(getattr(session._runner.global_config, "install_only", False))


def run_tests(session: nox.Session, config: Config, mode: str = "tests") -> None:
    """Run ``config``'s tests in ``session`` the way session ``mode`` does.

    The building block behind the registered sessions: a noxfile can call it from its own
    session (e.g. with another python) and get the same plan, phases, reaping and reports.
    """
    from noxlib.entry import run_tests as run

    with _as_nox_outcomes(session):
        run(
            NoxHost(session),
            config,
            mode,
            session.posargs,
            os.environ,
            self_install=self_install_args(config.state_dir),
            install_only=_install_only(session),
        )


def combine(session: nox.Session, config: Config) -> None:
    """Merge the reports folders of a CI matrix's shards (posargs) into this project's."""
    from noxlib.combine import combine as run

    with _as_nox_outcomes(session):
        run(NoxHost(session), config, session.posargs, self_install_args(config.state_dir))
