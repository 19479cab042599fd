"""Session venvs get the very noxlib that nox imported: from a checkout, or from a wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from noxlib.sessions import self_install_args

ROOT = Path(__file__).parents[2]
ASK = "from noxlib.sessions import self_install_args; print(self_install_args())"


def test_a_checkout_installs_itself_editable() -> None:
    assert self_install_args() == ["-e", str(ROOT)]


@pytest.fixture
def uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(found).exists():
        pytest.skip("uv is not installed here")
    return found


def test_a_wheel_install_installs_the_same_wheel(tmp_path: Path, uv: str) -> None:
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
    subprocess.run(
        [uv, "pip", "install", "-q", "-p", python, str(wheel), "nox", "psutil"], check=True
    )
    answer = subprocess.run(
        [python, "-c", ASK], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert answer.stdout.strip() == str([str(wheel)])
