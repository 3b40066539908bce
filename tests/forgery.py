"""What an attacker with write access to the registry (and not the signing key) does: make a version
folder writable, replace a file, and recompute every unkeyed integrity datum — the file's hash in
``metadata.json``, ``metadata.sha256``, the ``metadata_sha256`` of the commit line, and the hash
chain of every line after it — and a model whose pickle leaves a marker file when unpickled."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from models.estimators import save_pipeline
from models.registry import ModelRegistry


class Planted:
    """Unpickling this object opens ``marker`` for writing, which creates the file: proof that
    the planted pickle was deserialised."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def fitted_pipeline(coef_sign: float = 1.0) -> Pipeline:
    """A tiny fitted pipeline; ``coef_sign`` tells two of them apart (sign of the coefficient)."""
    X = np.array([[0.0], [1.0], [2.0], [3.0]]) * coef_sign
    return Pipeline([("model", LogisticRegression())]).fit(X, [0, 0, 1, 1])


def pipeline_writer(pipeline: Pipeline):
    """A ``publish`` writer saving ``pipeline`` in ``model/`` (as ``tasks.promote`` does)."""

    def write(folder: Path, version: int) -> dict:
        (folder / "model").mkdir()
        save_pipeline(pipeline, folder / "model")
        (folder / "model_card.md").write_text(f"# card v{version}\n")
        return {"model": "m", "metrics": {"roc_auc": 0.8}}

    return write


def writable(path: Path) -> None:
    """Give a version folder and its files their owner's write bit back (the attacker's first step)."""
    for p in [path, *path.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def rechain(history: Path, lines: list[dict]) -> None:
    """Write ``lines`` as the history with every ``prev_sha256`` recomputed (no key needed)."""
    out: list[bytes] = []
    for rec in lines:
        if "prev_sha256" in rec:
            rec["prev_sha256"] = hashlib.sha256(out[-1]).hexdigest() if out else "0" * 64
        out.append(json.dumps(rec, sort_keys=True).encode())
    history.write_bytes(b"".join(line + b"\n" for line in out))


def _rewrite_version(reg: ModelRegistry, version: int, edit, drop_signatures: bool) -> None:
    """Apply ``edit`` to the parsed ``metadata.json`` of ``version``, write it back and recompute
    ``metadata.sha256``, the commit line's ``metadata_sha256`` and the chain (no key needed);
    ``drop_signatures`` also strips every signature."""
    vdir = reg.version_dir(version)
    meta = json.loads((vdir / "metadata.json").read_text())
    edit(meta)
    (vdir / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    digest = hashlib.sha256((vdir / "metadata.json").read_bytes()).hexdigest()
    (vdir / "metadata.sha256").write_text(digest + "\n")
    lines = [json.loads(line) for line in reg.history_path.read_text().splitlines() if line.strip()]
    for rec in lines:
        if rec.get("version") == version and rec.get("metadata_sha256"):
            rec["metadata_sha256"] = digest
        if drop_signatures:
            rec.pop("signature", None)
    rechain(reg.history_path, lines)


def forge_file(reg: ModelRegistry, version: int, rel: str, data: bytes, drop_signatures: bool = False) -> None:
    """Replace ``rel`` of ``version`` with ``data`` and recompute every unkeyed hash, as an attacker
    would; ``drop_signatures`` also strips every signature (a history that looks unsigned)."""
    vdir = reg.version_dir(version)
    writable(vdir)
    (vdir / rel).write_bytes(data)
    _rewrite_version(reg, version, lambda meta: meta["files"].__setitem__(rel, hashlib.sha256(data).hexdigest()),
                     drop_signatures)


def rewrite_metadata(reg: ModelRegistry, version: int, edit) -> None:
    """Apply ``edit`` (a function changing the parsed ``metadata.json`` in place) to ``version`` and
    write the metadata back with ``metadata.sha256``, the commit line's ``metadata_sha256`` and
    the chain recomputed, as the registry's writer would have written it (no signature kept)."""
    writable(reg.version_dir(version))
    _rewrite_version(reg, version, edit, drop_signatures=True)


def planted_pickle(marker: Path) -> bytes:
    return pickle.dumps(Planted(marker))
