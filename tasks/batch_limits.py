"""Limits of one batch read from a CSV or Parquet file, checked before the file is read whole: its
rows against ``FINML_MAX_BATCH_ROWS`` and the memory loading it takes against the memory
available. A Parquet file tells its rows and column types in its footer, so a "decompression
bomb" (a small file of tens of millions of rows) is refused without decoding a page; a CSV is
read at most one row past the limit. The figures behind the memory estimates:
``docs/performance.md`` (Memory), measured by ``benchmarks/memory.py``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tasks.source_errors import DataSourceError

CSV_MEMORY_FACTOR = 8.0
"""Peak memory of reading, parsing and validating a CSV, over the libraries already loaded, per
byte of the file: 7.8-8.5 measured on the ``credit_risk`` data (``benchmarks/memory.py``); text
columns cost most (a short string is a Python object of about 60 bytes)."""
PARQUET_MEMORY_FACTOR = 8.0
"""Peak memory of reading, parsing and validating a Parquet file, over the libraries already
loaded, per byte of its decoded size as :func:`parquet_decoded_bytes` estimates it: 7.0 measured
at 430,000 rows of the ``credit_risk`` data, 9.5 at 140,000 (``benchmarks/memory.py``); most of it
is the validation, whose engine holds its own copies of the text columns."""
_OBJECT_BYTES = 8
"""A pointer per value of a text column (pyarrow shares the objects of repeated strings); the
strings themselves are counted by the column's uncompressed size."""


def _settings():
    from models.settings import get_settings

    return get_settings()


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (``psutil.virtual_memory().available``)."""
    import psutil

    return int(psutil.virtual_memory().available)


def _gb(n: float) -> str:
    """Bytes as ``1.2 GB`` or ``13 MB`` (powers of ten)."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB" if n >= 1e7 else f"{n / 1e6:.1f} MB"


def _check_memory(path: Path, needed: float, how: str) -> None:
    if not _settings().memory_check:
        return
    free = available_memory()
    if needed > free:
        raise DataSourceError(
            f"{path}: loading it needs about {_gb(needed)} of memory ({how}) but {_gb(free)} is available; use a "
            "machine with more memory or split the batch (FINML_MEMORY_CHECK=false skips this estimate)")


def _too_many_rows(path: Path, rows: str, limit: int) -> DataSourceError:
    return DataSourceError(f"{path}: {rows} rows, over FINML_MAX_BATCH_ROWS={limit:,}; split the batch, or raise "
                           "the setting on a machine with the memory for it (docs/performance.md, Memory)")


def parquet_decoded_bytes(metadata) -> int:
    """Estimated bytes of a Parquet file's rows once decoded into pandas, from its footer
    (``pyarrow.parquet.FileMetaData``): fixed-width columns at their width per row; text and
    binary columns at a pointer per row plus their uncompressed size."""
    import pyarrow as pa

    schema = metadata.schema.to_arrow_schema()
    rows = metadata.num_rows
    uncompressed = [0] * metadata.num_columns
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for c in range(min(group.num_columns, len(uncompressed))):
            uncompressed[c] += group.column(c).total_uncompressed_size
    total = 0
    for i, field in enumerate(schema):
        try:
            width = field.type.bit_width // 8 or 1
        except ValueError:  # variable width: text, binary, nested
            width = None
        if width is not None and not pa.types.is_dictionary(field.type):
            total += rows * max(width, 1)
        else:
            total += rows * _OBJECT_BYTES + (uncompressed[i] if i < len(uncompressed) else 0)
    return total


def check_batch_file(path: Path, fmt: str) -> None:
    """Refuse a file over the batch limits before it is read whole: a Parquet file by the rows
    and decoded size its footer gives, a CSV by the memory its size implies
    (:data:`CSV_MEMORY_FACTOR`).

    Raises:
        DataSourceError: naming the file, the count or the memory, and the setting.
    """
    limit = _settings().max_batch_rows
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            metadata = pq.ParquetFile(path).metadata
        except Exception as err:  # not Parquet: the reader names the problem
            raise DataSourceError(f"{path}: cannot read as parquet: {err}") from err
        if metadata.num_rows > limit:
            raise _too_many_rows(path, f"{metadata.num_rows:,}", limit)
        decoded = parquet_decoded_bytes(metadata)
        _check_memory(path, decoded * PARQUET_MEMORY_FACTOR,
                      f"{metadata.num_rows:,} rows of about {_gb(decoded)} decoded, "
                      f"{PARQUET_MEMORY_FACTOR:g}x that to check them")
    else:
        size = path.stat().st_size
        _check_memory(path, size * CSV_MEMORY_FACTOR, f"{CSV_MEMORY_FACTOR:g}x the file's {_gb(size)}")


def csv_read_rows() -> int:
    """Rows to read from a CSV: one past ``FINML_MAX_BATCH_ROWS``, so that an excess is seen."""
    return _settings().max_batch_rows + 1


def check_batch_rows(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (a CSV read with ``nrows=``:func:`csv_read_rows`) if within the row limit.

    Raises:
        DataSourceError: the file has more rows than ``FINML_MAX_BATCH_ROWS``.
    """
    limit = _settings().max_batch_rows
    if len(frame) > limit:
        raise _too_many_rows(path, f"more than {limit:,}", limit)
    return frame
