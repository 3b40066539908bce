"""Rating grades of a version's holdout (the spec's ``rating_scale``) and the supervisors' tests
on them: the grade table with the Jeffreys and exact binomial p-values per grade and for the
portfolio, coloured by the spec's ``validation.policy``, and the Herfindahl index; recorded in
``metadata.json`` (``rating``) and rendered as a model-card section. The tests and their sources:
:mod:`models.backtest_statistics`."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.backtest_statistics import (
    binomial_test,
    grade_table,
    herfindahl,
    jeffreys_test,
)
from models.spec.rating import RatingScaleSpec, TrafficLightPolicy

__all__ = ["rating_card_section", "rating_of", "rating_record"]


def _tested(row: dict[str, Any], policy: TrafficLightPolicy) -> dict[str, Any]:
    """``row`` with the Jeffreys and binomial p-values at its mean PD and their colours."""
    n, d, pd = row["obligors"], row["defaults"], row["mean_pd"]
    jeffreys = None if n == 0 else jeffreys_test(d, n, pd)
    binomial = None if n == 0 else binomial_test(d, n, pd)
    return {**row, "jeffreys_p": jeffreys, "jeffreys_light": policy.colour(jeffreys),
            "binomial_p": binomial, "binomial_light": policy.colour(binomial)}


def rating_record(scale: RatingScaleSpec, policy: TrafficLightPolicy, outcomes, pd_values,
                  sample: str = "holdout") -> dict[str, Any]:
    """The ``rating`` record of a sample: grade table with tests, portfolio row, concentration.

    Args:
        scale: the spec's ``rating_scale``. policy: the spec's ``validation.policy``.
        outcomes: 0/1 defaults, shape (n,). pd_values: PDs, shape (n,), in [0, 1].
        sample: what the rows are (``"holdout"``).

    Returns:
        ``{sample, scale: {kind, names, upper_bounds}, policy: {red, amber, text}, grades: [row],
        portfolio: row, concentration: {grades, cv, herfindahl_index}}``; a grade row is a
        :func:`models.backtest_statistics.grade_table` row with ``jeffreys_p``, ``binomial_p``
        (one-sided, at the grade's mean PD; None for an empty grade) and their ``*_light``
        (``red`` / ``amber`` / ``green``).

    Raises:
        ValueError: invalid PDs or outcomes (:func:`models.backtest_statistics.grade_table`).
    """
    y = np.asarray(outcomes, dtype=float)
    p = np.asarray(pd_values, dtype=float)
    rows = [_tested(r, policy) for r in grade_table(p, y, scale)]
    portfolio = _tested({"grade": "portfolio", "min_pd": None, "max_pd": None, "obligors": len(p),
                         "defaults": int(y.sum()), "mean_pd": float(p.mean()) if len(p) else None,
                         "default_rate": float(y.mean()) if len(p) else None, "share": 1.0}, policy)
    c = herfindahl([r["obligors"] for r in rows])
    return {"sample": sample,
            "scale": {"kind": "master" if isinstance(scale.grades, int) else "explicit", "names": scale.names,
                      "upper_bounds": scale.upper_bounds},
            "policy": {"red": policy.red, "amber": policy.amber, "text": policy.text()},
            "grades": rows, "portfolio": portfolio,
            "concentration": {"grades": c.grades, "cv": c.cv, "herfindahl_index": c.herfindahl_index}}


def rating_of(spec, evaluation) -> dict[str, Any] | None:
    """:func:`rating_record` of a training run's holdout (``evaluation``, a
    ``tasks.evaluate.HoldoutEvaluation``: its labels ``y`` and the selected candidate's ``scores``);
    None without a ``rating_scale`` section."""
    if spec.rating_scale is None:
        return None
    return rating_record(spec.rating_scale, spec.validation.policy, evaluation.y, evaluation.scores)


def _p(value: float | None, light: str | None) -> str:
    return "n/a" if value is None else f"{value:.4f} ({light})"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _bound(value: float) -> str:
    return f"{100 * value:.4g}%"


def _interval(row: dict[str, Any]) -> str:
    if row["max_pd"] is None:
        return f"> {_bound(row['min_pd'])}"
    return f"≤ {_bound(row['max_pd'])}" if row["min_pd"] == 0 else f"({_bound(row['min_pd'])}, {_bound(row['max_pd'])}]"


def rating_card_section(meta: dict[str, Any]) -> list[str]:
    """The model card's Rating grades section (``meta["rating"]``, :func:`rating_record`); nothing
    for a version without a rating scale."""
    rec = meta.get("rating")
    if not rec:
        return []
    kind = ("a default master scale (geometric PD bounds between a floor and a cap, our convention)"
            if rec["scale"]["kind"] == "master" else "the spec's PD bounds")
    lines = ["## Rating grades (" + rec["sample"] + ")", "",
             (f"Grades by {kind} (`rating_scale`): a PD on a bound is in the lower grade. Per grade, the one-sided "
              "Jeffreys test (p = Beta(D + ½, N − D + ½) CDF at the grade's mean PD; ECB, Instructions for reporting "
              "the validation results of internal models, 2019, §2.5.3.1) and the one-sided exact binomial test "
              "(p = P(X ≥ D), X ~ Binomial(N, mean PD)): a small p says more defaults than the PD allows. The ECB "
              f"sets no pass/fail threshold; p-values are coloured by `validation.policy`: {rec['policy']['text']}."),
             "",
             "| grade | PD range | obligors | share | defaults | mean PD | default rate | Jeffreys p | binomial p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in [*rec["grades"], rec["portfolio"]]:
        label = "**portfolio**" if r["grade"] == "portfolio" else f"`{r['grade']}`"
        span = "all" if r["grade"] == "portfolio" else _interval(r)
        lines.append(f"| {label} | {span} | {r['obligors']} | {r['share']:.1%} | {r['defaults']} | {_pct(r['mean_pd'])} | "
                     f"{_pct(r['default_rate'])} | {_p(r['jeffreys_p'], r['jeffreys_light'])} | "
                     f"{_p(r['binomial_p'], r['binomial_light'])} |")
    c = rec["concentration"]
    lines += ["", (f"Concentration of obligors over the {c['grades']} grades: Herfindahl index "
                   f"**{c['herfindahl_index']:.4f}** (0: spread evenly, 1: all in one grade), coefficient of variation "
                   f"{c['cv']:.4f} (HI = 1 + ln((CV² + 1) / K) / ln K)."), ""]
    return lines
