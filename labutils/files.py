"""Writing files so that an interrupted program never leaves half of one behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["PROJECT_ROOT", "atomic_save_torch", "atomic_write", "load_json"]


def atomic_write(path: str | Path, write: Callable[[Path], None], *, mode: int = 0o644) -> Path:
    """Create ``path`` through a temporary file in the same folder, renamed into place.

    A reader (or a later run) sees either the old file or the complete new one: the rename is
    atomic on POSIX and Windows, and a failure inside ``write`` removes the temporary file.

    Parameters
    ----------
    path : str or Path
        The file to create or replace; its folder is created if needed.
    write : callable
        ``write(temporary_path)`` writes the whole content to the path it is given.
    mode : int, default 0o644
        Permission bits of the result (temporary files are created private).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def atomic_save_torch(obj, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically, with bytes that depend only on ``obj``.

    ``torch.save`` given a *path* names the archive's root folder after the file, so saving
    through a randomly named temporary file would make two saves of the same weights differ
    byte for byte (and so in checksum). Writing through an open file handle avoids that.
    """
    import torch

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            torch.save(obj, handle)

    return atomic_write(path, write)


#: The repository's root folder (notebooks run in ``notebooks/``, scripts from the root).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def load_json(path: str | Path) -> dict:
    """Read a JSON file; a relative ``path`` is taken from the repository's root.

    Raises
    ------
    FileNotFoundError
        With the path it looked at.
    """
    path = Path(path)
    path = path if path.is_absolute() else PROJECT_ROOT / path
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: it is made by a committed script (see its docstring)")
    import json

    return json.loads(path.read_text())
