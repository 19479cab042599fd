"""What a change to a measured Python file reaches: the functions its hunks change, read on
both sides of the diff, or why every test may see it (module level, a cached function, lines
that ran outside any test). Pure (ast); ``affected.select`` calls ``tests_of_hunks``.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from noxlib.coveragemap import FileLines
from noxlib.gitdiff import FileChange, Hunk

# The tests a change reaches (index in the map -> what brought it), or why every test may.
Reach = dict[int, str] | str


def tests_of_hunks(
    change: FileChange,
    lines: FileLines,
    old: str | None,
    new: str | None,
    spawners: Collection[int] | None,
) -> Reach:
    """The tests that ran the functions a modified file's hunks change, or the reason to run
    every test: a change at module level (what runs at import), in a cached function, or in
    lines that ran outside any test. The new text, when known, is read too: code moved out of
    a function, or a function added, is a change at module level.

    A changed function no measured process ran may run in one coverage could not follow (a
    child started with a clean environment): it brings ``spawners``, the tests that started a
    process, or every test when they are not known (None: a process's records were lost)."""
    if change.status != "modified" or not change.hunks:
        return {}
    old_code = Code.parse(old) if old is not None else None
    if old_code is None:
        return f"{change.path} changed, and its text at the map's commit cannot be parsed"
    new_code = Code.parse(new) if new is not None else None
    if new is not None and new_code is None:
        return f"{change.path} does not parse any more: every test that imports it fails"
    functions: set[Function] = set()
    for hunk in change.hunks:
        found = functions_of_hunk(change.path, hunk, old_code, new_code)
        if isinstance(found, str):
            return found
        functions |= found
    tests: dict[int, str] = {}
    for function in sorted(functions, key=lambda f: f.first):
        reach = _tests_of_function(function, change.path, lines, spawners)
        if isinstance(reach, str):
            return reach
        for i, reason in reach.items():
            tests.setdefault(i, reason)
    return tests


def _tests_of_function(
    function: Function, path: str, lines: FileLines, spawners: Collection[int] | None
) -> Reach:
    body = range(function.first, function.last + 1)
    if any(line in lines.outside for line in body):
        return (
            f"{path} changed in lines that ran outside any test (at import time, or in a "
            "subprocess): any test may see them"
        )
    ran = {i for line in body for i in lines.by_line.get(line, frozenset())}
    if ran:
        return dict.fromkeys(ran, f"ran {function.name} in {path}, which changed")
    unseen = f"{function.name} in {path}, which changed, ran in no measured process"
    if spawners is None:
        return f"{unseen}, and the map lost a process's records of who starts processes"
    return dict.fromkeys(spawners, f"started a process, and {unseen}")


def functions_of_hunk(path: str, hunk: Hunk, old: Code, new: Code | None) -> set[Function] | str:
    """The functions (with their old lines) ``hunk`` changes, or why every test may see it."""
    old_lines = list(range(hunk.start, hunk.start + hunk.count))
    new_lines = list(range(hunk.new_start, hunk.new_start + hunk.new_count)) if new else []
    if new is None and hunk.count == 0:
        old_lines = [hunk.start, hunk.start + 1]  # what is inserted runs where its neighbours do
    functions: set[Function] = set()
    for side, numbers in ((old, old_lines), (new, new_lines)):
        for line in numbers:
            if new is not None and side is not None and side.no_code([line]):
                continue  # both sides known: a blank line or a comment is no code to place
            function = side.function_at(line) if side is not None else None
            if function is not None and side is new:
                function = old.named(function.name)  # a new side's function, by its old lines
            if function is None:
                now = " now" if side is new else ""
                return (
                    f"{path} changed at module level (line {line}{now}): what runs when the "
                    "module is imported, so any test that imports it may see the change"
                )
            if function.cached:
                return (
                    f"{path} changed in {function.name}, a cached function: a test may use "
                    "what an earlier test computed, without running its lines"
                )
            functions.add(function)
    return functions


@dataclass(frozen=True)
class Function:
    """A function or method as a unit of change: whoever ran any line of its body may see a
    change anywhere in it (a memo dict filled by one test and read by the next)."""

    name: str
    first: int  # its body's first line: the def line and the signature run at import
    last: int
    cached: bool


class Code:
    """One version of a Python file: its outermost functions and methods, and the lines that
    hold code (not comments, not blank)."""

    def __init__(self, tree: ast.Module, text: str) -> None:
        self.functions: list[Function] = []
        self._collect(tree.body, "")
        self.text_lines = text.splitlines()
        self.in_strings: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                self.in_strings.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))

    @classmethod
    def parse(cls, text: str) -> Code | None:
        try:
            return cls(ast.parse(text), text)
        except (SyntaxError, ValueError):
            return None

    def _collect(self, body: Sequence[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first, last = node.body[0].lineno, node.end_lineno or node.lineno
                self.functions.append(Function(prefix + node.name, first, last, _cached(node)))
            elif isinstance(node, ast.ClassDef):
                self._collect(node.body, f"{prefix}{node.name}.")
            else:
                # Module-level if/try/with/for: the functions they define are functions still.
                for name in ("body", "orelse", "finalbody", "handlers"):
                    self._collect(getattr(node, name, ()), prefix)

    def function_at(self, line: int) -> Function | None:
        return next((f for f in self.functions if f.first <= line <= f.last), None)

    def named(self, name: str) -> Function | None:
        return next((f for f in self.functions if f.name == name), None)

    def no_code(self, lines: Sequence[int]) -> bool:
        for line in lines:
            text = self.text_lines[line - 1].strip() if 0 < line <= len(self.text_lines) else ""
            if line in self.in_strings or (text and not text.startswith("#")):
                return False
        return True


def _cached(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether a decorator names a cache (functools.cache, lru_cache, cached_property, a
    project's own memoize): the function's body runs for the first caller only."""
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if "cache" in name.lower() or "memo" in name.lower():
            return True
    return False
