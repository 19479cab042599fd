"""Files that readers may open at any moment: replaced whole, never seen half written.

Created with the mode any tool's output gets under the process's umask (0644 and 0755 under
umask 022), not the 0600 and 0700 that ``tempfile`` gives its files: a web server, an uploader
or a colleague running as another user must be able to read the reports.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path


@functools.cache
def _umask() -> int:
    # The only portable way to read the umask is to set it: once, and put it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open()`` gives a new file under this process's umask."""
    return 0o666 & ~_umask()


def folder_mode() -> int:
    """The mode ``mkdir()`` gives a new folder under this process's umask."""
    return 0o777 & ~_umask()


def make_temp_folder(parent: Path, prefix: str) -> Path:
    """A fresh folder in ``parent`` (mkdtemp's unique name), with a plain folder's mode."""
    folder = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    folder.chmod(folder_mode())
    return folder


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
