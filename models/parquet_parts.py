"""An append-only store of Parquet parts inside a model's registry folder (the scoring ledger,
the late outcomes): each part is written to a hidden temporary file, flushed, renamed into
place, made read-only, then committed by one line of the store's hash-chained ``manifest.jsonl``
(path, SHA-256, rows, run id). Readers take only committed parts whose bytes still match their
line, so a crash at any moment leaves the old state or the new one, and an edited or removed
part is reported by :meth:`PartStore.verify` instead of being read."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from models.errors import RegistryError
from models.files import atomic_output
from models.integrity import chain_record, check_chain, sha256_file
from models.jsonl import append_jsonl, read_jsonl
from models.registry import LOCK_TIMEOUT_S
from models.registry_lock import registry_lock
from models.registry_tree import refuse_linked_entries



@dataclass(frozen=True)
class Part:
    """One committed part: its path relative to the store, SHA-256, rows and partition."""

    path: str
    sha256: str
    rows: int
    partition: str
    run_id: str | None


class PartStore:
    """The parts of ``<registry>/<model>/<name>/``, partitioned by a text key (``month=2026-03``).

    Args:
        root: the registry root. model: the model's folder name (checked by the registry).
        name: the store's folder (``ledger``, ``outcomes``).
    """

    def __init__(self, root: str | Path, model: str, name: str):
        self.model_dir = Path(root) / model
        self.dir = self.model_dir / name
        self.manifest = self.dir / "manifest.jsonl"
        self.name = name
        self.model = model

    def parts(self) -> list[Part]:
        """Committed parts, oldest first (``[]`` for a store never written)."""
        return [Part(r["path"], r["sha256"], int(r["rows"]), r["partition"], r.get("run_id"))
                for r in read_jsonl(self.manifest) if r.get("event") == "part"]

    def append(self, frames: dict[str, pd.DataFrame], run_id: str | None,
               note: dict | None = None) -> list[Part]:
        """Write one part per partition (``{partition: rows}``; empty frames are skipped) and
        commit each with a manifest line, under the model's lock. ``note``: JSON-ready facts kept
        in each part's manifest line under ``note`` (e.g. what the run that wrote it received), so
        they are committed with the rows, in the same line.

        Raises:
            RegistryError: the model has no registry folder, an entry is a symbolic link, or the
                lock cannot be taken; OSError: a write failed (nothing is committed then).
        """
        if not self.model_dir.is_dir():
            raise RegistryError(f"no model named {self.model!r} in the registry at {self.model_dir.parent.resolve()}")
        refuse_linked_entries(self.model_dir)
        written: list[Part] = []
        with registry_lock(self.model_dir, self.model, LOCK_TIMEOUT_S):
            for partition, frame in sorted(frames.items()):
                if frame.empty:
                    continue
                folder = self.dir / partition
                folder.mkdir(parents=True, exist_ok=True)
                relative = f"{partition}/part-{(run_id or 'run')[:36]}-{uuid.uuid4().hex[:8]}.parquet"
                target = self.dir / relative
                with atomic_output(target) as tmp:
                    frame.to_parquet(tmp, index=False)
                os.chmod(target, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
                part = Part(relative, sha256_file(target), int(len(frame)), partition, run_id)
                line = {"event": "part", "path": part.path, "sha256": part.sha256, "rows": part.rows,
                        "partition": partition, "run_id": run_id, **({"note": note} if note else {})}
                append_jsonl(self.manifest, chain_record(line, self.manifest, None, False))
                written.append(part)
        return written

    def read(self, columns: list[str]) -> pd.DataFrame:
        """Every committed part's rows, concatenated in commit order; an empty frame of
        ``columns`` when there is none.

        Raises:
            RegistryError: the manifest's hash chain is broken, or a committed part is missing
                or its bytes differ from its manifest line (nothing is read then: run
                ``finml registry verify``).
        """
        if self.manifest.exists():
            breaks = check_chain(self.manifest, None, False).breaks
            if breaks:
                raise RegistryError(f"{self.model}: {self.name}/manifest.jsonl is broken ({breaks[0]}); nothing is read "
                                    "(run `finml registry verify`)")
        frames = []
        for part in self.parts():
            path = self.dir / part.path
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise RegistryError(f"{self.model}: {self.name} part {part.path} is missing") from None
            if hashlib.sha256(data).hexdigest() != part.sha256:
                raise RegistryError(f"{self.model}: {self.name} part {part.path} changed since it was written "
                                    "(SHA-256 differs from its manifest line)")
            frames.append(pd.read_parquet(io.BytesIO(data)))
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        return pd.concat(frames, ignore_index=True)

    def verify(self) -> list[str]:
        """Problems of the store, one sentence each (empty: intact): a broken manifest chain, a
        committed part missing or changed, a part file no manifest line commits."""
        if not self.manifest.exists():
            return []
        problems = [f"{self.name}/manifest.jsonl: {p}" for p in check_chain(self.manifest, None, False).breaks]
        committed = set()
        for part in self.parts():
            committed.add(part.path)
            path = self.dir / part.path
            if not path.is_file():
                problems.append(f"{self.name} part {part.path} is missing")
            elif sha256_file(path) != part.sha256:
                problems.append(f"{self.name} part {part.path} changed since it was written")
        for path in sorted(self.dir.glob("*/*.parquet")):
            relative = path.relative_to(self.dir).as_posix()
            if relative not in committed:
                problems.append(f"{self.name} part {relative} is not committed by the manifest (a crashed write)")
        return problems
