"""The market models' tests at training, beside the gate's comparisons: the VaR back-test of the
holdout (:mod:`tasks.var_backtest`), the model confidence set over the candidates and the naive
baselines, and, for direction models, the Pesaran-Timmermann test of timing skill. Each is recorded
in the version's metadata and shown in the model card; the gate's ``mcs`` rule reads the set.
Statistics: :mod:`models.market_statistics`; formulas and sources: ``docs/gates.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.market_statistics import model_confidence_set, pesaran_timmermann
from models.metrics import METRICS
from models.spec import McsRule, ModelSpec
from models.statistics import StatisticsError, block_length
from tasks.compare import holdout_time_order
from tasks.step import step
from tasks.var_backtest import holdout_var_backtest, var_card_lines

__all__ = ["holdout_losses", "holdout_mcs", "holdout_pesaran_timmermann", "market_card_section", "market_tests"]


def mcs_settings(spec: ModelSpec) -> McsRule | None:
    """The settings of the model confidence set: the gate's ``mcs`` rule, else the defaults (a 90 %
    set on squared errors) for a forecaster with naive baselines (a feature builder); None for the
    other specs (no set is computed)."""
    rule = next((r for r in spec.gate.rules if isinstance(r, McsRule)), None)
    if rule is not None:
        return rule
    return McsRule(kind="mcs") if spec.builder is not None and not spec.is_classifier else None


def holdout_losses(metric: str, y: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-row losses of ``metric`` (the catalogue's ``loss``: squared errors for ``rmse``) by model.

    Raises:
        KeyError / ValueError: ``metric`` has no per-row loss.
    """
    loss = METRICS[metric].loss
    if loss is None:
        raise ValueError(f"metric {metric!r} has no per-row loss")
    return {name: np.asarray(loss(y, s), dtype=float) for name, s in scores.items()}


def holdout_mcs(spec: ModelSpec, evaluation, fitted: list) -> dict[str, Any] | None:
    """The model confidence set over every evaluated candidate and every naive baseline, on the
    holdout's per-row losses (:func:`mcs_settings`); the bootstrap's mean block length is the gate's
    (:func:`models.statistics.block_length`: ``n^(1/3)``, at least the label horizon) on a
    time-ordered holdout, 1 otherwise.

    Returns:
        None when no set is computed; else :func:`models.market_statistics.model_confidence_set`'s
        result with ``metric``, ``selected`` (the selected candidate) and ``selected_in_set``, or
        ``{"error": ..., "metric": ..., "selected": ...}`` when it cannot be computed.
    """
    rule = mcs_settings(spec)
    if rule is None:
        return None
    ok = {e.name for e in evaluation.evaluations if e.error is None}
    scores = {fc.spec.name: np.asarray(fc.holdout_scores, dtype=float) for fc in fitted if fc.spec.name in ok}
    scores |= {f"{name} (baseline)": np.asarray(b, dtype=float) for name, b in evaluation.baselines.items()}
    head = {"metric": rule.metric, "selected": evaluation.best}
    try:
        losses = holdout_losses(rule.metric, evaluation.y, scores)
        time_ordered, horizon = holdout_time_order(spec)
        block = block_length(len(evaluation.y), horizon) if time_ordered else 1
        found = model_confidence_set(losses, size=rule.size, reps=rule.reps, block_size=block, seed=rule.seed)
    except (StatisticsError, ValueError) as err:
        return {**head, "error": str(err)}
    return {**head, **found, "selected_in_set": evaluation.best in found["included"]}


def holdout_pesaran_timmermann(spec: ModelSpec, evaluation) -> dict[str, Any] | None:
    """The Pesaran-Timmermann test of the selected candidate's predicted directions (``score >= 0.5``:
    up, as ``directional_accuracy``) on the holdout, and of each naive baseline's (direction models only).

    Returns:
        None for other tasks; else ``{candidate, threshold, ...test, baselines: {name: test}}``
        (:func:`models.market_statistics.pesaran_timmermann`).
    """
    if spec.task != "direction":
        return None
    y = np.asarray(evaluation.y, dtype=float).astype(int)

    def test(s: np.ndarray) -> dict[str, Any]:
        try:
            return pesaran_timmermann(y, (np.asarray(s, dtype=float) >= 0.5).astype(int))
        except StatisticsError as err:
            return {"error": str(err)}

    return {"candidate": evaluation.best, "threshold": 0.5, **test(evaluation.scores),
            "baselines": {name: test(b) for name, b in evaluation.baselines.items()}}


@step("market-tests")
def market_tests(spec: ModelSpec, evaluation, fitted: list, development: pd.DataFrame) -> dict[str, Any]:
    """The holdout's VaR back-test, model confidence set and Pesaran-Timmermann test (each None when
    it does not apply): ``{"var_backtest", "model_confidence_set", "pesaran_timmermann"}``."""
    return {"var_backtest": holdout_var_backtest(spec, development, evaluation),
            "model_confidence_set": holdout_mcs(spec, evaluation, fitted),
            "pesaran_timmermann": holdout_pesaran_timmermann(spec, evaluation)}


def _p(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def market_card_section(meta: dict[str, Any]) -> list[str]:
    """The model card's lines for the market tests: the Pesaran-Timmermann test, the model
    confidence set, the VaR back-test table (empty when none was computed)."""
    lines: list[str] = []
    pt = meta.get("pesaran_timmermann")
    if pt:
        lines += ["## Timing skill: Pesaran-Timmermann (holdout)", "",
                  "Directional accuracy against a forecast independent of the outcome (Pesaran & Timmermann 1992); "
                  "one-sided p-value, up = score >= 0.5.", "",
                  "| model | rows | hit rate | hit rate if independent | statistic | p-value |", "|---|---|---|---|---|---|"]
        for name, t in [(f"{pt.get('candidate')} (selected)", pt)] + [(f"{n} baseline", b) for n, b in
                                                                       (pt.get("baselines") or {}).items()]:
            if t.get("error"):
                lines.append(f"| {name} | – | – | – | – | {t['error']} |")
                continue
            stat = "n/a" if t["statistic"] is None else f"{t['statistic']:.3f}"
            lines.append(f"| {name} | {t['rows']} | {t['hit_rate']:.4f} | {t['expected_hit_rate']:.4f} | {stat} | "
                         f"{_p(t['p_value'])}{' (' + t['note'] + ')' if t.get('note') else ''} |")
        lines.append("")
    mcs = meta.get("model_confidence_set")
    if mcs:
        lines += ["## Model confidence set (holdout)", ""]
        if mcs.get("error"):
            lines += [f"Not computed: {mcs['error']}.", ""]
        else:
            level = 100 * (1 - mcs["size"])
            lines += [f"{level:g} % model confidence set (Hansen, Lunde & Nason 2011; `arch.bootstrap.MCS`, method "
                      f"{mcs['method']}, stationary bootstrap of mean block {mcs['block_size']}, {mcs['reps']} "
                      f"replications) on the per-row losses of {mcs['metric']} over {mcs['rows']} holdout rows: "
                      f"the selected candidate {mcs['selected']} is "
                      f"{'in' if mcs['selected_in_set'] else 'NOT in'} the set.", "",
                      "| model | MCS p-value | in the set |", "|---|---|---|"]
            for name, p in mcs["p_values"].items():
                lines.append(f"| {name} | {p:.3f} | {'yes' if name in mcs['included'] else 'no'} |")
            lines.append("")
    return lines + var_card_lines(meta)
