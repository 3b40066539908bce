"""A SQL source's query is one statement that reads, refused at spec validation otherwise (before
any data is loaded), and its ORDER BY counts only outside comments and quoted text; the load-time
refusals carry the driver's message without SQLAlchemy's echo of the statement and its link."""

from __future__ import annotations

import sqlite3

import pytest

from models.errors import SpecError
from models.spec import parse_spec
from models.spec.sql_text import read_statement_problem, sql_code, statements
from tasks.load import DataSourceError, load_source
from tasks.sql_source import short_error
from tests.helpers import builtin_spec_dict

READ_ONLY = "field 'source.query': the SQL source is read-only and takes one SELECT statement: "


def _parse(query: str, spec: str = "credit_risk"):
    data = builtin_spec_dict(spec)  # credit_risk has no time column: its query needs ORDER BY
    data["source"] = {"kind": "sql", "url": "sqlite://", "query": query}
    return parse_spec(data, "test.yaml")


def _refusal(query: str, spec: str = "credit_risk") -> str:
    with pytest.raises(SpecError) as info:
        _parse(query, spec)
    return str(info.value)


@pytest.mark.parametrize(("query", "problem"), [
    ("DROP TABLE t; SELECT 1", "the query holds 2 statements separated by ';' (the second begins with 'SELECT')"),
    ("VACUUM INTO '/tmp/x.db'", "the query begins with 'VACUUM', not one of SELECT, WITH, VALUES, TABLE"),
    ("SELECT * FROM t ORDER BY id; ATTACH DATABASE '/tmp/x.db' AS other",
     "the query holds 2 statements separated by ';' (the second begins with 'ATTACH')"),
    ("DROP TABLE t", "the query begins with 'DROP', not one of SELECT, WITH, VALUES, TABLE"),
    ("SELECT 1 ORDER BY 1; -- a comment\n; DELETE FROM t",
     "the query holds 2 statements separated by ';' (the second begins with 'DELETE')"),
    ("SELECT 'it''s' ORDER BY 1; DROP TABLE t",
     "the query holds 2 statements separated by ';' (the second begins with 'DROP')"),
    ("-- only a comment", "the query holds no statement (only whitespace or comments)"),
])
def test_a_query_that_is_not_one_read_statement_is_refused_at_spec_validation(query, problem):
    message = _refusal(query)
    assert message == f"test.yaml: invalid spec: {READ_ONLY}{problem}"
    assert "add ORDER BY" not in message  # not the wrong reason first


def test_the_refusal_holds_with_a_time_column_too():
    assert READ_ONLY in _refusal("DROP TABLE t; SELECT 1", "market_forecast")


@pytest.mark.parametrize("query", [
    "SELECT * FROM loans WHERE note <> 'x;y' ORDER BY id;",  # a ';' in a string, a trailing ';'
    'SELECT "a;b" FROM loans ORDER BY 1 ;  -- the end',  # a quoted identifier, a comment after the ';'
    "SELECT $$;$$ AS s, $tag$ ; DROP TABLE t $tag$ AS d ORDER BY 1",  # PostgreSQL dollar quotes
    "SELECT E'a\\'; b' AS s ORDER BY 1",  # PostgreSQL escape string: \' stays inside
    "/* header; */ (SELECT id FROM loans) UNION (SELECT 2) ORDER BY 1",
    "WITH x AS (SELECT 1 AS id) SELECT * FROM x ORDER BY id",
    "VALUES (1), (2) ORDER BY 1",
    "TABLE loans ORDER BY id",
])
def test_one_read_statement_is_accepted(query):
    assert read_statement_problem(query) is None
    assert _parse(query).source.query == query


@pytest.mark.parametrize("query", [
    "SELECT * FROM loans -- ORDER BY id",
    "SELECT * FROM loans /* ORDER BY id */",
    "SELECT 'order by id' AS x FROM loans",
])
def test_an_order_by_in_a_comment_or_a_string_does_not_count(query):
    assert "source.query: add ORDER BY: without a time_column" in _refusal(query)


def test_the_scanner_blanks_comments_and_quoted_text():
    assert sql_code("SELECT 'a;b', \"c;d\", $$e;f$$ -- g;h\n/* i;j */ FROM t") == "SELECT '', \"\", $$  \n  FROM t"
    assert statements("SELECT 1;; ;") == ["SELECT 1"]
    assert sql_code("SELECT x$y$z, $1 FROM t") == "SELECT x$y$z, $1 FROM t"  # no dollar quote in a name or parameter
    assert sql_code("SELECT 'unterminated; DROP TABLE t") == "SELECT ''"  # runs to the end; the database refuses it


def test_a_load_time_refusal_carries_no_sqlalchemy_echo_or_link(tmp_path):
    db = tmp_path / "bank.db"
    sqlite3.connect(db).close()
    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "sql", "url": f"sqlite:///{db}", "query": "SELECT * FROM nosuch ORDER BY 1"}
    with pytest.raises(DataSourceError) as info:
        load_source(parse_spec(data))
    message = str(info.value)
    assert message == f"SQL source sqlite:///{db}: query failed: (sqlite3.OperationalError) no such table: nosuch"
    assert "sqlalche.me" not in message and "[SQL:" not in message


def test_short_error_cuts_the_statement_parameters_and_link():
    from sqlalchemy.exc import OperationalError

    err = OperationalError("SELECT *\nFROM t WHERE a = ?", (1,), sqlite3.OperationalError("no such table: t"))
    assert "[SQL: SELECT *" in str(err) and "sqlalche.me" in str(err)
    assert short_error(err) == "(sqlite3.OperationalError) no such table: t"
    assert short_error(ValueError("plain")) == "plain"
