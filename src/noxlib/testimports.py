"""Which files of a test tree import a given test file: a test class another file inherits, or
a helper one test file takes from another, runs a changed test file's code in tests that are
not its own. Pure (ast); ``affected.select`` asks it for each changed test file.

Every reading leans the safe way: an absolute import matches any file whose path ends in its
dotted name, so ``import test_base`` matches ``tests/test_base.py`` and ``a/test_base.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath

# (level, dotted name): level 0 is absolute; 1 is "from . import", 2 "from .. import", ...
Target = tuple[int, str]


def importers(changed: str, texts: Mapping[str, str]) -> set[str]:
    """The files of ``texts`` (path -> source) that import ``changed``, directly or through
    each other (a helper that imports it, imported by a test file)."""
    reached = {changed}
    parsed: dict[str, list[Target]] = {}
    grew = True
    while grew:
        grew = False
        stems = {_module_name(path) for path in reached}
        for path, text in texts.items():
            # Any import of a module names its stem: a file that holds none is not parsed.
            if path in reached or not any(stem in text for stem in stems):
                continue
            wanted = parsed.setdefault(path, _targets(text))
            if any(_names(path, target, done) for target in wanted for done in reached):
                reached.add(path)
                grew = True
    return reached - {changed}


def _module_name(path: str) -> str:
    pure = PurePosixPath(path)
    return pure.parent.name if pure.stem == "__init__" else pure.stem


def _targets(text: str) -> list[Target]:
    """What a file imports, statically: import statements anywhere in it, and string names
    given to ``importlib.import_module``, ``__import__`` or ``pytest_plugins``. A file that
    does not parse imports nothing here: pytest fails on it, whatever is selected."""
    try:
        return list(_walk(ast.parse(text)))
    except (SyntaxError, ValueError):
        return []


def _walk(tree: ast.Module) -> Iterator[Target]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            yield node.level, module
            for alias in node.names:
                if alias.name != "*":
                    yield node.level, f"{module}.{alias.name}".lstrip(".")
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            yield from ((0, name) for name in _strings(node.args[0]))
        elif isinstance(node, ast.Assign) and _assigns(node, "pytest_plugins"):
            yield from ((0, name) for name in _strings(node.value))


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in ("import_module", "__import__")


def _assigns(node: ast.Assign, name: str) -> bool:
    return any(isinstance(target, ast.Name) and target.id == name for target in node.targets)


def _strings(value: ast.expr) -> Iterator[str]:
    items = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
    for item in items:
        if isinstance(item, ast.Constant) and isinstance(item.value, str):
            yield item.value


def _names(importer: str, target: Target, path: str) -> bool:
    """Whether ``target``, imported by the file ``importer``, can be the module at ``path``."""
    level, dotted = target
    module = PurePosixPath(path).with_suffix("")
    if module.name == "__init__":
        module = module.parent
    wanted = [part for part in dotted.split(".") if part]
    if level == 0:
        return bool(wanted) and list(module.parts[-len(wanted) :]) == wanted
    base = PurePosixPath(importer).parent
    for _ in range(level - 1):
        base = base.parent
    return base.joinpath(*wanted) == module
