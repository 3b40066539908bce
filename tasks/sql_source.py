"""SQL sources opened read-only: a spec's query reads, it never writes. See ``docs/operations.md``
(Sources only read)."""

from __future__ import annotations

import os
import re
import sqlite3
import string
from pathlib import Path
from urllib.parse import quote

from models.errors import DataError


class SqlSourceError(DataError, RuntimeError):
    """Base of the SQL source's own refusals (``tasks.load.DataSourceError`` is raised instead
    by :func:`tasks.load.load_source`; this module stays free of the loader)."""


def expand_env(text: str, error: type[Exception] = SqlSourceError) -> str:
    """``${VAR}`` (and ``$VAR``) replaced by the environment's value (``string.Template``); raises
    ``error`` naming a variable that is not set."""
    try:
        return string.Template(text).substitute(os.environ)
    except KeyError as err:
        raise error(f"environment variable {err.args[0]!r} used in the SQL url is not set") from None
    except ValueError as err:  # a lone "$" not followed by a name
        raise error(f"SQL url: {err} (write $$ for a literal $)") from None


def redact(url: str) -> str:
    """A database URL with its password shown as ``***`` (SQLAlchemy's rendering)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


READ_ONLY_PG_OPTION = "-c default_transaction_read_only=on"
"""libpq startup option: every transaction of the session starts read-only (PostgreSQL
``default_transaction_read_only``), a ``COMMIT`` inside the query text included."""

SQLITE_ALLOWED_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                                    sqlite3.SQLITE_RECURSIVE})
"""SQLite authorizer actions a source query may use (https://www.sqlite.org/c3ref/c_alter_table.html):
reading tables, calling functions, recursive CTEs. Everything else (``ATTACH``, ``VACUUM INTO``,
``PRAGMA``, ``CREATE``, ``DROP``, ``INSERT`` …) is denied."""

SERVER_PARSED = {("postgresql", "psycopg"), ("sqlite", "pysqlite")}
"""(dialect, driver) pairs whose database or driver itself refuses a query text holding more
than one statement: psycopg 3 with ``prepare_threshold=0`` (a prepared statement is one command)
and Python's ``sqlite3`` (``execute`` runs one statement). Other drivers get :func:`one_statement`."""


def _sqlite_read_only_url(url, shown: str, error: type[Exception]):
    """The SQLite URL opened as ``file:…?mode=ro`` (a URI, https://www.sqlite.org/uri.html)."""
    database = url.database
    if not database or database == ":memory:":
        return url
    if str(url.query.get("uri", "")).lower() in ("true", "1", "yes"):
        return url.update_query_dict({"mode": "ro"})  # replaces any mode=rw / rwc of the user's URI
    path = Path(database)
    if not path.is_file():
        raise error(f"SQL source {shown}: the SQLite database file {database} does not exist")
    return url.set(database="file:" + quote(str(path.resolve()))).update_query_dict({"uri": "true", "mode": "ro"})


def read_only_engine(url_text: str, shown: str, error: type[Exception] = SqlSourceError):
    """A SQLAlchemy engine on ``url_text`` whose sessions cannot write where the driver allows it.

    - PostgreSQL (psycopg 3, psycopg2): the libpq option :data:`READ_ONLY_PG_OPTION` added to the
      URL's own ``options``; psycopg 3 also prepares every statement (``prepare_threshold=0``).
    - SQLite: the file opened ``mode=ro``; a missing file raises ``error`` (``mode=ro`` never
      creates one).
    - Other databases: the engine as the URL gives it; use a read-only role (docs/operations.md).

    Raises:
        error: a SQLite file that does not exist.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(url_text)
    backend, driver = url.get_backend_name(), url.get_driver_name()
    connect_args: dict = {}
    if backend == "postgresql" and driver in ("psycopg", "psycopg2"):
        options = " ".join(filter(None, [str(url.query.get("options", "")), READ_ONLY_PG_OPTION]))
        connect_args["options"] = options
        if driver == "psycopg":
            connect_args["prepare_threshold"] = 0
    elif backend == "sqlite":
        url = _sqlite_read_only_url(url, shown, error)
    return create_engine(url, connect_args=connect_args)


def _sqlite_authorizer(action: int, *_args) -> int:
    return sqlite3.SQLITE_OK if action in SQLITE_ALLOWED_ACTIONS else sqlite3.SQLITE_DENY


def one_statement(query: str, shown: str, error: type[Exception] = SqlSourceError) -> None:
    """Refuse a query text with a ``;`` anywhere but at its end, for drivers that would run every
    statement (not in :data:`SERVER_PARSED`). Without the database's own parser, a ``;`` inside a
    string literal counts too: rewrite it (``CHR(59)``) or use a database from SERVER_PARSED.

    Raises:
        error: naming the source.
    """
    if ";" in query.strip().rstrip(";"):
        raise error(f"SQL source {shown}: the query holds a ';' before its end; a source query is one SELECT "
                    "statement (with this driver finml cannot tell a ';' in a string from a second statement)")


def make_read_only(conn, query: str, shown: str, error: type[Exception] = SqlSourceError) -> None:
    """Before the source query runs on ``conn`` (a SQLAlchemy connection from
    :func:`read_only_engine`): open a ``READ ONLY`` transaction (PostgreSQL), install the SQLite
    authorizer (:data:`SQLITE_ALLOWED_ACTIONS`) with no attached database allowed
    (``SQLITE_LIMIT_ATTACHED`` = 0), and refuse a multi-statement text the driver would run
    (:func:`one_statement`).

    Raises:
        error: a multi-statement query on a driver outside :data:`SERVER_PARSED`.
    """
    dialect = conn.dialect
    if (dialect.name, dialect.driver) not in SERVER_PARSED:
        one_statement(query, shown, error)
    if dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif dialect.name == "sqlite":
        raw = conn.connection.driver_connection
        if isinstance(raw, sqlite3.Connection):
            raw.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            raw.set_authorizer(_sqlite_authorizer)


MULTI_STATEMENT_ERRORS = ("multiple commands", "one statement at a time")
"""Words of the PostgreSQL and ``sqlite3`` errors for a text of several statements."""
READ_ONLY_ERRORS = ("read-only transaction", "read-write mode", "not authorized", "authorization denied",
                    "readonly database", "too many attached databases")
"""Words of the PostgreSQL and SQLite errors for a write refused by the read-only guards."""


_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")


def short_error(err: Exception) -> str:
    """SQLAlchemy's text of ``err`` without the statement echoed back (``[SQL: …]``, and the
    ``[parameters: …]`` after it) and without the ``(Background on this error at: …)`` link:
    the driver's own message, which the query's author needs (the query is in the spec)."""
    text = str(err).split("\n[SQL: ", 1)[0]
    return _BACKGROUND.sub("", text).strip()


def explain_refusal(err: Exception) -> str:
    """A hint for a query the read-only guards refused ('' for any other error)."""
    text = str(err)
    if any(words in text for words in MULTI_STATEMENT_ERRORS):
        return "; a source query is one SELECT statement, not several separated by ';'"
    if any(words in text for words in READ_ONLY_ERRORS):
        return "; the source is opened read-only: a source query only reads (SELECT)"
    return ""
