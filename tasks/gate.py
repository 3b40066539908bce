"""The promotion gate: every rule of the spec (``gate.rules``) gives a verdict, evaluated by one
mechanism (a threshold on the challenger's holdout metric, or a paired comparison with the
champion or a naive baseline on the same rows); all must pass to promote. Without a champion,
champion rules do not apply; a champion that cannot be re-scored fails them (the gate fails
closed). Rule semantics and their sources: ``docs/gates.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from models.metrics import format_metric
from models.records.gate import ChampionRescoring, Comparison, GateResult, RuleVerdict
from models.spec import BaselineRule, ChampionRule, ModelSpec, ThresholdRule
from models.statistics import block_length
from tasks.compare import ComparisonError, bootstrap, delong, diebold_mariano, point_only
from tasks.step import step

__all__ = ["GateInputs", "GateResult", "RuleVerdict", "apply_gate", "compare_scores", "evaluate_gate"]


@dataclass
class GateInputs:
    """What the comparison rules need besides the challenger's metrics.

    Attributes:
        y: holdout labels, shape (n,); scores: the challenger's scores on them.
        champion: the champion's re-scoring (``rescore_champion``), or None without champion.
        baselines: naive forecasts on the same rows.
        time_ordered: resample in circular blocks (walk-forward holdouts).
        horizon: label horizon in rows (Diebold-Mariano lags, bootstrap block length floor).
    """

    y: np.ndarray
    scores: np.ndarray
    champion: ChampionRescoring | None = None
    baselines: dict[str, np.ndarray] = field(default_factory=dict)
    time_ordered: bool = False
    horizon: int = 1


def _threshold(rule: ThresholdRule, metrics: dict[str, float]) -> RuleVerdict:
    value = metrics.get(rule.metric)
    bounds = []
    if rule.min is not None:
        bounds.append(f">= {rule.min:g}")
    if rule.max is not None:
        bounds.append(f"<= {rule.max:g}")
    bound = " and ".join(bounds)
    if value is None or not math.isfinite(value):
        return RuleVerdict(rule="threshold", metric=rule.metric, value=None, bound=bound, passed=False,
                           sentence=f"{rule.metric} could not be computed")
    ok = (rule.min is None or value >= rule.min) and (rule.max is None or value <= rule.max)
    word = "meets" if ok else "fails"
    return RuleVerdict(rule="threshold", metric=rule.metric, value=value, bound=bound, passed=bool(ok),
                       sentence=f"{rule.metric} = {format_metric(rule.metric, value)} {word} {bound}")


def compare_scores(rule: ChampionRule | BaselineRule, inputs: GateInputs, other: np.ndarray) -> Comparison:
    """The paired comparison a rule asks for, challenger first.

    Raises:
        ComparisonError: the comparison cannot be made (see :mod:`tasks.compare`).
    """
    y, a, b = inputs.y, inputs.scores, other
    if rule.test == "none":
        return point_only(rule.metric, y, a, b, rule.change)
    if rule.method == "delong":
        return delong(y, a, b, rule.confidence)
    if rule.method == "diebold_mariano":
        return diebold_mariano(rule.metric, y, a, b, horizon=inputs.horizon, confidence=rule.confidence)
    block = block_length(len(y), inputs.horizon) if inputs.time_ordered else None
    return bootstrap(rule.metric, y, a, b, change=rule.change, confidence=rule.confidence, n_boot=rule.n_boot,
                     seed=rule.seed, block=block)


def _bound_text(rule: ChampionRule | BaselineRule, other: str) -> str:
    unit = "" if rule.change == "absolute" else " (relative)"
    where = {"none": "point estimate", "superior": "CI low > margin", "not_worse": "CI high >= margin"}[rule.test]
    method = "" if rule.test == "none" else f", {rule.method} {rule.confidence:.0%}"
    return f"advantage over {other}{unit} vs margin {rule.margin:g} ({where}{method})"


def _compare_rule(rule: ChampionRule | BaselineRule, inputs: GateInputs, other_scores: np.ndarray, other: str,
                  value: float | None) -> RuleVerdict:
    bound = _bound_text(rule, other)
    try:
        c = compare_scores(rule, inputs, other_scores)
    except ComparisonError as err:
        return RuleVerdict(rule=rule.kind, metric=rule.metric, value=value, bound=bound, passed=False,
                           sentence=f"{rule.metric} vs {other}: {err}", other=other)
    if rule.test == "none":
        ok = c.diff >= rule.margin - 1e-12
        judged = f"advantage {c.diff:+.4f}"
    elif rule.test == "superior":
        ok = c.ci_low is not None and math.isfinite(c.ci_low) and c.ci_low > rule.margin
        judged = f"advantage {c.diff:+.4f}, {c.confidence:.0%} CI [{c.ci_low:+.4f}, {c.ci_high:+.4f}]"
    else:
        ok = c.ci_high is not None and math.isfinite(c.ci_high) and c.ci_high >= rule.margin
        judged = f"advantage {c.diff:+.4f}, {c.confidence:.0%} CI [{c.ci_low:+.4f}, {c.ci_high:+.4f}]"
    units = " (in MSE)" if rule.method == "diebold_mariano" and rule.metric == "rmse" and rule.test != "none" else ""
    if ok:
        verdict = {"none": "meets", "superior": "is better beyond noise than", "not_worse": "is not worse than"}[rule.test]
    else:
        verdict = {"none": "does not meet", "superior": "is not better beyond noise than",
                   "not_worse": "is significantly worse than"}[rule.test]
    a, b = format_metric(rule.metric, c.value_a), format_metric(rule.metric, c.value_b)
    sentence = (f"{rule.metric} {a} vs {other} {b}: {judged}{units} "
                f"{verdict} the required margin {rule.margin:g}" if rule.test == "none" else
                f"{rule.metric} {a} vs {other} {b}: {judged}{units}; the challenger "
                f"{verdict} {other} at margin {rule.margin:g}")
    return RuleVerdict(rule=rule.kind, metric=rule.metric, value=value if value is not None else c.value_a, bound=bound,
                       passed=bool(ok), sentence=sentence, other=other, other_value=c.value_b, comparison=c)


def _champion(rule: ChampionRule, metrics: dict[str, float], inputs: GateInputs) -> RuleVerdict:
    value = metrics.get(rule.metric)
    champ = inputs.champion
    bound = _bound_text(rule, "champion")
    if champ is None:
        return RuleVerdict(
            rule="champion", metric=rule.metric, value=value, bound=bound, passed=True,
            sentence="no champion yet: this first model is judged by the value thresholds and baselines alone",
            applicable=False,
        )
    name = f"champion v{champ.version}"
    if champ.error is not None or champ.scores is None:
        return RuleVerdict(
            rule="champion", metric=rule.metric, value=value, bound=bound, passed=False, other=name,
            sentence=f"{name} could not be re-scored on this holdout ({champ.error}); the gate fails closed",
        )
    return _compare_rule(rule, inputs, np.asarray(champ.scores, dtype=float), name, value)


def _baseline(rule: BaselineRule, metrics: dict[str, float], inputs: GateInputs) -> RuleVerdict:
    scores = inputs.baselines.get(rule.baseline)
    if scores is None:
        return RuleVerdict(rule="baseline", metric=rule.metric, value=metrics.get(rule.metric),
                           bound=_bound_text(rule, rule.baseline), passed=False, other=rule.baseline,
                           sentence=f"the {rule.baseline} baseline is not available for this model")
    return _compare_rule(rule, inputs, scores, f"{rule.baseline} baseline", metrics.get(rule.metric))


def evaluate_gate(spec: ModelSpec, metrics: dict[str, float], inputs: GateInputs | None = None) -> GateResult:
    """Apply every rule of ``spec.gate`` to the challenger.

    Args:
        metrics: the challenger's holdout metrics (threshold rules).
        inputs: labels, scores, the champion's re-scoring and the baselines (comparison rules).
            Without inputs only threshold rules can pass.
    """
    inputs = inputs or GateInputs(np.array([]), np.array([]))
    verdicts = []
    for rule in spec.gate.rules:
        if isinstance(rule, ThresholdRule):
            verdicts.append(_threshold(rule, metrics))
        elif isinstance(rule, ChampionRule):
            verdicts.append(_champion(rule, metrics, inputs))
        elif isinstance(rule, BaselineRule):
            verdicts.append(_baseline(rule, metrics, inputs))
    champion = inputs.champion
    return GateResult(verdicts=verdicts, champion_version=None if champion is None else champion.version)


# --------------------------------------------------------------------------- Prefect tasks


@step("gate")
def apply_gate(spec: ModelSpec, evaluation, champion: ChampionRescoring | None) -> GateResult:
    """Judge the selected challenger against the spec's rules, the re-scored champion and the
    naive baselines, all on the same holdout rows.

    Builds the comparison inputs from the evaluation (:class:`tasks.evaluate.HoldoutEvaluation`):
    a walk-forward split is time-ordered (circular-block bootstrap), the spec's feature builder
    gives the label horizon (Diebold-Mariano lags).
    """
    builder = spec.builder
    inputs = GateInputs(
        y=evaluation.y, scores=evaluation.scores, champion=champion, baselines=evaluation.baselines,
        time_ordered=spec.split.method == "walk_forward", horizon=getattr(builder, "horizon", 1) if builder else 1,
    )
    return evaluate_gate(spec, evaluation.metrics, inputs)
