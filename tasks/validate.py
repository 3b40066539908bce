"""Data validation: the spec's expectation suite run in memory, with Great Expectations or the fast
pandas engine, and the checks of the modelling table that per-column expectations cannot see.

The suite comes from :mod:`tasks.expectations` (every declared column, its type, range, allowed
values and missing share; the row count; unique keys; the target), the fast engine from
:mod:`tasks.validate_fast`. In the *serving* form (scoring and monitoring) the target is optional.
Great Expectations is imported only when a suite runs. The suite, both engines and what each
kind of bad input gives: ``docs/data-quality.md``.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from models.errors import DataError
from models.market_rows import ROW_ORDER
from models.spec import ModelSpec
from tasks.expectations import (
    DataValidationError,
    ExpectationDef,
    ExpectationOutcome,
    ValidationReport,
    expectations_for,
    explain_missing_columns,
    gx_result_format,
    gx_unexpected_rows,
    id_column_of,
    json_safe,
    missing_column_hint,
)
from tasks.fairness import check_protected_groups
from tasks.file_order import file_order_outcomes
from tasks.invalid_values import invalid_value_outcomes
from tasks.step import step
from tasks.validate_fast import run_suite_fast


def _error_message(exception_info: Any) -> str | None:
    if not exception_info:
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, dict) and info.get("raised_exception"):
            msg = str(info.get("exception_message") or "error")
            return msg.splitlines()[-1][:300]
    return None


def run_suite(df: pd.DataFrame, definitions: list[ExpectationDef], suite_name: str,
              id_column: str | None = None) -> ValidationReport:
    """Run expectation definitions on a DataFrame with an ephemeral Great Expectations context.

    Returns a :class:`ValidationReport` in the order of ``definitions`` (GX returns results
    in its own order). Nothing is written to disk. ``id_column`` (a column of ``df``) names the
    first bad rows of each failed expectation.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    batch_def = (
        context.data_sources.add_pandas("finml").add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    by_id: dict[str, ExpectationDef] = {}
    for d in definitions:
        exp = suite.add_expectation(getattr(gxe, d.type)(**d.kwargs))
        by_id[str(exp.id)] = d
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(data=batch_def, suite=suite, name=f"{suite_name}-run")
    )
    result = validation.run(
        batch_parameters={"dataframe": df},
        result_format=gx_result_format(id_column),
    )
    outcomes_by_def: dict[int, ExpectationOutcome] = {}
    index = {id(d): i for i, d in enumerate(definitions)}
    for r in result.results:
        d = by_id[str(r.expectation_config.id)]
        res = dict(r.result or {})
        share = res.get("unexpected_percent")
        outcomes_by_def[index[id(d)]] = ExpectationOutcome(
            expectation=d.type, column=d.column, severity=d.severity, description=d.description,
            success=bool(r.success), observed=json_safe(res.get("observed_value")),
            unexpected_count=res.get("unexpected_count"),
            unexpected_share=None if share is None else float(share) / 100.0,
            error=_error_message(r.exception_info) if not r.success else None,
            **gx_unexpected_rows(d, res, bool(r.success), id_column),
        )
    outcomes = [outcomes_by_def[i] for i in sorted(outcomes_by_def)]
    explain_missing_columns(outcomes)
    return ValidationReport(suite=suite_name, rows=len(df), outcomes=outcomes)



def validate_frame(df: pd.DataFrame, spec: ModelSpec, serving: bool = False, engine: str = "gx",
                   scoring: bool = False) -> ValidationReport:
    """Validate a frame against the spec's suite (training or serving form).

    Failed expectations name their first bad rows by the spec's ``id`` column when the frame has it;
    the values :func:`tasks.invalid_values.invalid_to_missing` made missing in ``df`` are appended as
    warnings (``on_invalid: missing``), and so are the rows of a market series that were out of time
    order (:func:`row_order_outcomes`); in the training form also a warning per column the file looks
    sorted or grouped by when ``out_of_time.share`` takes the file order (:func:`tasks.file_order.file_order_outcomes`).

    Args:
        engine: ``"gx"`` runs the suite with Great Expectations; ``"fast"`` evaluates the same
            definitions with vectorised pandas (:func:`run_suite_fast`), for high-volume
            scoring where GX's per-expectation passes would cost more than the model.
        scoring: with ``serving``, the suite of a batch to score: protected and excluded columns
            may be absent (:func:`tasks.expectations.expectations_for`).
    """
    form = "serving" if serving else "training"
    definitions = expectations_for(spec, serving=serving, present=set(df.columns), scoring=serving and scoring)
    ids = id_column_of(spec, df.columns)
    if engine == "fast":
        report = run_suite_fast(df, definitions, f"{spec.name}-{form}", ids)
    elif engine == "gx":
        report = run_suite(df, definitions, f"{spec.name}-{form}", ids)
    else:
        raise ValueError(f"engine must be 'gx' or 'fast', got {engine!r}")
    report.outcomes += invalid_value_outcomes(df)  # on_invalid: missing (tasks/invalid_values.py)
    report.outcomes += row_order_outcomes(df)  # a market series out of time order, sorted (models/market_rows.py)
    if not serving:  # out_of_time.share on a file sorted by a feature (tasks/file_order.py)
        report.outcomes += file_order_outcomes(df, spec)
    return report


def row_order_outcomes(df: pd.DataFrame) -> list[ExpectationOutcome]:
    """The validation warning for the rows :func:`models.market_rows.order_by_time` found out of time
    order in ``df``'s data and sorted (none when it found none, or did not produce ``df``): the count of
    rows earlier than the row before them, and the first of their time values."""
    note = df.attrs.get(ROW_ORDER)
    if not note:
        return []
    return [ExpectationOutcome(
        expectation="ExpectColumnValuesToBeIncreasing", column=note["column"], severity="warning",
        description=f"rows in time order; the {note['out_of_order']} row(s) out of order were sorted by "
                    f"{note['column']!r}", success=False,
        unexpected_count=note["out_of_order"],
        unexpected_share=note["out_of_order"] / note["rows"] if note["rows"] else 0.0,
        examples=list(note["examples"]),
    )]



class ModellingDataError(DataError):
    """The modelling table cannot support a sound model (single class, implausible event
    rate, a feature with no information). The message names the column or the label."""


@step("check-modelling-table")
def check_modelling_table(table: pd.DataFrame, spec: ModelSpec) -> list[str]:
    """Problems that per-column expectations cannot see, found on the modelling table.

    Returns a list of warnings (constant features the spec accepts with ``allow_constant``).

    Raises:
        ModellingDataError: no rows; a classifier's label with a single class; an event
            rate outside ``target.expected_positive_rate``; a feature that is entirely missing
            or constant (an imputer would silently fill or ignore it).
        DataError: a protected column holding numbers without ``fairness.bands``
            (:func:`tasks.fairness.check_protected_groups`), before any candidate is fitted.
    """
    problems: list[str] = []
    warnings: list[str] = []
    target = spec.target_column
    if table.empty:
        raise ModellingDataError(f"{spec.name}: the modelling table is empty (no rows with a label)")
    if spec.is_classifier:
        rate = float(table[target].mean())
        if table[target].nunique() < 2:
            problems.append(f"target {target!r} has a single class in the development rows (event rate {rate:.3f})")
        elif spec.target.expected_positive_rate is not None:
            lo, hi = spec.target.expected_positive_rate
            if not lo <= rate <= hi:
                problems.append(
                    f"target {target!r}: event rate {rate:.4f} is outside the expected range [{lo}, {hi}]"
                )
    for col in spec.feature_columns:
        values = table[col]
        if values.isna().all():
            problems.append(f"feature {col!r} is entirely missing")
        elif values.nunique(dropna=True) < 2:
            text = f"feature {col!r} is constant ({values.dropna().iloc[0]})"
            if values.isna().any():
                text += f" apart from {int(values.isna().sum())} missing value(s)"
            column = spec.columns.get(col)
            if column is not None and column.allow_constant:
                warnings.append(f"{text}; it carries no information (accepted: allow_constant)")
            else:
                problems.append(f"{text}: it carries no information and usually means a broken feed "
                                "(set allow_constant on the column to accept it)")
    if problems:
        raise ModellingDataError(f"{spec.name}: " + "; ".join(problems))
    check_protected_groups(spec, table)  # a numeric protected column without bands: now, not after fitting
    return warnings


@step("validate-data")
def validate_data(
    spec: ModelSpec, frame: pd.DataFrame, serving: bool = False, source: str | None = None, engine: str = "gx"
) -> ValidationReport:
    """Run the spec's expectation suite; publish the report; raise on a critical failure.

    Raises:
        DataValidationError: naming each failed expectation, its column and examples.
    """
    from tasks.report import artifact_key, publish_markdown

    report = validate_frame(frame, spec, serving=serving, engine=engine)
    publish_markdown(
        artifact_key(spec.name, "validation"), report.to_markdown(),
        f"Data validation of {spec.name} ({'serving' if serving else 'training'} suite)",
    )
    if not report.success:
        raise DataValidationError(report, source=source or spec.name, columns=list(frame.columns))
    return report


__all__ = [
    "DataValidationError", "ExpectationDef", "ExpectationOutcome", "ModellingDataError", "ValidationReport",
    "check_modelling_table", "expectations_for", "missing_column_hint", "row_order_outcomes", "run_suite",
    "run_suite_fast", "validate_data", "validate_frame",
]
