"""The promotion gate: every rule of the spec gives a verdict; all must pass to promote.

Rules are data (``gate.rules`` in the spec), evaluated by one mechanism, each giving a
verdict, the measured value, the bound and a sentence:

- ``threshold``: ``min <= value <= max`` on the challenger's holdout metric;
- ``champion``: the challenger against the champion, re-scored on the same holdout rows;
- ``baseline``: the challenger against a naive forecast (persistence, always-majority).

Comparison rules ask for ``diff >= margin`` (``diff``: the challenger's advantage in the
metric's better direction, absolute or relative), judged on the point estimate
(``test: none``), on the lower bound of a confidence interval (``superior``: better beyond
noise) or on its upper bound (``not_worse``: fails only when significantly worse); see
``models.spec._ComparisonRule`` and :mod:`tasks.compare` for the intervals. Without a
champion (the first model) champion rules do not apply and the challenger is judged by its
thresholds and baselines alone. A champion that cannot be re-scored fails its rules: the gate
fails closed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from models.spec import BaselineRule, ChampionRule, ModelSpec, ThresholdRule
from tasks.compare import Comparison, ComparisonError, bootstrap, delong, diebold_mariano, point_only
from tasks.step import step


@dataclass
class RuleVerdict:
    """The outcome of one rule.

    Attributes:
        rule: ``threshold``, ``champion`` or ``baseline``.
        metric: the metric judged.
        value: the challenger's value.
        bound: the bound in words (``>= 0.75``, ``champion + 0.005 (CI low, DeLong)``).
        passed: the verdict.
        sentence: the verdict in one sentence.
        applicable: False when the rule could not apply (no champion yet).
        other: what the challenger was compared with (``champion v3``, ``persistence``).
        other_value: that model's value on the same rows.
        comparison: the paired comparison (difference, interval, method), for comparison rules.
    """

    rule: str
    metric: str
    value: float | None
    bound: str
    passed: bool
    sentence: str
    applicable: bool = True
    other: str | None = None
    other_value: float | None = None
    comparison: dict[str, Any] | None = None

    @property
    def champion_value(self) -> float | None:
        return self.other_value if self.rule == "champion" else None


@dataclass
class GateResult:
    """All verdicts; ``passed`` only if every verdict passed."""

    verdicts: list[RuleVerdict]
    champion_version: int | None

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def first_model(self) -> bool:
        return self.champion_version is None

    @property
    def failed(self) -> list[RuleVerdict]:
        return [v for v in self.verdicts if not v.passed]

    def reason(self) -> str:
        """Why the gate failed, or a one-line pass statement."""
        if self.passed:
            if self.first_model:
                return "all rules passed (first model: judged by value thresholds and baselines alone)"
            return "all rules passed"
        failed = self.failed
        if failed and all(v.rule == "baseline" for v in failed):
            return "no edge over the naive baselines: " + "; ".join(v.sentence for v in failed)
        return "; ".join(v.sentence for v in failed)

    def as_dict(self) -> dict[str, Any]:
        verdicts = []
        for v in self.verdicts:
            d = asdict(v)
            d["champion_value"] = v.champion_value
            verdicts.append(d)
        return {"passed": self.passed, "champion_version": self.champion_version,
                "first_model": self.first_model, "verdicts": verdicts}


@dataclass
class GateInputs:
    """What the comparison rules need besides the challenger's metrics.

    Attributes:
        y: holdout labels; scores: the challenger's scores on them.
        champion: the champion's re-scoring (``rescore_champion``), or None without champion.
        baselines: naive forecasts on the same rows.
        time_ordered: resample in moving blocks (walk-forward holdouts).
        horizon: label horizon in rows (Diebold-Mariano lags, bootstrap block length floor).
    """

    y: np.ndarray
    scores: np.ndarray
    champion: dict[str, Any] | None = None
    baselines: dict[str, np.ndarray] = field(default_factory=dict)
    time_ordered: bool = False
    horizon: int = 1


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def _threshold(rule: ThresholdRule, metrics: dict[str, float]) -> RuleVerdict:
    value = metrics.get(rule.metric)
    bounds = []
    if rule.min is not None:
        bounds.append(f">= {rule.min:g}")
    if rule.max is not None:
        bounds.append(f"<= {rule.max:g}")
    bound = " and ".join(bounds)
    if value is None or not math.isfinite(value):
        return RuleVerdict("threshold", rule.metric, None, bound, False, f"{rule.metric} could not be computed")
    ok = (rule.min is None or value >= rule.min) and (rule.max is None or value <= rule.max)
    word = "meets" if ok else "fails"
    return RuleVerdict("threshold", rule.metric, value, bound, ok, f"{rule.metric} = {_fmt(value)} {word} {bound}")


def compare_scores(rule: ChampionRule | BaselineRule, inputs: GateInputs, other: np.ndarray) -> Comparison:
    """The paired comparison a rule asks for, challenger first."""
    y, a, b = inputs.y, inputs.scores, other
    if rule.test == "none":
        return point_only(rule.metric, y, a, b, rule.change)
    if rule.method == "delong":
        return delong(y, a, b, rule.confidence)
    if rule.method == "diebold_mariano":
        return diebold_mariano(rule.metric, y, a, b, horizon=inputs.horizon, confidence=rule.confidence)
    block = max(inputs.horizon, round(len(y) ** (1 / 3))) if inputs.time_ordered else None
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
        return RuleVerdict(rule.kind, rule.metric, value, bound, False, f"{rule.metric} vs {other}: {err}", other=other)
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
    sentence = (f"{rule.metric} {_fmt(c.value_a)} vs {other} {_fmt(c.value_b)}: {judged}{units} "
                f"{verdict} the required margin {rule.margin:g}" if rule.test == "none" else
                f"{rule.metric} {_fmt(c.value_a)} vs {other} {_fmt(c.value_b)}: {judged}{units}; the challenger "
                f"{verdict} {other} at margin {rule.margin:g}")
    return RuleVerdict(rule.kind, rule.metric, value if value is not None else c.value_a, bound, ok, sentence,
                       other=other, other_value=c.value_b, comparison=c.as_dict())


def _champion(rule: ChampionRule, metrics: dict[str, float], inputs: GateInputs) -> RuleVerdict:
    value = metrics.get(rule.metric)
    champ = inputs.champion
    bound = _bound_text(rule, "champion")
    if champ is None:
        return RuleVerdict(
            "champion", rule.metric, value, bound, True,
            "no champion yet: this first model is judged by the value thresholds and baselines alone",
            applicable=False,
        )
    name = f"champion v{champ['version']}"
    if champ.get("error") is not None or champ.get("scores") is None:
        return RuleVerdict(
            "champion", rule.metric, value, bound, False,
            f"{name} could not be re-scored on this holdout ({champ.get('error')}); the gate fails closed", other=name,
        )
    return _compare_rule(rule, inputs, np.asarray(champ["scores"], dtype=float), name, value)


def _baseline(rule: BaselineRule, metrics: dict[str, float], inputs: GateInputs) -> RuleVerdict:
    scores = inputs.baselines.get(rule.baseline)
    if scores is None:
        return RuleVerdict("baseline", rule.metric, metrics.get(rule.metric), _bound_text(rule, rule.baseline), False,
                           f"the {rule.baseline} baseline is not available for this model", other=rule.baseline)
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
    return GateResult(verdicts, None if champion is None else champion["version"])


# --------------------------------------------------------------------------- Prefect tasks



@step("gate")
def apply_gate(spec: ModelSpec, evaluation, champion: dict[str, Any] | None) -> GateResult:
    """Judge the selected challenger against the spec's rules, the re-scored champion and the
    naive baselines, all on the same holdout rows."""
    builder = spec.builder
    inputs = GateInputs(
        y=evaluation.y, scores=evaluation.scores, champion=champion, baselines=evaluation.baselines,
        time_ordered=spec.split.method == "walk_forward", horizon=getattr(builder, "horizon", 1) if builder else 1,
    )
    return evaluate_gate(spec, evaluation.metrics, inputs)
