"""The promotion gate: every rule of the spec gives a verdict; all must pass to promote.

Rules are data (``gate.rules`` in the spec), evaluated by one mechanism:

- ``threshold``: ``min <= value <= max`` on the challenger's holdout metric;
- ``champion``: the challenger must beat the champion, re-scored on the same holdout, by
  ``margin`` in the metric's better direction. Without a champion (the first model) the
  rule does not apply and the challenger is judged by the thresholds alone. A champion that
  cannot be re-scored fails the rule: the gate fails closed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from models.spec import METRICS, ChampionRule, ModelSpec, ThresholdRule


@dataclass
class RuleVerdict:
    """The outcome of one rule.

    Attributes:
        rule: ``threshold`` or ``champion``.
        metric: the metric judged.
        value: the challenger's value.
        bound: the bound in words (``>= 0.75``, ``champion + 0.005``).
        passed: the verdict.
        applicable: False when the rule could not apply (no champion yet).
        champion_value: the champion's value on the same holdout (champion rules).
        sentence: the verdict in one sentence.
    """

    rule: str
    metric: str
    value: float | None
    bound: str
    passed: bool
    sentence: str
    applicable: bool = True
    champion_value: float | None = None


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
                return "all rules passed (first model: judged by value thresholds alone)"
            return "all rules passed"
        return "; ".join(v.sentence for v in self.failed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "champion_version": self.champion_version,
            "first_model": self.first_model, "verdicts": [asdict(v) for v in self.verdicts],
        }


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


def _champion(
    rule: ChampionRule, metrics: dict[str, float], champion_metrics: dict[str, float] | None,
    champion_version: int | None, champion_error: str | None,
) -> RuleVerdict:
    higher = METRICS[rule.metric].higher_is_better
    bound = f"champion {'+' if higher else '-'} {rule.margin:g}"
    value = metrics.get(rule.metric)
    if champion_version is None:
        return RuleVerdict(
            "champion", rule.metric, value, bound, True,
            "no champion yet: this first model is judged by the value thresholds alone", applicable=False,
        )
    if champion_error is not None or champion_metrics is None:
        return RuleVerdict(
            "champion", rule.metric, value, bound, False,
            f"champion v{champion_version} could not be re-scored on this holdout ({champion_error}); "
            "the gate fails closed",
        )
    champ = champion_metrics.get(rule.metric)
    if value is None or champ is None or not (math.isfinite(value) and math.isfinite(champ)):
        return RuleVerdict("champion", rule.metric, value, bound, False, f"{rule.metric} missing for the comparison",
                           champion_value=champ)
    improvement = (value - champ) if higher else (champ - value)
    ok = improvement >= rule.margin - 1e-12
    verb = "beats" if ok else "does not beat"
    sentence = (
        f"{rule.metric} {_fmt(value)} vs champion v{champion_version} {_fmt(champ)}: improvement "
        f"{improvement:+.4f} {verb} the required margin {rule.margin:g}"
    )
    return RuleVerdict("champion", rule.metric, value, bound, ok, sentence, champion_value=champ)


def evaluate_gate(
    spec: ModelSpec,
    metrics: dict[str, float],
    champion_metrics: dict[str, float] | None = None,
    champion_version: int | None = None,
    champion_error: str | None = None,
) -> GateResult:
    """Apply every rule of ``spec.gate`` to the challenger's holdout metrics.

    Args:
        metrics: the challenger's metrics on the holdout.
        champion_metrics: the champion's metrics on the same holdout (None without champion).
        champion_version: the champion's version, or None before the first promotion.
        champion_error: why the champion could not be re-scored, if it could not.
    """
    verdicts = []
    for rule in spec.gate.rules:
        if isinstance(rule, ThresholdRule):
            verdicts.append(_threshold(rule, metrics))
        elif isinstance(rule, ChampionRule):
            verdicts.append(_champion(rule, metrics, champion_metrics, champion_version, champion_error))
    return GateResult(verdicts, champion_version)


# --------------------------------------------------------------------------- Prefect tasks

from prefect import task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402


@task(name="gate", cache_policy=NO_CACHE)
def apply_gate(spec: ModelSpec, metrics: dict[str, float], champion: dict[str, Any] | None) -> GateResult:
    """Judge the selected challenger against the spec's rules and the re-scored champion."""
    if champion is None:
        return evaluate_gate(spec, metrics)
    return evaluate_gate(spec, metrics, champion.get("metrics"), champion["version"], champion.get("error"))
