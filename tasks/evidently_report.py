"""The Evidently 0.7 drift report for people: ``DataDriftPreset`` and ``DataSummaryPreset`` on a
bounded random sample of each frame, as self-contained HTML, with a banner stating the samples.

The platform's drift decision is the PSI of :mod:`tasks.drift` on every row; Evidently is imported
inside :func:`evidently_drift_report` only (3-4 s). Which columns are sent, and the pitfalls of
Evidently the checks guard against, are in ``docs/drift.md``.
"""

from __future__ import annotations

import html
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.records.drift import EvidentlyColumn, EvidentlySummary
from models.spec import DriftSpec
from tasks.psi import fmt_edge

log = logging.getLogger(__name__)


def _sample(df: pd.DataFrame, columns: list[str], n: int, seed: int) -> pd.DataFrame:
    """At most ``n`` random rows (seeded, in original order) of ``columns``; copies only those."""
    if len(df) > n:
        rows = np.sort(np.random.default_rng(seed).choice(len(df), size=n, replace=False))
        out = df.iloc[rows, df.columns.get_indexer(columns)]
    else:
        out = df.loc[:, columns]
    return out.reset_index(drop=True)


def _evidently_skip_reason(ref: pd.Series, cur: pd.Series, kind: str) -> str | None:
    """Why Evidently cannot take this column (it raises or reports nonsense), or None."""
    if kind == "numeric":
        r = pd.to_numeric(ref, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        c = pd.to_numeric(cur, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        if np.count_nonzero(~np.isnan(r)) < ref.notna().sum() or np.count_nonzero(~np.isnan(c)) < cur.notna().sum():
            return "declared numeric but holds non-numeric values"
        r, c = r[np.isfinite(r)], c[np.isfinite(c)]
        if c.size == 0:
            return "all values missing in the sampled current rows"
        if r.size == 0:
            return "all values missing in the sampled reference rows"
        if r.min() == r.max():
            return f"constant in the sampled reference rows (single value {fmt_edge(float(r[0]))})"
        return None
    if cur.notna().sum() == 0:
        return "all values missing in the sampled current rows"
    if ref.notna().sum() == 0:
        return "all values missing in the sampled reference rows"
    if ref.nunique(dropna=True) <= 1:
        return f"constant in the sampled reference rows (single value {ref.dropna().iloc[0]!r})"
    return None


def _category_label(v: Any) -> Any:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))  # an integer code read as float because of a missing value: 2.0 -> "2"
    return str(v)


def _category_labels(values: pd.Series) -> pd.Series:
    """A categorical sample as an object column of strings, every missing marker as NaN.

    Evidently 0.7 raises on labels that are floats (``type numpy.float64 not supported as
    Label``) and on ``pd.NA`` in ``string``/``boolean``/``Int64`` columns ("boolean value of NA is
    ambiguous"), and one such column stops the whole report. Integral floats lose their ``.0``
    so that an integer-coded category compares equal across a reference without missing values
    (int) and a batch with some (float).
    """
    missing = values.isna().to_numpy()
    out = np.array([np.nan if m else _category_label(v) for v, m in zip(values.tolist(), missing)], dtype=object)
    return pd.Series(out, index=values.index, name=values.name)


EVIDENTLY_FEW_VALUES = 20
"""Evidently 0.7 bins a numeric column one bin per value when its reference holds at most this many
distinct values (``get_binned_data`` in ``evidently/legacy/calculations/stattests/utils.py``, 0.7.23)."""

SNAP_REL_TOL = 1e-8
"""A current value within ``SNAP_REL_TOL`` times the column's largest absolute reference value of
a reference value is that value up to float rounding (:func:`snap_to_reference_values`)."""


def snap_to_reference_values(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, int]:
    """``current`` with each value that equals a distinct ``reference`` value up to float rounding
    replaced by that value, and how many were replaced; for Evidently's one-bin-per-value columns.

    Both are float64 arrays (NaN and infinities are left as they are). Only when ``reference``
    holds at most :data:`EVIDENTLY_FEW_VALUES` distinct finite values (Evidently's own criterion),
    each finite current value moves to its nearest distinct reference value ``r`` when
    ``|value - r| <= SNAP_REL_TOL * max|reference|``: 36.00000000000001 or 36 + 1e-9 becomes 36
    (and 0 + 1e-9 becomes 0 on a column reaching 1), while 36 -> 37 or 0.5 -> 0.51 stays. Without
    it, Evidently counts a rounding step as a new category (credit_risk's Time: PSI 15.4).
    Returns a new array; the inputs are not modified.
    """
    values = np.unique(reference[np.isfinite(reference)])
    out = np.array(current, dtype="float64", copy=True)
    if values.size == 0 or values.size > EVIDENTLY_FEW_VALUES:
        return out, 0
    tol = SNAP_REL_TOL * float(np.max(np.abs(values)))
    finite = np.isfinite(out)
    x = out[finite]
    right = np.clip(np.searchsorted(values, x), 0, values.size - 1)
    left = np.clip(right - 1, 0, values.size - 1)
    nearest = np.where(np.abs(x - values[left]) <= np.abs(x - values[right]), values[left], values[right])
    snap = (np.abs(x - nearest) <= tol) & (x != nearest)
    x[snap] = nearest[snap]
    out[finite] = x
    return out, int(np.count_nonzero(snap))


EVIDENTLY_DEFAULT_THRESHOLD = 0.1
"""Evidently 0.7's default threshold of its distance tests (Wasserstein, Jensen-Shannon, PSI ...)."""

COUNTS_DIFFER = ("they can differ: Evidently tests a random sample, bins each column over the reference and the batch "
                 "together (its PSI) or uses another method, and may count the score; the decision uses every row on "
                 "bins frozen from the reference")
"""Why Evidently's drifted-column count and the PSI decision's can differ (banner and CLI)."""


def evidently_methods(columns: dict[str, str], drift_spec: DriftSpec) -> dict[str, tuple[str, float]]:
    """The Evidently stat test and threshold of each column: ``{column: (method, threshold)}``.

    ``columns`` maps a column to ``"numeric"`` or ``"categorical"``. Method: the column's override
    in ``drift_spec.columns``, else ``num_method`` / ``cat_method`` (``psi`` by default). Threshold:
    the column's override, else ``stattest_threshold``, else ``psi_significant`` for ``psi`` (so
    that Evidently's PSI test flags what the traffic light calls significant) and Evidently's
    default 0.1 for the other methods.
    """
    out = {}
    for col, kind in columns.items():
        override = drift_spec.columns.get(col)
        method = (override.method if override and override.method else None) or (
            drift_spec.num_method if kind == "numeric" else drift_spec.cat_method)
        threshold = (override.threshold if override and override.threshold else None) or drift_spec.stattest_threshold
        if threshold is None:
            threshold = drift_spec.psi_significant if method == "psi" else EVIDENTLY_DEFAULT_THRESHOLD
        out[col] = (method, float(threshold))
    return out


def _names(columns: list[str], limit: int = 5) -> str:
    """At most ``limit`` names, then "and N more"."""
    shown = ", ".join(columns[:limit])
    return shown + (f" and {len(columns) - limit} more" if len(columns) > limit else "")


def disagreement(psi_names: list[str], summary: EvidentlySummary) -> str:
    """The columns on which Evidently and the PSI decision disagree, in words, or "" when they agree.

    ``psi_names``: the columns at a significant PSI (the features and, when its PSI is
    significant, the score; :func:`tasks.verdict.feature_drift_names`). E.g. ``"Evidently only:
    Time; PSI only: Amount"``; at most 5 names per side, then "and N more"; a PSI-only column
    Evidently did not test is marked "(not sent to Evidently)".
    """
    ev = [c for c, v in summary.per_column.items() if v.drifted]
    ev_only = [c for c in ev if c not in psi_names]
    psi_only = [c if c in summary.per_column else f"{c} (not sent to Evidently)" for c in psi_names if c not in ev]
    parts = ([f"Evidently only: {_names(ev_only)}"] if ev_only else []) + (
        [f"PSI only: {_names(psi_only)}"] if psi_only else [])
    return "; ".join(parts)


def counts_sentence(psi_drifted: int | None, psi_judged: int | None, summary: EvidentlySummary,
                    psi_names: list[str] | None = None) -> str:
    """Both drifted counts side by side, the columns they disagree on, and why they can differ, or
    "" when Evidently did not run.

    E.g. ``"Drifted: 0 of 13 features by the PSI decision (every row); 1 of 14 columns by
    Evidently (psi at 0.25, on the sample); they disagree on Evidently only: Time; they can
    differ: ..."``. ``psi_names`` (the columns at a significant PSI, score included, see
    :func:`disagreement`) names the disagreement; without it none is named. Without
    ``psi_drifted`` only Evidently's count is given.
    """
    if not summary.ran or summary.drifted_count is None:
        return ""
    pairs = sorted({(c.method, c.threshold) for c in summary.per_column.values() if c.method})
    how = ", ".join(f"{m} at {fmt_edge(t)}" if t is not None else str(m) for m, t in pairs) or "its methods"
    ev = f"{summary.drifted_count} of {len(summary.columns)} columns by Evidently ({how}, on the sample)"
    if psi_drifted is None:
        return f"Drifted: {ev}; the PSI decision is in the monitoring record."
    ours = f"{psi_drifted} of {psi_judged} features by the PSI decision (every row)"
    differ = "" if psi_names is None else disagreement(list(psi_names), summary)
    on = f"they disagree on {differ}; " if differ else ""
    return f"Drifted: {ours}; {ev}; {on}{COUNTS_DIFFER}."


def _banner(title: str, note: str, skipped: dict[str, str], counts: str = "") -> str:
    parts = ['<div id="finml-sample-banner" style="font-family:sans-serif;padding:12px 16px;margin:8px;'
             'border:1px solid #c9a227;background:#fff8e1;border-radius:4px">']
    if title:
        parts.append(f"<h2 style='margin:0 0 6px 0'>{html.escape(title)}</h2>")
    parts.append(f"<p style='margin:0'>{html.escape(note)}</p>")
    if counts:
        parts.append(f"<p id='finml-drift-counts' style='margin:6px 0 0 0'>{html.escape(counts)}</p>")
    if skipped:
        items = "".join(f"<li>{html.escape(c)}: {html.escape(r)}</li>" for c, r in skipped.items())
        parts.append(f"<p style='margin:6px 0 0 0'>Columns not sent to Evidently:</p><ul style='margin:0'>{items}</ul>")
    parts.append("</div>")
    return "".join(parts)


def _status_text(status: Any) -> str:
    return str(getattr(status, "value", status))


def _read_snapshot(d: dict[str, Any]) -> dict[str, Any]:
    """Evidently's verdicts from ``snapshot.dict()``: per-column drift tests and the share test, as
    the values of :class:`EvidentlySummary`'s ``drifted_count``, ``drifted_share``, ``dataset_drift``
    and ``per_column``.

    Measured on Evidently 0.7.23: metric configs have ``type`` ``evidently:metric_v2:ValueDrift``
    (one per column, with ``column``, ``method``, ``threshold``; ``value`` the score) and
    ``evidently:metric_v2:DriftedColumnsCount`` (``value`` ``{"count", "share"}``); each has a
    test whose ``status`` (a ``TestStatus`` enum) is ``FAIL`` on drift.
    """
    per_column: dict[str, EvidentlyColumn] = {}
    out: dict[str, Any] = {"drifted_count": None, "drifted_share": None, "dataset_drift": None}
    for m in d.get("metrics", []):
        cfg = m.get("config", {})
        typ = str(cfg.get("type", ""))
        if typ.endswith(":ValueDrift"):
            v = m.get("value")
            per_column[cfg["column"]] = EvidentlyColumn(method=cfg.get("method"), threshold=cfg.get("threshold"),
                                                        score=None if v is None else float(v), drifted=None)
        elif typ.endswith(":DriftedColumnsCount"):
            v = m.get("value") or {}
            out["drifted_count"] = None if v.get("count") is None else int(v["count"])
            out["drifted_share"] = None if v.get("share") is None else float(v["share"])
    for t in d.get("tests", []):
        params = (t.get("metric_config") or {}).get("params") or {}
        typ = str(params.get("type", ""))
        status = _status_text(t.get("status"))
        if typ.endswith(":ValueDrift") and params.get("column") in per_column:
            per_column[params["column"]].drifted = status == "FAIL"
            per_column[params["column"]].description = t.get("description")
        elif typ.endswith(":DriftedColumnsCount"):
            out["dataset_drift"] = status == "FAIL"
    out["per_column"] = per_column
    return out


def evidently_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    drift_spec: DriftSpec,
    html_path: Path,
    seed: int = 0,
    title: str = "",
    psi_drifted: int | None = None,
    psi_judged: int | None = None,
    psi_names: list[str] | None = None,
) -> EvidentlySummary:
    """Evidently 0.7 data-drift and data-summary report on a bounded random sample, as HTML.

    At most ``drift_spec.evidently_sample_rows`` random rows (``seed``) of each frame go to
    Evidently; the HTML opens with a banner stating both sample sizes (the platform's PSI
    decision, :func:`tasks.drift.compute_drift`, uses every row). Columns Evidently raises on or
    misreports (``docs/drift.md``) are checked first and skipped with a reason: absent from a
    frame, all missing in either sample, constant in the reference sample, non-numeric
    values in a numeric column. Evidently is not called when the batch is empty, has fewer
    rows than ``drift_spec.min_rows`` (it flags almost every column on a handful of rows), or
    no column remains. Methods and thresholds per column: :func:`evidently_methods` (by default
    PSI at ``psi_significant``), dataset drift at ``dataset_drift_share``. ``psi_drifted`` and
    ``psi_judged`` (the PSI decision's significant and judged features) put both drifted counts
    and why they can differ in the banner, and ``psi_names`` (the columns at a significant PSI,
    score included) the columns they disagree on (:func:`counts_sentence`). In a numeric column
    with few distinct reference values, current values equal to a reference value up to float
    rounding are sent as that value (:func:`snap_to_reference_values`). An exception inside
    Evidently is recorded in ``error``, not raised.

    Returns:
        An :class:`~models.records.drift.EvidentlySummary`: ``ran``, ``reason`` (why not),
        ``error``, ``html_path`` (None when no HTML was written), row and sample counts, the
        banner sentence, the columns sent and skipped (with reasons), Evidently's own decision
        and per-column verdicts, and ``seconds``.
    """
    t0 = time.perf_counter()
    html_path = Path(html_path)
    n = drift_spec.evidently_sample_rows
    cur_n, ref_n = min(len(current), n), min(len(reference), n)
    note = (f"Evidently drift report on a random sample of {cur_n:,} of {len(current):,} current rows and "
            f"{ref_n:,} of {len(reference):,} reference rows (seed {seed}); the platform's PSI decision uses every row.")
    out = EvidentlySummary(
        ran=False, reason=None, error=None, html_path=None, current_rows=len(current), reference_rows=len(reference),
        current_sample_rows=cur_n, reference_sample_rows=ref_n, sample_note=note, columns=[], skipped={},
        drifted_count=None, drifted_share=None, dataset_drift=None, per_column={}, seconds=0.0,
    )
    kinds = {c: "numeric" for c in numeric} | {c: "categorical" for c in categorical}
    present = []
    for col in kinds:
        where = [w for w, df in (("reference", reference), ("current batch", current)) if col not in df.columns]
        if where:
            out.skipped[col] = "absent from the " + " and the ".join(where)
        else:
            present.append(col)

    def done(reason: str) -> EvidentlySummary:
        out.reason = reason
        out.sample_note = f"Evidently not run: {reason}"
        out.seconds = time.perf_counter() - t0
        return out

    if len(current) == 0:
        return done("the current batch is empty")
    if len(reference) == 0:
        return done("the reference is empty")
    if len(current) < drift_spec.min_rows:
        return done(f"the batch has {len(current)} rows, fewer than drift.min_rows = {drift_spec.min_rows}")

    cur_s = _sample(current, present, n, seed)
    ref_s = _sample(reference, present, n, seed + 1)
    cols = []
    for col in present:
        reason = _evidently_skip_reason(ref_s[col], cur_s[col], kinds[col])
        if reason:
            out.skipped[col] = reason
        else:
            cols.append(col)
    if not cols:
        return done("no column left that Evidently can compare")
    num_cols = [c for c in cols if kinds[c] == "numeric"]
    cat_cols = [c for c in cols if kinds[c] == "categorical"]
    for c in num_cols:  # nullable / object numbers as float64 (on the sample only)
        if cur_s[c].dtype != "float64" or ref_s[c].dtype != "float64":
            cur_s[c] = pd.to_numeric(cur_s[c]).astype("float64")
            ref_s[c] = pd.to_numeric(ref_s[c]).astype("float64")
    for c in num_cols:  # rounding noise is no new category in Evidently's one-bin-per-value columns
        snapped, moved = snap_to_reference_values(ref_s[c].to_numpy(), cur_s[c].to_numpy())
        if moved:
            cur_s[c] = snapped
            log.info("Evidently sample: %d values of %s snapped to the reference value they equal up to "
                     "float rounding", moved, c)
    for c in cat_cols:  # categories as plain strings, missing as NaN (on the sample only)
        cur_s[c] = _category_labels(cur_s[c])
        ref_s[c] = _category_labels(ref_s[c])
    out.columns = cols

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    methods = evidently_methods({c: kinds[c] for c in cols}, drift_spec)
    definition = DataDefinition(numerical_columns=num_cols, categorical_columns=cat_cols)
    report = Report(
        [
            DataDriftPreset(columns=cols, num_method=drift_spec.num_method, cat_method=drift_spec.cat_method,
                            per_column_method={c: m for c, (m, _) in methods.items()},
                            per_column_threshold={c: t for c, (_, t) in methods.items()},
                            drift_share=drift_spec.dataset_drift_share),
            DataSummaryPreset(columns=cols),
        ],
        # The per-column drift verdicts exist only as tests, and tests are produced only when
        # the Report itself has include_tests=True (the presets' own flags are not enough).
        include_tests=True,
    )
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy divide-by-zero warnings on empty categories
            snapshot = report.run(Dataset.from_pandas(cur_s, data_definition=definition),
                                  Dataset.from_pandas(ref_s, data_definition=definition))
            page = snapshot.get_html_str(as_iframe=False)
        verdicts = _read_snapshot(snapshot.dict())
    except Exception as err:  # noqa: BLE001 - a broken human report must not stop monitoring
        log.warning("Evidently report failed: %s: %s", type(err).__name__, err)
        out.error = f"{type(err).__name__}: {err}"
        out.seconds = time.perf_counter() - t0
        return out
    for key, value in verdicts.items():
        setattr(out, key, value)
    out.ran = True
    marker = page.find("<body>")
    banner = _banner(title, note, out.skipped, counts_sentence(psi_drifted, psi_judged, out, psi_names))
    page = page[: marker + 6] + banner + page[marker + 6:] if marker >= 0 else banner + page
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(page, encoding="utf-8")
    out.html_path = str(html_path)
    out.seconds = time.perf_counter() - t0
    return out


__all__ = ["COUNTS_DIFFER", "EVIDENTLY_DEFAULT_THRESHOLD", "EVIDENTLY_FEW_VALUES", "SNAP_REL_TOL", "counts_sentence",
           "disagreement", "evidently_drift_report", "evidently_methods", "snap_to_reference_values"]
