"""Session venvs get the very noxlib that nox imported: from a checkout, or, installed any other
way, from a wheel packed again from the installed files (the source may be gone)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from noxlib.selfinstall import self_install_args
from tests.conftest import nox_env

ROOT = Path(__file__).parents[2]
ASK = (
    "import sys; from pathlib import Path; from noxlib.selfinstall import self_install_args; "
    "print(self_install_args(Path(sys.argv[1])))"
)
USER_PYPROJECT = """
[project]
name = "userproj"
version = "1"

[tool.noxlib]
install = []
default-groups = ["unit"]

[tool.noxlib.groups.unit]
paths = ["tests"]
"""


def test_a_checkout_installs_itself_editable() -> None:
    assert self_install_args() == ["-e", str(ROOT)]


@pytest.fixture
def uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(found).exists():
        pytest.skip("uv is not installed here")
    return found


@pytest.fixture
def wheel_venv(tmp_path: Path, uv: str) -> Path:
    """A venv with noxlib installed from a wheel whose folder is then deleted."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [uv, "build", "--wheel", "-q", "-o", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = wheels.glob("noxlib-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([uv, "pip", "install", "-q", "-p", python, f"{wheel}[uv]"], check=True)
    shutil.rmtree(wheels)  # what the wheel came from is gone, as after a download to /tmp
    return venv


def test_a_wheel_install_repacks_its_installed_files(wheel_venv: Path, tmp_path: Path) -> None:
    python = str(wheel_venv / "bin" / "python")
    state = tmp_path / "state"
    asked = [python, "-c", ASK, str(state)]
    first = subprocess.run(asked, cwd=tmp_path, capture_output=True, text=True, check=True)
    [wheel] = json.loads(first.stdout.strip().replace("'", '"'))
    assert Path(wheel).parent.parent == state / "self"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt")))
    assert "noxlib/plugin/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n]
    assert b"[pytest11]" in entry_points
    again = subprocess.run(asked, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert again.stdout == first.stdout  # once per content: the same file


def test_nox_runs_a_user_project_after_the_wheel_is_gone(wheel_venv: Path, tmp_path: Path) -> None:
    project = tmp_path / "userproj"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text(USER_PYPROJECT)
    (project / "noxfile.py").write_text("import noxlib\n\nnoxlib.register_sessions()\n")
    (project / "tests" / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    done = subprocess.run(
        [str(wheel_venv / "bin" / "python"), "-m", "nox", "-s", "tests"],
        cwd=project,
        env=nox_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Distribution not found" not in output
    assert "every collected test ran once (1 test)" in output  # the plugin ran in the venv
