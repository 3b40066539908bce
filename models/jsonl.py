"""Append-only JSON-lines files (``history.jsonl``, ``monitoring.jsonl``): one flushed line per
record, and readers that survive a crash in the middle of an append. See ``docs/registry.md``."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.errors import RegistryError
from models.files import json_default

log = logging.getLogger(__name__)


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line (keys sorted), flushed to disk. Call under the model's lock.

    The readers skip a last line that does not parse (a crash while appending); before
    appending, such a line is moved out of the way — cut from the file and kept in
    ``<file>.torn`` with a warning — so that it never ends up in the middle of the file,
    where it would make the file unreadable. A last line that parses but lacks its newline
    (a crash before the final byte, an editor) gets the newline back: it is a record.

    Raises:
        OSError: the file cannot be opened or written.
    """
    line = (json.dumps(dict(record), sort_keys=True, default=json_default) + "\n").encode()
    with open(path, "ab+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size:
            start = max(0, size - (1 << 20))
            fh.seek(start)
            tail = fh.read()
            body = tail[:-1] if tail.endswith(b"\n") else tail
            cut = start + body.rfind(b"\n") + 1  # where the last line begins (0 when it is the only one)
            last = body[body.rfind(b"\n") + 1:]
            try:
                json.loads(last) if last.strip() else None
                if not tail.endswith(b"\n"):
                    fh.write(b"\n")
            except ValueError:
                with open(path.with_name(path.name + ".torn"), "ab") as torn:
                    torn.write(tail[cut - start:] + (b"" if tail.endswith(b"\n") else b"\n"))
                log.warning("%s: moved a torn last line of %d bytes (a crash while appending) to %s.torn",
                            path, size - cut, path.name)
                fh.truncate(cut)
        fh.seek(0, os.SEEK_END)
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records (JSON objects) of an append-only JSON-lines file, oldest first; ``[]`` when the
    file does not exist.

    A torn *last* line (a crash while appending) is skipped with a warning.

    Raises:
        RegistryError: a damaged line before the last one (named by its line number).
    """
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
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
