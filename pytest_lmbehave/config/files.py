"""Writing files so that no reader ever sees half of one, with the mode the user's umask gives new files."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write beside the target, then rename over it: a crash leaves the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staged = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~_umask())  # mkstemp makes 0600; a report or plan is an ordinary file
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(staged, path)
    finally:
        if os.path.exists(staged):
            os.unlink(staged)


def write_keyed(path: Path, key: str, value: Any) -> None:
    """``value`` pickled with the ``key`` it answers, written whole (``write_atomically``)."""
    write_atomically(path, pickle.dumps((key, value), protocol=pickle.HIGHEST_PROTOCOL))


def read_keyed(path: Path, key: str) -> Any | None:
    """What ``write_keyed`` wrote there for ``key``; None when the file is absent or damaged (a miss: the next write
    replaces it whole) or answers another key (two keys whose file names collide)."""
    try:
        with open(path, "rb") as handle:
            stored, value = pickle.load(handle)
    except Exception:
        return None
    return value if stored == key else None


def path_problem(path: Path) -> str | None:
    """Why a file cannot be written at ``path`` (a directory there, or a file where a folder should be), or None."""
    if path.is_dir():
        return f"{path} is a directory"
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else f"{parent} is a file, not a directory"
    return None
