"""Every input of a run checked while nox loads the noxfile, before it makes any venv.

The environment (``PYTEST_WORKERS``, ``NOXLIB_SHARD``, ``NOXLIB_ENGINE``) is always checked. The
command line is checked when nox was asked for sessions by name (``-s``, ``-e``, ``NOXSESSION``)
and all of them are noxlib's: the test sessions plan the run once with the arguments after
``--`` (groups, noxlib's options, an ``--affected`` that ``ci`` refuses), and ``combine`` reads
each folder's ``run.json``. Sessions chosen by ``-k`` or ``-t``, or mixed with a noxfile's own,
are checked when they start, by the same code.

Host-free: the nox boundary (sessions.py) passes what nox's parser read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from noxlib.choice import requested_engine
from noxlib.config import Config
from noxlib.machine import current_machine
from noxlib.options import Options
from noxlib.plan import MODES, WORKERS_ENV, make_plan, parse_worker_setting, resolve_shard

# nox names a parametrized session "tests-3.12", or "tests(python='3.12')" in its signatures.
_PYTHON_SUFFIX = re.compile(r"(?:-(?:pypy)?\d+(?:\.\d+)*t?|\(.*\))$")


def session_kind(name: str) -> str:
    """The registered session a nox session name runs: "tests-parallel-3.12" is
    "tests-parallel"; a name that is no session of noxlib's stays as it is."""
    return _PYTHON_SUFFIX.sub("", name)


def check_environment(environ: Mapping[str, str], config: Config) -> None:
    """Raise UsageError for a bad ``PYTEST_WORKERS``, ``NOXLIB_SHARD`` or ``NOXLIB_ENGINE``."""
    if environ.get(WORKERS_ENV, "").strip():
        parse_worker_setting(environ[WORKERS_ENV], f"the environment variable {WORKERS_ENV}")
    resolve_shard(environ)
    requested_engine(Options(), environ, config)


def check_request(
    config: Config,
    sessions: Sequence[str] | None,
    posargs: Sequence[str],
    environ: Mapping[str, str],
) -> None:
    """Raise UsageError for what a run of ``sessions`` (None: nox's defaults) with ``posargs``
    would refuse after its venv exists."""
    check_environment(environ, config)
    kinds = {session_kind(name) for name in sessions or ()}
    if not kinds:
        return
    if kinds <= MODES.keys():
        machine = current_machine()
        for kind in sorted(kinds):
            make_plan(MODES[kind], posargs, environ, config, machine)
    elif kinds == {"combine"}:
        from noxlib.combine import combine_arguments  # its module is heavy; combine's alone

        combine_arguments(posargs)
