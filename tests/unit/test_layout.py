"""The package's layout: no import cycles, counting every import statement (the ones inside
functions and under TYPE_CHECKING too: a cycle there is a design cycle all the same)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "noxlib"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the noxlib modules it imports anywhere. A package's own submodules are
    imported by its face; a submodule importing its package's face would be a cycle."""
    mods = modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names if alias.name in mods)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if full in mods:
                        deps.add(full)
                    elif node.module in mods:
                        deps.add(node.module)
        deps.discard(name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        for dep in sorted(graph[name]):
            if dep in path:
                found.append([*path[path.index(dep) :], dep])
            elif dep not in done:
                visit(dep, [*path, dep])
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    return found


def test_the_graph_sees_the_subpackages() -> None:
    graph = import_graph()
    assert "noxlib.reaping.processes" in graph["noxlib.servers.process"]
    assert "noxlib.reaping.sweep" in graph["noxlib.reaping.warden"]


def test_no_module_imports_itself_back() -> None:
    assert cycles(import_graph()) == []


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def hosts_imported(path: Path) -> set[str]:
    """The host packages (nox, pytest) that the module at ``path`` imports anywhere."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found.update(n.split(".")[0] for n in names if n.split(".")[0] in ("nox", "pytest"))
    return found


def test_one_import_boundary_per_host() -> None:
    """nox only in the nox adapter, pytest only in the plugin package: the rest is plain."""
    importers: dict[str, set[str]] = {"nox": set(), "pytest": set()}
    for name, path in modules().items():
        for host in hosts_imported(path):
            importers[host].add(name)
    assert importers["nox"] == {"noxlib.sessions"}
    assert importers["pytest"]
    outside = {n for n in importers["pytest"] if n.split(".")[:2] != ["noxlib", "plugin"]}
    assert outside == set()
