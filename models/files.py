"""Atomic file writes: a hidden temporary file in the same folder, flushed, then renamed into
place, so a reader sees the old file or the new one, never a half-written one."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's entry to disk (a folder after a rename inside it).

    Raises:
        OSError: the path cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: str | Path, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally, the temporary file
    is flushed and renamed onto ``path``. When the block raises (an error, Ctrl-C, SystemExit),
    the temporary file is removed and ``path`` keeps its old content.

    Args:
        path: the file to write; its folder must exist.
        durable: fsync the file and its folder (registry files); False for outputs where speed
            matters more than surviving a power cut.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield tmp
        if durable:
            fsync_path(tmp)
        os.replace(tmp, path)
        if durable:
            fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str, *, durable: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path, durable=durable) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_default(value: Any) -> Any:
    """``json.dump`` fallback: NumPy scalars and arrays become Python values, anything else text."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def write_json_atomic(path: str | Path, data: Any, *, durable: bool = True) -> None:
    """Write ``data`` as indented, key-sorted JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=json_default), durable=durable)
