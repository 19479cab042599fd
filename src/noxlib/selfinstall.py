"""The very noxlib that nox imported, installable into a session venv, whatever its kind.

A checkout, or an editable install whose folder still exists, installs editable from there:
the edit-run loop sees every change. Anything else (a wheel, an sdist, a git URL, a folder
that has moved or gone since) is packed again from the installed files into a wheel in the
state folder, once per content, and that wheel is installed: the nox side never depends on
where its own copy came from, and the pytest plugin in the venv is byte for byte the nox side's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from noxlib.errors import UsageError

if TYPE_CHECKING:
    import importlib.metadata

PACKAGE = Path(__file__).resolve().parent
# The dist-info files a wheel carries over; RECORD, WHEEL and INSTALLER are the installer's.
_METADATA_FILES = ("METADATA", "entry_points.txt", "top_level.txt")
WHEELS_DIR = "self"


def self_install_args(state_dir: Path | None = None) -> list[str]:
    """pip arguments that install into a venv the noxlib this process imported; a repacked
    wheel goes under ``state_dir`` (default: ``.noxlib`` in the working folder)."""
    checkout = PACKAGE.parent.parent  # src/noxlib in a checkout
    pyproject = checkout / "pyproject.toml"
    if pyproject.is_file() and 'name = "noxlib"' in pyproject.read_text(encoding="utf-8"):
        return ["-e", str(checkout)]
    import importlib.metadata  # only off a checkout; costs 25 ms to import

    try:
        dist = importlib.metadata.distribution("noxlib")
    except importlib.metadata.PackageNotFoundError:
        raise UsageError(
            f"noxlib is imported from {PACKAGE}, which is neither a checkout nor an installed "
            "distribution, so no session venv can get the same copy. Install it with pip, from "
            "a wheel, a git URL or a checkout (README: Use it in your project)."
        ) from None
    editable = _editable_folder(dist)
    if editable is not None:
        return ["-e", str(editable)]
    return [str(repacked_wheel(dist, (state_dir or Path.cwd() / ".noxlib") / WHEELS_DIR))]


def _editable_folder(dist: importlib.metadata.Distribution) -> Path | None:
    direct = dist.read_text("direct_url.json")
    if not direct:
        return None
    info = json.loads(direct)
    url = info.get("url", "")
    if not (url.startswith("file://") and info.get("dir_info", {}).get("editable", False)):
        return None
    folder = Path(unquote(urlparse(url).path))
    return folder if folder.is_dir() else None


def _package_files(dist: importlib.metadata.Distribution) -> dict[str, bytes]:
    """The installed package's files (no bytecode) and its metadata, by their path in a
    wheel."""
    info = f"noxlib-{dist.version}.dist-info"
    found = {
        f"noxlib/{path.relative_to(PACKAGE).as_posix()}": path.read_bytes()
        for path in sorted(PACKAGE.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    for name in _METADATA_FILES:
        text = dist.read_text(name)
        if text is not None:
            found[f"{info}/{name}"] = text.encode("utf-8")
    return found


def repacked_wheel(dist: importlib.metadata.Distribution, folder: Path) -> Path:
    """A wheel of the installed ``dist`` in ``folder``/CONTENT-HASH/, built once per content."""
    files = _package_files(dist)
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    wheel = folder / digest.hexdigest()[:16] / f"noxlib-{dist.version}-py3-none-any.whl"
    if not wheel.is_file():
        _write_wheel(wheel, files, f"noxlib-{dist.version}.dist-info")
    return wheel


def _write_wheel(wheel: Path, files: dict[str, bytes], info: str) -> None:
    files = dict(files)
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: noxlib\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [f"{name},sha256={_b64_sha256(data)},{len(data)}" for name, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheel.parent.mkdir(parents=True, exist_ok=True)
    partial = wheel.with_name(f".{wheel.name}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    partial.replace(wheel)  # a concurrent run sees no wheel, or a whole one


def _b64_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
