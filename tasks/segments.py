"""Drift, performance and calibration per segment: the rows of each value (or band) of a spec's
``segments`` columns, measured apart in a monitoring batch or a back-test.

Per segment: its rows in the reference sample and in the batch; the PSI of the score and of each
feature on bins frozen on the segment's reference rows (:func:`tasks.drift.compute_drift`, the
monitoring's own PSI and traffic lights); with outcomes, the event rate, the mean predicted
probability (the mean PD), ROC AUC, the Brier score and the one-sided Jeffreys test of the mean PD
(:func:`models.backtest_statistics.jeffreys_test`, ECB instructions 2019 §2.5.3.1). A segment of fewer
rows than ``fairness.min_group_rows`` is too small to judge (:meth:`models.spec.FairnessSpec.too_small`,
the fairness rule). Segments are measured, never judged: they do not change a monitoring verdict.
Reading: ``docs/drift.md``, "Segments".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.backtest_statistics import jeffreys_test
from models.errors import DataError
from models.metrics import roc_auc
from models.records.segments import SegmentPsi, SegmentRow
from models.spec import ModelSpec
from models.spec.monitoring import band_labels
from tasks.drift import compute_drift
from tasks.fairness import MISSING_GROUP, group_values, value_groups
from tasks.psi import py_scalar
from tasks.step import step


def segment_values(spec: ModelSpec, column: str, values: pd.Series) -> np.ndarray:
    """Each row's segment of ``column``: its band name when the spec bands the column
    (:meth:`ModelSpec.segment_bands`: the ``segments`` entry's bands, or a protected column's
    ``fairness.bands``), else its value; ``"(missing)"`` for a missing value. Shape
    ``(len(values),)``, dtype object.

    Raises:
        DataError: an unbanded protected column holding numbers (:func:`tasks.fairness.group_values`).
    """
    edges = spec.segment_bands(column)
    if edges is None and column in spec.protected_columns:
        return group_values(spec, column, values)
    return value_groups(values, edges)


def _order(spec: ModelSpec, column: str, found: list[Any]) -> list[Any]:
    """The segments in band order for a banded column, else by name; ``(missing)`` last."""
    edges = spec.segment_bands(column)
    bands = {b: i for i, b in enumerate(band_labels(edges) if edges else [])}
    return sorted(found, key=lambda g: (g == MISSING_GROUP, bands.get(g, len(bands)), str(g)))


def _kinds(spec: ModelSpec, names: list[str]) -> tuple[list[str], list[str]]:
    """``names`` split into the spec's numeric features and the others (binned as categories)."""
    numeric = set(spec.numeric_features)
    return [n for n in names if n in numeric], [n for n in names if n not in numeric]


def _check_columns(spec: ModelSpec, current: pd.DataFrame, score_column: str, outcome_column: str | None) -> None:
    missing = [c for c in spec.segment_columns if c not in current.columns]
    if missing:
        raise DataError(f"segments: column(s) {missing} of the spec's segments are not in the batch "
                        f"(columns: {sorted(map(str, current.columns))[:20]})")
    for what, col in (("score", score_column), ("outcome", outcome_column)):
        if col is not None and col not in current.columns:
            raise DataError(f"segments: the {what} column {col!r} is not in the batch")
    if outcome_column is not None:
        y = pd.to_numeric(current[outcome_column], errors="coerce")
        bad = current[outcome_column].notna() & ~y.isin([0, 1])
        if bad.any():
            raise DataError(f"segments: outcome column {outcome_column!r} holds {int(bad.sum())} value(s) other than "
                            f"0, 1 or missing, e.g. {current.loc[bad, outcome_column].iloc[0]!r}")


def _drift(spec: ModelSpec, row: SegmentRow, ref: pd.DataFrame, cur: pd.DataFrame, features: list[str],
           score_column: str, notes: list[str]) -> None:
    """The segment's PSI of the score and of ``features`` into ``row``."""
    numeric, categorical = _kinds(spec, features)
    score = score_column if score_column in ref.columns else None
    drift = compute_drift(ref, cur, numeric, categorical, spec.drift, score_column=score)
    row.features = {f.column: SegmentPsi(psi=_round(f.psi), status=f.status) for f in drift.features}
    row.drifted = list(drift.drifted)
    if drift.score is not None:
        row.score_psi, row.score_status = _round(drift.score.psi), drift.score.status
        if drift.score.status == "insufficient_data":
            notes.append(f"no PSI: {len(cur)} rows, fewer than drift.min_rows = {spec.drift.min_rows}")
    elif score_column not in ref.columns:
        notes.append(f"the reference sample has no {score_column!r} column: no score PSI")


def _outcomes(spec: ModelSpec, row: SegmentRow, y: np.ndarray, p: np.ndarray, notes: list[str]) -> None:
    """The segment's event rate, mean PD, AUC, Brier score and Jeffreys p-value into ``row``."""
    labelled = ~np.isnan(y)
    y, p = y[labelled], p[labelled]
    row.labelled_rows = int(labelled.sum())
    if spec.fairness.too_small(row.labelled_rows):
        notes.append(f"{row.labelled_rows} labelled rows, fewer than fairness.min_group_rows = "
                     f"{spec.fairness.min_group_rows}: no outcome figures")
        return
    events = int(y.sum())
    mean_pd = float(p.mean())
    row.events, row.event_rate, row.mean_predicted = events, events / len(y), mean_pd
    row.roc_auc = roc_auc(y, p) if 0 < events < len(y) else None
    if row.roc_auc is None:
        notes.append("the labels hold one class: no ROC AUC")
    row.brier = float(np.mean((p - y) ** 2))
    row.jeffreys_p_value = jeffreys_test(events, len(y), min(max(mean_pd, 0.0), 1.0))


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 6)


def measure_segments(
    spec: ModelSpec, current: pd.DataFrame, reference: pd.DataFrame | None = None, *,
    score_column: str = "score", outcome_column: str | None = None, features: list[str] | None = None,
) -> list[SegmentRow]:
    """The segment table of a batch: one :class:`~models.records.segments.SegmentRow` per value (or
    band) of each column of ``spec.segments``, columns in the spec's order, segments in band order
    (else by name, ``(missing)`` last), a value seen only in the reference included (0 batch rows).

    Args:
        spec: the model's spec (its ``segments``, ``fairness.min_group_rows``, drift settings).
        current: the batch, one row per scored row: the segment columns, ``score_column`` (the
            predicted probability of the event for a classifier), the features to drift-test and,
            optionally, ``outcome_column`` (1 = event, 0 = none, missing = not yet known).
        reference: the version's reference sample (``reference.parquet``: the segment columns,
            the features and ``score``); None: no PSI (a back-test of outcomes alone).
        score_column: the score's column in both frames.
        outcome_column: the 0/1 outcome's column in ``current``; None: no outcome figures.
            Outcome figures are for classifiers only (for another task they stay None).
        features: the features whose PSI is measured per segment; None: the spec's features
            present in both frames. A categorical segment column is not measured in its own
            segments (it is constant there); a banded one is.

    Returns:
        The rows (empty when the spec has no segments). A segment with fewer batch rows than
        ``fairness.min_group_rows`` has ``too_small`` and no figures; one whose reference rows are
        fewer has no PSI; one with fewer labelled rows has no outcome figures; under
        ``drift.min_rows`` batch rows the PSI is not computed (status ``insufficient_data``, the
        drift rule for a batch). ``note`` says which, in words.

    Raises:
        DataError: a segment, score or outcome column missing from ``current``, an outcome other
            than 0/1/missing, or an unbanded protected segment column holding numbers.
    """
    if not spec.segments:
        return []
    _check_columns(spec, current, score_column, outcome_column)
    if features is None:
        features = [f for f in spec.feature_columns if f in current.columns
                    and (reference is None or f in reference.columns)]
    outcomes = outcome_column is not None and spec.is_classifier
    y_all = pd.to_numeric(current[outcome_column], errors="coerce").to_numpy(float) if outcomes else None
    p_all = pd.to_numeric(current[score_column], errors="coerce").to_numpy(float)
    rows: list[SegmentRow] = []
    for column in spec.segment_columns:
        cur_groups = segment_values(spec, column, current[column])
        has_ref = reference is not None and column in reference.columns
        ref_groups = segment_values(spec, column, reference[column]) if has_ref else None
        found = list(pd.unique(cur_groups))
        if has_ref:
            seen = set(found)
            found += [g for g in pd.unique(ref_groups) if g not in seen]
        measured = [f for f in features if f != column or spec.segment_bands(column) is not None]
        for group in _order(spec, column, found):
            cmask = cur_groups == group
            n = int(cmask.sum())
            row = SegmentRow(column=column, segment=py_scalar(group), current_rows=n,
                             current_share=n / len(current) if len(current) else None)
            if has_ref:
                rmask = ref_groups == group
                row.reference_rows = int(rmask.sum())
                row.reference_share = row.reference_rows / len(reference) if len(reference) else None
            rows.append(row)
            minimum = spec.fairness.min_group_rows
            if spec.fairness.too_small(n):
                row.too_small = True
                row.note = f"too small to judge: {n} rows, fewer than fairness.min_group_rows = {minimum}"
                continue
            notes: list[str] = []
            if reference is None:
                pass
            elif not has_ref:
                notes.append(f"the reference sample has no column {column!r}: no PSI")
            elif spec.fairness.too_small(row.reference_rows):
                notes.append(f"{row.reference_rows} reference rows, fewer than fairness.min_group_rows = {minimum}: "
                             "no PSI")
            else:
                _drift(spec, row, reference[rmask], current[cmask], measured, score_column, notes)
            if outcomes:
                _outcomes(spec, row, y_all[cmask], p_all[cmask], notes)
            row.note = "; ".join(notes) or None
    return rows


def _num(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _p(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def segments_markdown(rows: list[SegmentRow]) -> str:
    """The segment table in markdown: one line per segment with its rows (reference / batch), the
    score's PSI and light, the largest feature PSI, the features at ``significant``, and the outcome
    figures (labelled rows, event rate, mean PD, ROC AUC, Brier, Jeffreys p); a too-small segment
    says so instead of figures. ``""`` for no rows."""
    if not rows:
        return ""
    lines = ["| segment | rows (reference / batch) | score PSI | largest feature PSI | drifted | labelled | "
             "event rate | mean PD | AUC | Brier | Jeffreys p | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rows_text = f"{'-' if r.reference_rows is None else r.reference_rows} / {r.current_rows}"
        name = f"{r.column} = {r.segment}"
        if r.too_small:
            lines.append(f"| {name} | {rows_text} | too small to judge | | | | | | | | | {r.note or ''} |")
            continue
        score = "-" if r.score_psi is None else f"{r.score_psi:.4f} ({r.score_status})"
        top = r.largest_feature_psi
        top_text = "-" if top is None else f"{top[0]} {top[1]:.4f}"
        labelled = "-" if r.labelled_rows is None else str(r.labelled_rows)
        lines.append(f"| {name} | {rows_text} | {score} | {top_text} | {', '.join(r.drifted) or '-'} | {labelled} | "
                     f"{_num(r.event_rate)} | {_num(r.mean_predicted)} | {_num(r.roc_auc)} | {_num(r.brier)} | "
                     f"{_p(r.jeffreys_p_value)} | {(r.note or '').replace('|', '/')} |")
    return "\n".join(lines)


@step("measure-segments")
def segment_table(spec: ModelSpec, reference: pd.DataFrame, table: pd.DataFrame, scores: np.ndarray,
                  outcome_column: str | None = None) -> list[SegmentRow] | None:
    """:func:`measure_segments` of a monitoring batch (its modelling table with the scores as
    ``score``) against the version's reference sample; None for a spec without segments."""
    if not spec.segments:
        return None
    return measure_segments(spec, table.assign(score=scores), reference, outcome_column=outcome_column)


__all__ = ["measure_segments", "segment_table", "segment_values", "segments_markdown"]
