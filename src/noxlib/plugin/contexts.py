"""The coverage contexts the ``--affected`` map is made from, switched while a ``ci`` run
records it, and what a line's context cannot show, recorded beside it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from noxlib.testrecords import COLLECT_CONTEXT, FIXTURE_CONTEXT, Records

# Audit events of a process being started: what its children read, no hook here sees.
# The flags of an open that can change the file (the audit event's third argument).
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
SPAWN_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn", "os.exec", "os.fork"}
    | {"os.forkpty", "pty.spawn"}
)


class TestContexts:
    """Records each test as a coverage context named by its node id (setup, call and
    teardown), from which the ``ci`` session builds the ``--affected`` map. Lines run outside
    any test (start-up, conftest files, threads) keep coverage's empty context.

    - A test file is collected under a context of its own (``noxlib-collect:PATH``): what its
      import and its parametrize lists run belongs to its tests.
    - The body of a module imported from source runs in the empty context, whenever it is
      imported: a table it builds serves every importer, not only the test or file that
      happened to import it first.
    - A fixture wider than a test runs once for all its users, so its setup is measured under
      a context of its own (``noxlib-fixture:NAME``) and each test's fixture names are kept:
      the map gives those lines to every user.

    Written beside the lines, per process, into ``folder``: the files each test opened
    (``open`` audit events), so a data file brings its readers, and which tests started a
    process, whose reads no hook sees.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, cov: Any, folder: Path) -> None:
        self.cov = cov
        self.folder = folder
        self.records = Records()
        self.context = ""
        self.collecting: Path | None = None
        self.listening = True
        sys.addaudithook(self._audit)
        self._exec_module = _imports_outside(self)

    def _switch(self, context: str) -> None:
        self.context = context
        self.cov.switch_context(context)

    @contextmanager
    def within(self, context: str) -> Iterator[None]:
        """Measure under ``context``, then go back to the one before."""
        outer = self.context
        self._switch(context)
        try:
            yield
        finally:
            self._switch(outer)

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Any:
        if not isinstance(collector, (pytest.Module, pytest.Class)):
            return (yield)
        outer_path, self.collecting = self.collecting, collector.path
        try:
            with self.within(COLLECT_CONTEXT + collector.nodeid.split("::", 1)[0]):
                return (yield)
        finally:
            self.collecting = outer_path

    def body_runs_outside(self, module: ModuleType) -> bool:
        """Whether ``module``'s body is to run in the empty context: not when it already is, nor
        for the test file being collected (loaded without pytest's assertion rewriting)."""
        if not self.context:
            return False
        origin = getattr(module.__spec__, "origin", None)
        return not (self.collecting is not None and origin and Path(origin) == self.collecting)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        self.records.uses[item.nodeid] = tuple(getattr(item, "fixturenames", ()))
        self._switch(item.nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: pytest.FixtureRequest) -> Any:
        if fixturedef.scope == "function":
            return (yield)
        with self.within(FIXTURE_CONTEXT + fixturedef.argname):
            return (yield)

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        # An audit hook stays for the life of the process and must never raise: an exception
        # here would fail the open() or Popen() of the test that caused the event.
        if not self.listening:
            return
        try:
            if event == "open" and isinstance(args[0], (str, bytes)):
                writes = isinstance(args[2], int) and bool(args[2] & WRITE_FLAGS)
                self.records.open(self.context, os.path.abspath(os.fsdecode(args[0])), writes)
            elif event in SPAWN_EVENTS:
                self.records.spawned.add(self.context)
        except Exception:  # see above
            pass

    def pytest_sessionfinish(self) -> None:
        self.listening = False
        SourceFileLoader.exec_module = self._exec_module  # type: ignore[method-assign, assignment]
        self.records.write(self.folder)


def _imports_outside(contexts: TestContexts) -> Callable[[Any, ModuleType], None]:
    """Make every module loaded from source (the library, test helpers; not test files, which
    pytest's own loader rewrites) run its body in the empty context, and return the original
    ``exec_module`` to put back. importlib has no hook around a module's body but its
    loader's ``exec_module``, and wrapping the class's method leaves every loader, spec and
    module object as importlib made it."""
    original = SourceFileLoader.exec_module

    def exec_module(loader: Any, module: ModuleType) -> None:
        if not contexts.body_runs_outside(module):
            return original(loader, module)
        with contexts.within(""):
            return original(loader, module)

    SourceFileLoader.exec_module = exec_module  # type: ignore[method-assign, assignment]
    return original
