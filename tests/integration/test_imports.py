"""Import costs and cycles, each in a fresh interpreter.

Every pytest process of every run imports the plugin, and every run starts a warden that waits
for its runner: neither may pay for psutil or the sweeps until it needs them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "noxlib"

LOADED = """
import json, sys
before = set(sys.modules)
import {module}
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def loaded_by(module: str) -> set[str]:
    """The modules ``import module`` loads in a fresh interpreter (not those its start-up
    loaded, such as site's .pth hooks)."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(done.stdout))


def all_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


@pytest.mark.parametrize("module", all_modules())
def test_each_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    assert module in loaded_by(module)


def test_the_warden_process_loads_only_the_standard_library() -> None:
    loaded = loaded_by("noxlib.reaping.warden")
    ours = {name for name in loaded if name.split(".")[0] == "noxlib"}
    assert ours == {
        "noxlib",
        "noxlib._version",
        "noxlib.errors",
        "noxlib.reaping",
        "noxlib.reaping.warden",
    }
    others = {name.split(".")[0] for name in loaded} - {"noxlib"}
    assert others <= set(sys.stdlib_module_names), others - set(sys.stdlib_module_names)


def test_the_plugin_loads_neither_psutil_nor_the_machinery() -> None:
    loaded = loaded_by("noxlib.plugin")
    assert "psutil" not in loaded
    assert not {n for n in loaded if n.startswith(("noxlib.servers", "noxlib.reaping."))} - {
        "noxlib.reaping.runs"
    }
