"""Append-only JSON-lines files (``history.jsonl``, ``monitoring.jsonl``): one flushed line per
record, and readers that survive a crash in the middle of an append. See ``docs/registry.md``."""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from models.errors import RegistryError
from models.files import json_default

log = logging.getLogger(__name__)

BLOCK = 1 << 16
"""Bytes read at a time when scanning back from the end of a file for the start of its last line."""


def last_line_start(fh: BinaryIO, size: int, block: int = BLOCK) -> int:
    """Offset where the file's last line begins (0 when it is the only one), whatever its length.

    The final byte is left out of the search, so a file ending in a newline gives the start of
    the line that newline ends. Reads backwards ``block`` bytes at a time.
    """
    end = size - 1  # the byte at ``end`` (perhaps the last line's newline) is not a separator
    while end > 0:
        start = max(0, end - block)
        fh.seek(start)
        chunk = fh.read(end - start)
        at = chunk.rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return False
    return True


def refuse_link(path: Path) -> None:
    """Raise RegistryError when ``path`` is a symbolic link: a registry file is never read or
    written through a link (an append would write into the link's target, anywhere).

    Raises:
        RegistryError: naming the link and its target.
    """
    if path.is_symlink():
        raise RegistryError(f"{path} is a symbolic link (to {os.readlink(path)!r}); finml never reads or writes a "
                            "registry file through a link: replace the link by the file itself (nothing was written)")


def _open_no_follow(path: Path, flags: int) -> int:
    """``os.open`` with ``O_NOFOLLOW``: a link as the last component fails instead of being followed.

    Raises:
        RegistryError: the path is a symbolic link (:func:`refuse_link`).
        OSError: the file cannot be opened.
    """
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:  # O_NOFOLLOW on a link
            refuse_link(path)
        raise


def open_for_read(path: Path) -> BinaryIO:
    """``path`` opened ``rb``, never through a symbolic link (a registry file or a version's file).

    Raises:
        RegistryError: the path is a symbolic link.
        OSError: the file cannot be opened.
    """
    return os.fdopen(_open_no_follow(path, os.O_RDONLY), "rb")


def open_for_append(path: Path) -> BinaryIO:
    """``path`` opened ``ab+`` (read, append, created when missing), never through a symbolic link.

    Raises:
        RegistryError: the path is a symbolic link.
        OSError: the file cannot be opened.
    """
    return os.fdopen(_open_no_follow(path, os.O_RDWR | os.O_APPEND | os.O_CREAT), "ab+")


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line (keys sorted), flushed to disk. Call under the model's lock.

    Before appending, the file's last line — found by scanning back to the previous newline,
    whatever its length — is checked: a line that parses is a record and is never cut (without
    its final newline, after a crash before the last byte or an editor, it gets the newline
    back); a last line that does not parse (a crash in the middle of an append) would end up in
    the middle of the file, where it makes the file unreadable, so it is cut from the file and
    kept in ``<file>.torn`` with a warning. Readers skip such a line in any case.

    Raises:
        RegistryError: the file (or its ``.torn`` file) is a symbolic link; nothing is written.
        OSError: the file cannot be opened or written.
    """
    line = (json.dumps(dict(record), sort_keys=True, default=json_default) + "\n").encode()
    with open_for_append(path) as fh:
        size = fh.seek(0, os.SEEK_END)
        if size:
            cut = last_line_start(fh, size)
            fh.seek(cut)
            last = fh.read(size - cut)
            complete = last.endswith(b"\n")
            if not last.strip() or _parses(last):
                if not complete:
                    fh.write(b"\n")
            else:
                with open_for_append(path.with_name(path.name + ".torn")) as torn:
                    torn.write(last if complete else last + b"\n")
                log.warning("%s: moved a torn last line of %d bytes (a crash while appending) to %s.torn",
                            path, size - cut, path.name)
                fh.truncate(cut)
        fh.seek(0, os.SEEK_END)
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records (JSON objects) of an append-only JSON-lines file, oldest first; ``[]`` when the
    file does not exist. Lines are split at ``\\n`` only, so a record of any length is one line.

    A torn *last* line (a crash while appending) is skipped with a warning.

    Raises:
        RegistryError: a damaged line before the last one (named by its line number), or a file
            that is a symbolic link.
    """
    refuse_link(path)
    if not path.is_file():
        return []
    with os.fdopen(_open_no_follow(path, os.O_RDONLY), "rb") as fh:
        data = fh.read()
    lines = [line for line in data.split(b"\n") if line.strip()]
    out = []
    for i, line in enumerate(lines):
        try:
            out.append(json.loads(line))
        except ValueError as err:
            if i == len(lines) - 1:
                log.warning("%s: skipping a torn last line (%s)", path, err)
                continue
            raise RegistryError(f"{path}: line {i + 1} is damaged ({err})") from None
    return out
