"""Realised performance of a PD model per vintage, beside what the scores alone expected.

A *vintage* is the month (``"2026-03"``) or quarter (``"2026Q1"``) in which rows were scored
(their ``as_of``, in UTC). For every vintage and model version: rows scored, outcomes matured so
far, events, the observed event rate against the mean PD, the realised ROC AUC with its DeLong
interval, the one-sided Jeffreys and exact binomial tests of the matured rows' portfolio at their
mean PD (coloured by the spec's ``validation.policy``), and beside them the estimate from the
scores alone of :mod:`models.performance_estimate` on all the vintage's rows (matured or not),
with its warning. Plus the long-run average default rate across vintages
(:func:`models.backtest_statistics.long_run_default_rate`). A vintage's realised figures change as
its outcomes mature; its estimate does not (same rows, same seed). Pure: no Prefect, no registry.
Reading: docs/backtesting.md.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.backtest_statistics import binomial_test, jeffreys_test, long_run_default_rate
from models.performance_estimate import DEFAULT_DRAWS, WARNING, estimate_performance
from models.spec.rating import TrafficLightPolicy
from models.statistics import auc_interval, rank_auc

__all__ = ["VINTAGE_COLUMNS", "VINTAGES", "VintageTable", "vintage_labels", "vintage_table"]

VINTAGES = {"month": "M", "quarter": "Q"}
"""The vintage lengths and their pandas period codes."""

REQUIRED = ("as_of", "model_version", "score", "outcome")
"""The columns of the joined table that the vintage table reads (others, e.g. ``id``, ``grade``,
``outcome_date``, are ignored)."""

VINTAGE_COLUMNS = [
    "vintage", "model_version", "rows", "matured", "matured_share", "events", "event_rate", "mean_pd_matured",
    "mean_pd", "auc", "auc_low", "auc_high", "jeffreys_p", "jeffreys_light", "binomial_p", "binomial_light",
    "expected_event_rate", "expected_event_rate_low", "expected_event_rate_high", "expected_auc",
    "expected_auc_low", "expected_auc_high", "estimate_seed", "estimate_draws_without_auc"]
"""The keys of a vintage row, in table order (:func:`vintage_table`)."""


@dataclass(frozen=True)
class VintageTable:
    """The vintage table of :func:`vintage_table`.

    Attributes:
        vintage: ``"month"`` or ``"quarter"``.
        rows: one dict per (vintage, model version), keys :data:`VINTAGE_COLUMNS`, sorted by
            vintage then version.
        long_run: the long-run average default rate across vintages, all versions pooled
            (:func:`models.backtest_statistics.long_run_default_rate` plus ``model_version: None``,
            ``matured``: the rows it counts, ``min_matured_share``, ``left_out``: the vintages not
            matured enough to count); None while no vintage is matured enough.
        long_run_by_version: the same per model version (versions without a matured enough
            vintage left out), by version.
        policy: ``{red, amber, text}``, the traffic-light policy that coloured the p-values.
        estimate: ``{draws, seed, confidence, warning, seeding}``: how the estimate was made.
    """

    vintage: str
    rows: list[dict[str, Any]]
    long_run: dict[str, Any] | None
    long_run_by_version: list[dict[str, Any]]
    policy: dict[str, Any]
    estimate: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The table as a plain JSON-ready dict (same keys as the attributes)."""
        return asdict(self)

    def frame(self) -> pd.DataFrame:
        """:attr:`rows` as a DataFrame, columns :data:`VINTAGE_COLUMNS`."""
        return pd.DataFrame(self.rows, columns=VINTAGE_COLUMNS)


def vintage_labels(as_of: pd.Series, vintage: str = "month") -> pd.Series:
    """The vintage of each timestamp: ``"2026-03"`` (month) or ``"2026Q1"`` (quarter), in UTC.

    Args:
        as_of: timestamps; tz-aware ones are converted to UTC, naive ones are taken as UTC.
        vintage: ``"month"`` or ``"quarter"``.

    Raises:
        ValueError: another ``vintage``, or an ``as_of`` that is missing or not a timestamp.
    """
    if vintage not in VINTAGES:
        raise ValueError(f"vintage must be one of {sorted(VINTAGES)}, got {vintage!r}")
    try:
        ts = pd.to_datetime(as_of, utc=True)
    except (ValueError, TypeError) as err:
        raise ValueError(f"column 'as_of' must hold timestamps: {err}") from None
    if ts.isna().any():
        raise ValueError(f"column 'as_of' has {int(ts.isna().sum())} missing timestamp(s)")
    return ts.dt.tz_localize(None).dt.to_period(VINTAGES[vintage]).astype(str)


def _checked(joined: pd.DataFrame) -> pd.DataFrame:
    """The columns the table reads, checked: PDs in [0, 1], outcomes 0/1 or missing, integer versions."""
    if not isinstance(joined, pd.DataFrame):
        raise ValueError(f"the joined outcomes must be a pandas DataFrame, got {type(joined).__name__}")
    missing = [c for c in REQUIRED if c not in joined.columns]
    if missing:
        raise ValueError(f"the joined outcomes lack column(s) {missing} (need {list(REQUIRED)})")
    score = pd.to_numeric(joined["score"], errors="coerce")
    bad = score.isna() | (score < 0) | (score > 1)
    if bad.any():
        raise ValueError(f"column 'score' must hold PDs in [0, 1]: {int(bad.sum())} row(s) do not "
                         f"(first: {joined['score'][bad].iloc[0]!r})")
    outcome = pd.to_numeric(joined["outcome"], errors="coerce")
    bad = joined["outcome"].notna() & ~outcome.isin((0, 1))
    if bad.any():
        raise ValueError(f"column 'outcome' must be 0, 1 or missing (not yet matured): {int(bad.sum())} row(s) "
                         f"are not (first: {joined['outcome'][bad].iloc[0]!r})")
    version = pd.to_numeric(joined["model_version"], errors="coerce")
    bad = version.isna() | (version != version.round())
    if bad.any():
        raise ValueError(f"column 'model_version' must hold whole version numbers: {int(bad.sum())} row(s) do "
                         f"not (first: {joined['model_version'][bad].iloc[0]!r})")
    return pd.DataFrame({"score": score.astype(float).to_numpy(), "outcome": outcome.astype(float).to_numpy(),
                         "model_version": version.astype(int).to_numpy()}, index=joined.index)


def _seed(seed: int, label: str, version: int) -> int:
    """The bootstrap seed of one vintage: fixed by the base seed, the vintage and the version, so a
    vintage's band does not move when other vintages arrive."""
    return zlib.crc32(f"{seed}|{label}|{version}".encode())


def _none(value: float) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def _realised(y: np.ndarray, p: np.ndarray, policy: TrafficLightPolicy) -> dict[str, Any]:
    """The realised figures of the matured rows ``y`` (0/1) with their PDs ``p``."""
    n = len(y)
    if n == 0:
        return {"events": 0, "event_rate": None, "mean_pd_matured": None, "auc": None, "auc_low": None,
                "auc_high": None, "jeffreys_p": None, "jeffreys_light": None, "binomial_p": None,
                "binomial_light": None}
    d, pd_bar = int(y.sum()), float(p.mean())
    both = 0 < d < n
    low, high = auc_interval(y, p) if both else (float("nan"), float("nan"))
    jeffreys, binomial = jeffreys_test(d, n, pd_bar), binomial_test(d, n, pd_bar)
    return {"events": d, "event_rate": d / n, "mean_pd_matured": pd_bar,
            "auc": float(rank_auc(y, p)) if both else None, "auc_low": _none(low), "auc_high": _none(high),
            "jeffreys_p": jeffreys, "jeffreys_light": policy.colour(jeffreys),
            "binomial_p": binomial, "binomial_light": policy.colour(binomial)}


def _long_run(data: pd.DataFrame, version: int | None, min_share: float) -> dict[str, Any] | None:
    """The long-run average default rate of ``data``'s matured rows, over its vintages whose
    matured share is at least ``min_share``; None without any such vintage."""
    share = data["outcome"].notna().groupby(data["vintage"]).mean()
    kept = sorted(share.index[share >= min_share])
    left_out = sorted(set(share.index) - set(kept))
    done = data[data["vintage"].isin(kept) & data["outcome"].notna()]
    if len(done) == 0:
        return None
    figures = long_run_default_rate(done["vintage"].to_numpy(), done["score"].to_numpy(), done["outcome"].to_numpy())
    return {"model_version": version, "matured": len(done), "min_matured_share": min_share, "left_out": left_out,
            **figures}


def vintage_table(joined: pd.DataFrame, vintage: str = "month", policy: TrafficLightPolicy | None = None, *,
                  draws: int = DEFAULT_DRAWS, seed: int = 0, confidence: float = 0.95,
                  long_run_min_matured_share: float = 1.0) -> VintageTable:
    """Realised performance per vintage and model version, beside the estimate from the scores.

    Args:
        joined: the ledger joined to its outcomes, one row per scored record: ``as_of`` (scoring
            time, UTC; naive timestamps are taken as UTC), ``model_version`` (int), ``score`` (PD
            in [0, 1]), ``outcome`` (0/1, NaN while not matured); ``id``, ``grade``,
            ``outcome_date`` may be present and are not read. Zero rows give an empty table.
        vintage: ``"month"`` (labels ``"2026-03"``) or ``"quarter"`` (``"2026Q1"``).
        policy: the spec's ``validation.policy`` (default: red p < 0.05, amber p < 0.10).
        draws, seed, confidence: of the estimate's bootstrap band
            (:func:`models.performance_estimate.estimate_performance`); each vintage's draws are
            seeded by ``crc32("{seed}|{vintage}|{version}")`` (its ``estimate_seed``).
        long_run_min_matured_share: the long-run rate averages only vintages with at least this
            share of their rows matured (default 1: complete vintages only, since a default is often
            known before the outcome window closes and a non-default only when it does, so a
            partly matured vintage tends to overstate its default rate); the others are named in
            its ``left_out``.

    Returns:
        A :class:`VintageTable`. Per row (keys :data:`VINTAGE_COLUMNS`): ``rows`` scored;
        ``matured`` outcomes and ``matured_share`` = matured / rows; ``events`` and
        ``event_rate`` = events / matured; ``mean_pd_matured`` (of the matured rows) and
        ``mean_pd`` (of all rows); ``auc`` (Mann–Whitney, ties one half) with its DeLong 95 %
        interval ``auc_low``/``auc_high`` (:func:`models.statistics.auc_interval`; the AUC is
        None when a class is missing among the matured rows, the interval also with fewer than
        two of either); ``jeffreys_p`` and ``binomial_p``, one-sided, of the matured rows'
        portfolio at ``mean_pd_matured`` (:func:`models.backtest_statistics.jeffreys_test`,
        :func:`~models.backtest_statistics.binomial_test`), with their ``*_light``; and the
        estimate on all the vintage's rows: ``expected_event_rate`` (mean PD), ``expected_auc``
        (:func:`models.performance_estimate.expected_auc_if_calibrated`), each with its
        ``*_low``/``*_high`` band, ``estimate_seed``, ``estimate_draws_without_auc``. Realised
        figures are None before any outcome matured.

    Raises:
        ValueError: not a DataFrame, a column missing, a PD missing or outside [0, 1], an outcome
            other than 0, 1 or missing, a version that is not a whole number, an ``as_of`` that
            is missing or not a timestamp, another ``vintage``, or an invalid ``draws`` /
            ``confidence``, or a ``long_run_min_matured_share`` outside (0, 1].
    """
    if vintage not in VINTAGES:
        raise ValueError(f"vintage must be one of {sorted(VINTAGES)}, got {vintage!r}")
    if not 0.0 < long_run_min_matured_share <= 1.0:
        raise ValueError(f"long_run_min_matured_share must be in (0, 1], got {long_run_min_matured_share!r}")
    policy = policy or TrafficLightPolicy()
    data = _checked(joined)
    data["vintage"] = vintage_labels(joined["as_of"], vintage).to_numpy()
    rows: list[dict[str, Any]] = []
    for (label, version), group in data.groupby(["vintage", "model_version"], sort=True):
        p, y = group["score"].to_numpy(), group["outcome"].to_numpy()
        matured = ~np.isnan(y)
        row_seed = _seed(seed, label, int(version))
        est = estimate_performance(p, draws=draws, seed=row_seed, confidence=confidence)
        rows.append({"vintage": label, "model_version": int(version), "rows": len(p), "matured": int(matured.sum()),
                     "matured_share": float(matured.mean()), "mean_pd": float(p.mean()),
                     **_realised(y[matured].astype(int), p[matured], policy),
                     "expected_event_rate": est.expected_event_rate, "expected_event_rate_low": est.event_rate_low,
                     "expected_event_rate_high": est.event_rate_high, "expected_auc": est.expected_auc,
                     "expected_auc_low": est.auc_low, "expected_auc_high": est.auc_high,
                     "estimate_seed": row_seed, "estimate_draws_without_auc": est.draws_without_auc})
    rows = [{k: r[k] for k in VINTAGE_COLUMNS} for r in rows]
    long_run = _long_run(data, None, long_run_min_matured_share)
    by_version = [r for v, g in data.groupby("model_version", sort=True)
                  if (r := _long_run(g, int(v), long_run_min_matured_share)) is not None]
    return VintageTable(vintage=vintage, rows=rows, long_run=long_run, long_run_by_version=by_version,
                        policy={"red": policy.red, "amber": policy.amber, "text": policy.text()},
                        estimate={"draws": int(draws), "seed": int(seed), "confidence": float(confidence),
                                  "warning": WARNING, "seeding": "crc32('{seed}|{vintage}|{version}')"})
