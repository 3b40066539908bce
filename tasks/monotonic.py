"""Monotonic expectations: does a fitted candidate's score move along each declared feature in
the declared direction (``columns.<name>.monotone``)? Measured on the holdout, for every
candidate; the ``monotonic`` gate rule judges the selected one. Method: docs/interpretability.md.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from tasks.drivers import linear_coefficients, partial_dependence_curves, sample_rows
from tasks.step import step

__all__ = ["check_monotonic", "coefficient_signs", "largest_reversal", "response_checks"]

logger = logging.getLogger(__name__)

GRID_POINTS = 20
"""Grid of each checked feature: 20 quantiles from 5 % to 95 % of the holdout's values."""
ROWS = 1000
"""Holdout rows the average score is taken over (a seeded sample of larger holdouts)."""


def largest_reversal(grid: list[float], average: list[float], direction: int) -> tuple[float, float, float]:
    """The biggest move of ``average`` against ``direction`` between two grid points.

    Args:
        grid: increasing feature values, shape (g,); average: the average score at each, shape (g,).
        direction: +1 (the score should not fall as the feature grows) or -1 (should not rise).

    Returns:
        ``(size, from_value, to_value)``: the largest ``direction * (average[i] - average[j])``
        over ``i < j`` (0 when the curve never reverses), and the grid values ``grid[i]``,
        ``grid[j]`` where it happens (both the first grid value when there is none).
    """
    a = direction * np.asarray(average, dtype=float)
    best, where = 0.0, (0, 0)
    running_max, at = -np.inf, 0
    for j, v in enumerate(a):
        if running_max - v > best:
            best, where = float(running_max - v), (at, j)
        if v > running_max:
            running_max, at = v, j
    return best, float(grid[where[0]]), float(grid[where[1]])


def response_checks(pipeline, X: pd.DataFrame, task: str, monotone: dict[str, int], tolerance: float,
                    seed: int = 0) -> list[dict[str, Any]]:
    """The partial-dependence check of one fitted pipeline along each declared feature.

    Args:
        pipeline: a fitted pipeline taking ``X``; X: holdout features, shape (n, k).
        task: the estimator task; monotone: column → +1 / -1 (:attr:`ModelSpec.monotone_features`).
        tolerance: largest accepted reversal, in score units (``MonotonicRule.tolerance``).

    Returns:
        One dict per declared feature: ``feature``, ``direction`` (``increasing``/``decreasing``),
        ``reversal`` (:func:`largest_reversal`), ``from``, ``to`` (the grid values where it
        happens), ``passed`` (reversal ≤ tolerance), ``grid`` and ``average_score``.
    """
    from models.spec.explain import DriversSpec

    section = DriversSpec(max_rows=ROWS, grid_points=GRID_POINTS, seed=seed)
    rows = X.iloc[sample_rows(len(X), section)].reset_index(drop=True)
    curves = {c["feature"]: c for c in partial_dependence_curves(section, pipeline, rows, task, list(monotone), [])}
    out = []
    for feature, direction in monotone.items():
        curve = curves.get(feature)
        if curve is None or len(curve["grid"]) < 2:
            out.append({"feature": feature, "direction": _word(direction), "reversal": None, "from": None, "to": None,
                        "passed": True, "grid": [], "average_score": [],
                        "note": "fewer than two distinct values on the holdout: nothing to check"})
            continue
        size, lo, hi = largest_reversal(curve["grid"], curve["average_score"], direction)
        out.append({"feature": feature, "direction": _word(direction), "reversal": size, "from": lo, "to": hi,
                    "passed": bool(size <= tolerance), "grid": curve["grid"], "average_score": curve["average_score"]})
    return out


def coefficient_signs(pipeline, monotone: dict[str, int]) -> list[dict[str, Any]] | None:
    """The sign of a linear pipeline's coefficient on each declared feature's standardised input;
    None for a model without coefficients.

    Returns:
        One dict per declared feature found among the inputs: ``feature``, ``direction``,
        ``coefficient``, ``passed`` (the coefficient is 0 or has the declared sign).
    """
    coefs = linear_coefficients(pipeline)
    if coefs is None:
        return None
    by_input = {c["input"]: c["coefficient"] for c in coefs}
    return [{"feature": f, "direction": _word(d), "coefficient": by_input[f], "passed": bool(d * by_input[f] >= 0)}
            for f, d in monotone.items() if f in by_input]


def _constrained(pipeline) -> bool:
    """Whether the fitted final estimator was trained under monotonic constraints (``monotonic_cst``
    with a non-zero entry, as :func:`models.estimators.build_candidate` sets them)."""
    cst = getattr(pipeline.steps[-1][1], "monotonic_cst", None)
    return cst is not None and any(c != 0 for c in cst)


def _word(direction: int) -> str:
    return "increasing" if direction > 0 else "decreasing"


def _tolerance(spec) -> float:
    rules = [r for r in spec.gate.rules if r.kind == "monotonic"]
    return rules[0].tolerance if rules else 0.005


@step("check-monotonic")
def check_monotonic(spec, evaluation, fitted: list) -> dict[str, Any] | None:
    """Every usable candidate's response along the spec's declared directions, on the holdout.

    Args:
        spec: the model spec (its ``monotone_features``, the ``monotonic`` rule's tolerance);
        evaluation: the holdout evaluation (``tasks.evaluate.HoldoutEvaluation``); fitted: the candidates.

    Returns:
        None when the spec declares no direction; else ``tolerance``, ``selected`` (the
        candidate's name) and ``candidates``: name → ``{"estimator", "constrained" (trained under
        ``monotonic_cst``, read from the fitted model), "response": response_checks(...),
        "coefficients": coefficient_signs(...)}``.
    """
    monotone = spec.monotone_features
    if not monotone:
        return None
    tolerance = _tolerance(spec)
    X = evaluation.holdout[spec.feature_columns].reset_index(drop=True)
    out: dict[str, Any] = {"tolerance": tolerance, "selected": evaluation.best, "candidates": {}}
    for fc in fitted:
        if fc.error is not None or fc.pipeline is None:
            continue
        out["candidates"][fc.spec.name] = {
            "estimator": fc.spec.estimator,
            "constrained": _constrained(fc.pipeline),
            "response": response_checks(fc.pipeline, X, spec.estimator_task, monotone, tolerance),
            "coefficients": coefficient_signs(fc.pipeline, monotone),
        }
    failed = [(name, c["feature"]) for name, rec in out["candidates"].items() for c in rec["response"] if not c["passed"]]
    if failed:
        logger.warning("%s: declared directions reversed: %s", spec.name,
                       ", ".join(f"{f} in {n}" for n, f in failed))
    return out
