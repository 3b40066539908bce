"""A small lexical scanner of a SQL source query, for the spec's checks: the query's code with
comments and quoted text blanked out, its statements, and the first keyword of its first one.

It knows the quoting every supported database shares: ``'…'`` string literals (``''`` inside;
PostgreSQL's ``E'…'`` also takes ``\\'``), ``"…"`` quoted identifiers (``""`` inside), ``--``
line comments, ``/* … */`` block comments (not nested, as in SQLite) and PostgreSQL's dollar
quotes ``$$…$$`` / ``$tag$…$tag$`` (PostgreSQL documentation, "Lexical Structure", 4.1). It does
not parse SQL: the database's own read-only guards stay the defence (``tasks/sql_source.py``).
"""

from __future__ import annotations

import re

READ_KEYWORDS = ("SELECT", "WITH", "VALUES", "TABLE")
"""First keywords of a statement that only reads (``TABLE t`` is standard SQL for ``SELECT * FROM t``)."""

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_$]")


def _skip_quoted(query: str, start: int, quote: str, backslash: bool) -> int:
    """The index just after the literal that opens at ``start`` (its opening ``quote``), or the
    text's end for an unterminated one; a doubled quote (and, with ``backslash``, ``\\<char>``)
    stays inside."""
    i, n = start + 1, len(query)
    while i < n:
        c = query[i]
        if backslash and c == "\\":
            i += 2
        elif c == quote:
            if i + 1 < n and query[i + 1] == quote:
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n


def sql_code(query: str) -> str:
    """``query`` with each comment replaced by a space and the contents of each string literal,
    quoted identifier and dollar-quoted string removed (``'…'`` → ``''``, ``"…"`` → ``""``,
    ``$tag$…$tag$`` → ``$$``): what is left is the SQL's own words and punctuation, so a ``;``
    or an ``ORDER BY`` in it is one the database would see. An unterminated literal or comment
    runs to the end of the text (the database will refuse the query)."""
    out: list[str] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c == "-" and query.startswith("--", i):
            end = query.find("\n", i)
            i = n if end < 0 else end
            out.append(" ")
        elif c == "/" and query.startswith("/*", i):
            end = query.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        elif c in "'\"":
            prev = query[i - 1] if i else ""
            escaped = c == "'" and prev != "" and prev in "eE" and (i < 2 or not _IDENT_CHAR.match(query[i - 2]))
            i = _skip_quoted(query, i, c, backslash=escaped)
            out.append(c + c)
        elif c == "$" and not (i and _IDENT_CHAR.match(query[i - 1])) and (tag := _DOLLAR_TAG.match(query, i)):
            end = query.find(tag.group(0), tag.end())
            i = n if end < 0 else end + len(tag.group(0))
            out.append("$$")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def statements(query: str) -> list[str]:
    """The non-empty statements of ``query``'s code (:func:`sql_code`) split at ``;``, stripped;
    a trailing ``;`` makes no statement."""
    return [s.strip() for s in sql_code(query).split(";") if s.strip()]


def first_keyword(statement: str) -> str:
    """The first word of a statement's code after any opening parentheses, upper-cased ('' if none)."""
    match = re.match(r"[\s(]*([A-Za-z_]+)", statement)
    return match.group(1).upper() if match else ""


def read_statement_problem(query: str) -> str | None:
    """Why ``query`` is not one statement that reads (None when it is): empty, several
    statements separated by ``;``, or a first keyword other than :data:`READ_KEYWORDS`."""
    found = statements(query)
    if not found:
        return "the query holds no statement (only whitespace or comments)"
    if len(found) > 1:
        return (f"the query holds {len(found)} statements separated by ';' (the second begins with "
                f"{first_keyword(found[1]) or found[1][:20]!r})")
    word = first_keyword(found[0])
    if word not in READ_KEYWORDS:
        return f"the query begins with {word or found[0][:20]!r}, not one of {', '.join(READ_KEYWORDS)}"
    return None
