"""Huge or odd batches refused cheaply (issue 13 §3): a Parquet "decompression bomb" and CSVs over
``FINML_MAX_BATCH_ROWS`` or the memory available, a 1 MB value not echoed whole, a datetime in a
numeric Parquet column named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from models.spec import find_spec, load_spec_file
from tasks import batch_limits
from tasks.load import DataPreparationError, DataSourceError, load_source, parse_declared_types, read_table_file
from tasks.validate import validate_frame
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict, write_spec


@pytest.fixture(scope="module")
def credit_raw():
    return load_source(find_spec("credit_risk", BUILTIN_SPECS))


def _file_spec(tmp_path, path):
    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "file", "path": str(path)}
    return load_spec_file(write_spec(tmp_path, data))


def test_a_parquet_decompression_bomb_is_refused_from_its_footer(tmp_path, monkeypatch):
    """6,000,000 rows in a file of a few kB: refused by the default FINML_MAX_BATCH_ROWS before a
    page is decoded (the reader is never called)."""
    path = tmp_path / "bomb.parquet"
    pd.DataFrame({"Income": np.zeros(6_000_000, dtype="int8")}).to_parquet(path, index=False)
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: pytest.fail("the rows were read"))
    with pytest.raises(DataSourceError, match=r"bomb\.parquet: 6,000,000 rows, over FINML_MAX_BATCH_ROWS=5,000,000"):
        read_table_file(path)


def test_a_parquet_file_too_large_for_the_memory_is_refused_naming_the_estimate(tmp_path, monkeypatch):
    path = tmp_path / "wide.parquet"
    pd.DataFrame({"a": np.zeros(100_000), "b": ["x"] * 100_000}).to_parquet(path, index=False)
    # 100,000 rows x (8 bytes + an 8-byte pointer and the text) = about 1.6 MB decoded
    assert 1_600_000 <= batch_limits.parquet_decoded_bytes(pq.ParquetFile(path).metadata) < 1_800_000
    monkeypatch.setattr(batch_limits, "available_memory", lambda: 1_000_000)
    with pytest.raises(DataSourceError, match=r"wide\.parquet: loading it needs about 13 MB of memory \(100,000 "
                                              r"rows of about 1\.6 MB decoded, 8x that to check them\) but 1\.0 MB is available"):
        read_table_file(path)
    monkeypatch.setenv("FINML_MEMORY_CHECK", "false")
    assert len(read_table_file(path)) == 100_000


def test_a_csv_over_the_row_limit_is_refused_after_reading_one_row_past_it(tmp_path, monkeypatch, credit_raw):
    path = tmp_path / "loans.csv"
    credit_raw.head(101).to_csv(path, index=False)
    monkeypatch.setenv("FINML_MAX_BATCH_ROWS", "100")
    seen = []
    real = pd.read_csv

    def read_csv(*args, **kwargs):
        seen.append(kwargs.get("nrows"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", read_csv)
    with pytest.raises(DataSourceError, match=r"loans\.csv: more than 100 rows, over FINML_MAX_BATCH_ROWS=100"):
        load_source(_file_spec(tmp_path, path))
    assert seen == [1, 101]  # the header, then at most one row past the limit
    credit_raw.head(100).to_csv(path, index=False)
    assert len(read_table_file(path)) == 100


def test_a_csv_too_large_for_the_memory_is_refused_before_it_is_read(tmp_path, monkeypatch, credit_raw):
    path = tmp_path / "loans.csv"
    credit_raw.to_csv(path, index=False)
    size = path.stat().st_size
    monkeypatch.setattr(batch_limits, "available_memory", lambda: size * 4)
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: pytest.fail("the file was read"))
    with pytest.raises(DataSourceError, match=r"loans\.csv: loading it needs about 2\.\d MB of memory \(8x the file's "
                                              r"0\.3 MB\) but 1\.\d MB is available"):
        read_table_file(path)


def test_a_datetime_in_a_numeric_parquet_column_is_named(tmp_path, credit_raw):
    raw = credit_raw.copy()
    raw["Income"] = pd.Timestamp("2024-01-31")
    path = tmp_path / "loans.parquet"
    raw.to_parquet(path, index=False)
    spec = _file_spec(tmp_path, path)
    with pytest.raises(DataPreparationError, match=r"^column 'Income': declared numeric but the source holds dates "
                                                   r"and times \(datetime64\[(ms|us|ns)\]\)") as err:
        parse_declared_types(load_source(spec), spec)
    assert err.value.column == "Income"
    # and the vectorised validation, given the frame as read, reports instead of raising TypeError
    report = validate_frame(load_source(spec), spec, engine="fast")
    between = next(o for o in report.critical_failures
                   if o.column == "Income" and o.expectation == "ExpectColumnValuesToBeBetween")
    assert between.error.startswith("not evaluated")


def test_a_1_mb_value_is_not_echoed_whole(tmp_path, credit_raw):
    raw = credit_raw.copy()
    raw["Income"] = raw["Income"].astype(object)
    raw.loc[3, "Income"] = "9" * 500_000 + "x" * 500_000
    path = tmp_path / "loans.csv"
    raw.to_csv(path, index=False)
    spec = _file_spec(tmp_path, path)
    with pytest.raises(DataPreparationError) as err:
        parse_declared_types(load_source(spec), spec)
    assert len(str(err.value)) < 600
    assert "…(1,000,000 chars)" in str(err.value)
    assert err.value.examples == ["9" * 80 + "…(1,000,000 chars)"]
    # the validation report: an unexpected category of 1 MB
    frame = parse_declared_types(credit_raw, spec).copy()
    frame["Home"] = frame["Home"].astype(object)
    frame.loc[5, "Home"] = "h" * 1_000_000
    report = validate_frame(frame, spec, engine="fast")
    sentences = [o.sentence() for o in report.critical_failures + report.warnings if o.column == "Home"]
    assert sentences and all(len(s) < 600 for s in sentences)
    assert any("…(1,000,000 chars)" in s for s in sentences)
