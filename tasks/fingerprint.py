"""The identity of a data set: rows, columns and a SHA-256 of its contents (recorded with every
version, compared by the champion re-scoring)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

__all__ = ["Fingerprint", "fingerprint"]


@dataclass(frozen=True)
class Fingerprint:
    """Identity of a data set: rows, columns (name:dtype) and SHA-256 of its contents."""

    rows: int
    columns: list[str]
    sha256: str

    def as_dict(self) -> dict:
        return {"rows": self.rows, "columns": self.columns, "sha256": self.sha256}


def fingerprint(df: pd.DataFrame) -> Fingerprint:
    """SHA-256 over the column names, dtypes and pandas' per-row hashes of the values.

    Equal for equal frames regardless of index; changes when any value, column or dtype does.
    """
    h = hashlib.sha256()
    cols = [f"{c}:{df[c].dtype}" for c in df.columns]
    h.update("|".join(cols).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return Fingerprint(rows=len(df), columns=cols, sha256=h.hexdigest())
