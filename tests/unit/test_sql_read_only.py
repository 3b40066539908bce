"""A spec's SQL source only reads: no statement of its query writes to the database or to a file
(issue 13 §2). PostgreSQL tests use the server this machine runs (skipped without it)."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from models.spec import parse_spec
from models.spec.data import SqlSource
from tasks.load import DataSourceError, TransientSourceError, load_source
from tests.helpers import builtin_spec_dict

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _sql_spec(url: str, query: str):
    """A spec whose source runs ``query`` as written: the spec's own refusal of a query that is not
    one read statement (tests/unit/test_sql_spec_query.py) is bypassed, so that these tests reach
    the load-time guards, which stay as a second defence."""
    spec = parse_spec(builtin_spec_dict("market_forecast"))  # has a time column: the query needs no ORDER BY
    return spec.model_copy(update={"source": SqlSource.model_construct(kind="sql", url=url, query=query)})


@pytest.fixture
def bank_db(tmp_path):
    """A SQLite file with one table ``loans`` of three rows."""
    db = tmp_path / "bank.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE loans (id INTEGER, amount REAL, note TEXT)")
        conn.executemany("INSERT INTO loans VALUES (?, ?, ?)", [(1, 100.0, "a;b"), (2, 200.0, "c"), (3, 300.0, "d")])
    return db


def _sqlite_rows(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM loans").fetchone()[0]


def test_sqlite_reads_and_a_semicolon_in_a_string_is_not_a_second_statement(bank_db):
    frame = load_source(_sql_spec(f"sqlite:///{bank_db}", "SELECT * FROM loans WHERE note <> 'x;y' ORDER BY id;"))
    assert frame["id"].tolist() == [1, 2, 3]
    assert frame["note"].tolist() == ["a;b", "c", "d"]


@pytest.mark.parametrize("query", [
    "DROP TABLE loans; COMMIT; SELECT 1 AS x ORDER BY 1",
    "DROP TABLE loans",
    "DELETE FROM loans RETURNING id ORDER BY 1",
    "SELECT 1 AS x ORDER BY 1; DROP TABLE loans",
])
def test_sqlite_writes_are_refused_and_the_table_stays(bank_db, query):
    with pytest.raises(DataSourceError, match="SQL source sqlite:///") as info:
        load_source(_sql_spec(f"sqlite:///{bank_db}", query))
    assert _sqlite_rows(bank_db) == 3
    assert not isinstance(info.value, TransientSourceError)  # a refusal is not retried
    assert "one SELECT statement" in str(info.value) or "read-only" in str(info.value)


@pytest.mark.parametrize("query", [
    "VACUUM INTO '{out}'",
    "ATTACH DATABASE '{out}' AS other",
    "ATTACH DATABASE 'file:{out}?mode=rwc' AS other",
])
def test_sqlite_vacuum_into_and_attach_write_no_file(bank_db, tmp_path, query):
    out = tmp_path / "copy.db"
    with pytest.raises(DataSourceError) as info:
        load_source(_sql_spec(f"sqlite:///{bank_db}", query.format(out=out)))
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.db"]
    assert "the source is opened read-only" in str(info.value)
    assert "sqlalche.me" not in str(info.value) and "[SQL:" not in str(info.value)  # SQLAlchemy's echo and link cut


def test_a_mode_rw_uri_is_opened_read_only_too(bank_db):
    url = f"sqlite:///file:{bank_db}?mode=rw&uri=true"
    with pytest.raises(DataSourceError) as info:
        load_source(_sql_spec(url, "DELETE FROM loans"))
    assert _sqlite_rows(bank_db) == 3
    assert "the source is opened read-only" in str(info.value)
    assert len(load_source(_sql_spec(url, "SELECT * FROM loans ORDER BY id"))) == 3


def test_a_missing_sqlite_file_is_named_not_created_and_not_retried(tmp_path):
    missing = tmp_path / "nowhere.db"
    with pytest.raises(DataSourceError, match="the SQLite database file .*nowhere.db does not exist") as info:
        load_source(_sql_spec(f"sqlite:///{missing}", "SELECT 1 AS x ORDER BY 1"))
    assert not isinstance(info.value, TransientSourceError)
    assert not missing.exists()


def test_other_drivers_refuse_a_semicolon_before_the_end():
    from tasks.sql_source import SERVER_PARSED, one_statement

    assert ("postgresql", "psycopg") in SERVER_PARSED and ("postgresql", "psycopg2") not in SERVER_PARSED
    one_statement("SELECT 1 ;  ", "db")  # a trailing ';' is one statement
    with pytest.raises(DataSourceError, match="SQL source db: the query holds a ';' before its end"):
        one_statement("SELECT 1; DROP TABLE t", "db", DataSourceError)


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_table():
    """A table of three rows in the machine's PostgreSQL (``test`` database), dropped afterwards."""
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL)
    try:
        engine.connect().close()
    except Exception as err:  # pragma: no cover - the machine's PostgreSQL is not running
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {err}")
    table = f"finml_ro_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (id int, note text)"))
        conn.execute(sa.text(f"INSERT INTO {table} VALUES (1, 'a;b'), (2, 'c'), (3, 'd')"))

    def rows() -> int | None:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": table}).scalar() is None:
                return None
            return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()

    try:
        yield table, rows
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


@pytest.mark.parametrize("query", [
    "DROP TABLE {t}; COMMIT; SELECT 1 AS x ORDER BY 1",
    "SET default_transaction_read_only = off; COMMIT; DROP TABLE {t}; COMMIT; SELECT 1 AS x ORDER BY 1",
    "COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; DELETE FROM {t}; COMMIT; SELECT 1 ORDER BY 1",
    "DROP TABLE {t}",
    "WITH gone AS (DELETE FROM {t} RETURNING id) SELECT * FROM gone ORDER BY id",
    "SELECT 1 AS x ORDER BY 1; DROP TABLE {t}",
    "DO $$BEGIN EXECUTE 'DROP TABLE {t}'; END$$",
    "SELECT set_config('transaction_read_only', 'off', false) AS x, (SELECT count(*) FROM {t}) AS n",
])
def test_postgresql_writes_are_refused_and_the_table_stays(pg_table, query):
    table, rows = pg_table
    with pytest.raises(DataSourceError, match="SQL source postgresql") as info:
        load_source(_sql_spec(PG_URL, query.format(t=table)))
    assert rows() == 3
    assert not isinstance(info.value, TransientSourceError)
    assert "one SELECT statement" in str(info.value) or "read-only" in str(info.value)


def test_postgresql_reads_in_a_read_only_transaction_with_the_url_options_kept(pg_table):
    table, _ = pg_table
    url = PG_URL + "?options=-c%20application_name%3Dfinml_probe"
    query = (f"SELECT id, note, current_setting('transaction_read_only') AS ro, "
             f"current_setting('application_name') AS app, $$;$$ AS dollar FROM {table} ORDER BY id")
    frame = load_source(_sql_spec(url, query))
    assert frame["note"].tolist() == ["a;b", "c", "d"]
    assert set(frame["ro"]) == {"on"} and set(frame["app"]) == {"finml_probe"} and set(frame["dollar"]) == {";"}
