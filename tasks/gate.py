"""The promotion gate: the mandatory sanity rules (a classifier ranks better than chance beyond
noise and its top scores hold more events than the base rate; a regression model beats the mean
forecast), then every rule of the spec (``gate.rules``), each giving a verdict, evaluated by one
mechanism (a threshold on the challenger's holdout metric, or a paired comparison with the
champion or a naive baseline on the same rows); all must pass to promote. Without a champion,
champion rules do not apply; a champion that cannot be re-scored fails them (the gate fails
closed). A classifier's holdout with fewer than ``gate.min_events`` events stops the run.
Rule semantics and their sources: ``docs/gates.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from models.errors import DataError
from models.metrics import MetricError, average_precision, format_metric, roc_auc
from models.records.gate import ChampionRescoring, Comparison, GateResult, RuleVerdict
from models.spec import BaselineRule, ChampionRule, GateSpec, McsRule, ModelSpec, MonotonicRule, ThresholdRule
from models.statistics import auc_interval, block_length
from tasks.compare import ComparisonError, bootstrap, delong, diebold_mariano, holdout_time_order, point_only
from tasks.step import step

__all__ = ["SANITY_CONFIDENCE", "GateInputs", "GateResult", "HoldoutEventsError", "RuleVerdict", "apply_gate",
           "check_holdout_events", "check_split_events", "compare_scores", "evaluate_gate", "sanity_verdicts"]

SANITY_CONFIDENCE = 0.95
"""Two-sided confidence of the sanity rules' intervals (DeLong for ROC AUC, Diebold-Mariano for
the mean forecast); fixed, like the rules themselves."""


class HoldoutEventsError(DataError):
    """A classifier's holdout holds fewer events (or non-events) than ``gate.min_events``: no
    verdict can be given on it, so the run stops."""


@dataclass
class GateInputs:
    """What the comparison rules need besides the challenger's metrics.

    Attributes:
        y: holdout labels, shape (n,); scores: the challenger's scores on them.
        champion: the champion's re-scoring (``rescore_champion``), or None without champion.
        baselines: naive forecasts on the same rows.
        time_ordered: resample in circular blocks (walk-forward holdouts).
        horizon: label horizon in rows (Diebold-Mariano lags, bootstrap block length floor).
        monotonic: the candidates' checks along the declared directions
            (:func:`tasks.monotonic.check_monotonic`), for ``monotonic`` rules.
        mcs: the holdout's model confidence set (:func:`tasks.market_tests.holdout_mcs`), for ``mcs`` rules.
        baseline_errors: per declared baseline that could not be fitted, why (fold and cause;
            :class:`models.vol_baselines.FoldBaselines`), for the sentence of a rule naming it.
    """

    y: np.ndarray
    scores: np.ndarray
    champion: ChampionRescoring | None = None
    baselines: dict[str, np.ndarray] = field(default_factory=dict)
    time_ordered: bool = False
    horizon: int = 1
    monotonic: dict | None = None
    baseline_errors: dict[str, str] = field(default_factory=dict)
    mcs: dict | None = None


def threshold_verdict(rule: ThresholdRule, metrics: dict[str, float]) -> RuleVerdict:
    """The verdict of a threshold rule on holdout metrics (a missing or non-finite value fails)."""
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
                           sentence=f"the {rule.baseline} baseline is not available for this model"
                           + (f": it could not be fitted ({inputs.baseline_errors[rule.baseline]})"
                              if rule.baseline in inputs.baseline_errors else ""))
    return _compare_rule(rule, inputs, scores, f"{rule.baseline} baseline", metrics.get(rule.metric))


# --------------------------------------------------------------------------- sanity rules


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _monotonic(rule: MonotonicRule, inputs: GateInputs) -> RuleVerdict:
    """The selected candidate's response along every declared feature, and every linear
    candidate's coefficient sign (:func:`tasks.monotonic.check_monotonic`)."""
    bound = f"reversal <= {rule.tolerance:g} along every declared direction"
    record = inputs.monotonic
    if not record or record.get("selected") not in record.get("candidates", {}):
        return RuleVerdict(rule="monotonic", metric="partial_dependence", value=None, bound=bound, passed=False,
                           sentence="monotonic: the candidates' responses were not measured, so the declared "
                                    "directions cannot be checked; the gate fails closed")
    selected = record["candidates"][record["selected"]]
    problems, worst = [], 0.0
    for c in selected["response"]:
        if c["reversal"] is not None:
            worst = max(worst, c["reversal"])
        if c["reversal"] is not None and c["reversal"] > rule.tolerance:
            move = "falls" if c["direction"] == "increasing" else "rises"
            problems.append(f"{c['feature']} is declared {c['direction']} but the average score {move} by "
                            f"{c['reversal']:.4f} from {c['feature']} {_fmt(c['from'])} to {_fmt(c['to'])}")
    for name, rec in record["candidates"].items():
        for c in rec.get("coefficients") or []:
            if not c["passed"]:
                problems.append(f"{c['feature']} is declared {c['direction']} but the linear candidate {name} gives it "
                                f"a coefficient of {c['coefficient']:+.4f}: the data's own association contradicts "
                                "the declared direction")
    if problems:
        sentence = f"monotonic: {'; '.join(problems)} (tolerance {rule.tolerance:g})"
    else:
        sentence = (f"monotonic: {record['selected']} follows every declared direction "
                    f"({', '.join(c['feature'] + ' ' + c['direction'] for c in selected['response'])}; largest "
                    f"reversal {worst:.4f} <= {rule.tolerance:g})")
    return RuleVerdict(rule="monotonic", metric="partial_dependence", value=worst, bound=bound,
                       passed=not problems, sentence=sentence)


def _mcs(rule: McsRule, inputs: GateInputs) -> RuleVerdict:
    """The selected candidate is in the holdout's model confidence set; no set: the gate fails closed."""
    level = f"{100 * (1 - rule.size):g} %"
    bound = f"in the {level} model confidence set on {rule.metric} losses"
    found = inputs.mcs
    if not found or found.get("error") or found.get("metric") != rule.metric:
        why = (found or {}).get("error") or "it was not computed on this rule's loss"
        return RuleVerdict(rule="mcs", metric=rule.metric, value=None, bound=bound, passed=False,
                           sentence=f"mcs: no model confidence set ({why}); the gate fails closed")
    p = found["p_values"].get(found["selected"])
    inside = bool(found["selected_in_set"])
    others = ", ".join(found["included"]) or "none"
    return RuleVerdict(rule="mcs", metric=rule.metric, value=p, bound=bound, passed=inside,
                       sentence=f"mcs: {found['selected']} is {'in' if inside else 'NOT in'} the {level} model "
                                f"confidence set on {rule.metric} losses (MCS p-value {p:.3f}, size {rule.size:g}; "
                                f"the set: {others})")


def check_holdout_events(gate: GateSpec, y: np.ndarray, where: str = "the holdout") -> None:
    """Stop when a classifier's holdout holds fewer than ``gate.min_events`` events or non-events.

    Args:
        y: the holdout's 0/1 labels, shape (n,).

    Raises:
        HoldoutEventsError: the count, the rows and ``gate.min_events`` named.
    """
    y = np.asarray(y, dtype=float)
    events = int((y == 1).sum())
    for count, what in ((events, "events"), (len(y) - events, "non-events")):
        if count < gate.min_events:
            raise HoldoutEventsError(
                f"{where} holds {count} {what} in {len(y)} rows, fewer than gate.min_events = {gate.min_events}: "
                f"no verdict on so few {what} (add data, enlarge split.test_size, or lower gate.min_events to "
                f"at least 10)")


def _sanity(metric: str, value: float | None, bound: str, passed: bool, sentence: str, other: str,
            other_value: float | None, comparison: Comparison | None = None) -> RuleVerdict:
    return RuleVerdict(rule="sanity", metric=metric, value=value, bound=bound, passed=bool(passed), sentence=sentence,
                       other=other, other_value=other_value, comparison=comparison)


def _auc_above_chance(y: np.ndarray, s: np.ndarray) -> RuleVerdict:
    bound = f"{SANITY_CONFIDENCE:.0%} DeLong CI low > 0.5"
    try:
        auc = roc_auc(y, s)
    except MetricError as err:
        return _sanity("roc_auc", None, bound, False, f"sanity: ROC AUC could not be computed ({err})", "chance", 0.5)
    lo, hi = auc_interval(y, s, SANITY_CONFIDENCE)
    ok = math.isfinite(lo) and lo > 0.5
    judged = (f"ROC AUC {auc:.4f}, {SANITY_CONFIDENCE:.0%} DeLong CI [{lo:.4f}, {hi:.4f}]")
    sentence = (f"sanity: {judged} is above 0.5 (chance) beyond noise" if ok else
                f"sanity: {judged} is not above 0.5 beyond noise: the model does not rank events above "
                "non-events better than chance")
    return _sanity("roc_auc", auc, bound, ok, sentence, "chance", 0.5)


def _precision_above_base_rate(y: np.ndarray, s: np.ndarray) -> RuleVerdict:
    base = float(np.mean(y)) if len(y) else float("nan")
    bound = f"> base rate {base:.4f}"
    try:
        ap = average_precision(y, s)
    except MetricError as err:
        return _sanity("average_precision", None, bound, False,
                       f"sanity: average precision could not be computed ({err})", "base rate", base)
    ok = ap > base
    sentence = (f"sanity: average precision {ap:.4f} is above the base rate {base:.4f}" if ok else
                f"sanity: average precision {ap:.4f} is not above the base rate {base:.4f}: the highest scores "
                "hold no more events than rows picked at random")
    return _sanity("average_precision", ap, bound, ok, sentence, "base rate", base)


def _beats_mean_forecast(y: np.ndarray, s: np.ndarray, horizon: int) -> RuleVerdict:
    rule = BaselineRule(kind="baseline", baseline="mean", metric="rmse", test="superior", method="diebold_mariano",
                        confidence=SANITY_CONFIDENCE)
    inputs = GateInputs(y=y, scores=s, horizon=horizon)
    verdict = _compare_rule(rule, inputs, np.full(len(y), float(np.mean(y)) if len(y) else 0.0),
                            "the mean forecast", None)
    return verdict.model_copy(update={"rule": "sanity", "sentence": "sanity: " + verdict.sentence})


def sanity_verdicts(spec: ModelSpec, inputs: GateInputs) -> list[RuleVerdict]:
    """The mandatory sanity rules, which no spec can remove, on the holdout labels and scores.

    Classifiers (binary and direction): the lower bound of the 95 % DeLong interval of the
    holdout ROC AUC above 0.5, and average precision above the holdout's base rate (its value for
    a random ranking). Regression: RMSE below the mean forecast's (the holdout's own mean, the best
    constant forecast in hindsight) beyond noise, by a Diebold-Mariano test at 95 % on the squared
    error. Without labels and scores (``inputs`` empty) they fail: the gate fails closed.

    Raises:
        HoldoutEventsError: a classifier's holdout with fewer than ``gate.min_events`` events or
            non-events (:func:`check_holdout_events`).
    """
    y = np.asarray(inputs.y, dtype=float)
    s = np.asarray(inputs.scores, dtype=float)
    if len(y) == 0 or len(y) != len(s):
        rules = ["roc_auc", "average_precision"] if spec.is_classifier else ["rmse"]
        return [_sanity(m, None, "holdout labels and scores", False,
                        "sanity: no holdout labels and scores were given, so the sanity rules cannot be checked; "
                        "the gate fails closed", "holdout", None) for m in rules]
    if spec.is_classifier:
        check_holdout_events(spec.gate, y)
        return [_auc_above_chance(y, s), _precision_above_base_rate(y, s)]
    return [_beats_mean_forecast(y, s, inputs.horizon)]


def evaluate_gate(spec: ModelSpec, metrics: dict[str, float], inputs: GateInputs | None = None) -> GateResult:
    """Apply the sanity rules (:func:`sanity_verdicts`), then every rule of ``spec.gate``, to the challenger.

    Args:
        metrics: the challenger's holdout metrics (threshold rules).
        inputs: labels, scores, the champion's re-scoring and the baselines (sanity and
            comparison rules). Without inputs the sanity rules fail (the gate fails closed).

    Returns:
        The verdicts: the sanity rules first (``rule: sanity``), then one per rule in spec order.

    Raises:
        HoldoutEventsError: a classifier's holdout with fewer than ``gate.min_events`` events.
    """
    inputs = inputs or GateInputs(np.array([]), np.array([]))
    verdicts = sanity_verdicts(spec, inputs)
    for rule in spec.gate.rules:
        if isinstance(rule, ThresholdRule):
            verdicts.append(threshold_verdict(rule, metrics))
        elif isinstance(rule, ChampionRule):
            verdicts.append(_champion(rule, metrics, inputs))
        elif isinstance(rule, BaselineRule):
            verdicts.append(_baseline(rule, metrics, inputs))
        elif isinstance(rule, MonotonicRule):
            verdicts.append(_monotonic(rule, inputs))
        elif isinstance(rule, McsRule):
            verdicts.append(_mcs(rule, inputs))
    champion = inputs.champion
    return GateResult(verdicts=verdicts, champion_version=None if champion is None else champion.version)


# --------------------------------------------------------------------------- Prefect tasks


@step("check-holdout-events")
def check_split_events(spec: ModelSpec, table, plan) -> None:
    """Before any candidate is fitted: a classifier's holdout (``plan.holdout`` rows of the
    modelling table) holds at least ``gate.min_events`` events and non-events.

    Raises:
        HoldoutEventsError: too few (the count named).
    """
    if spec.is_classifier:
        y = table[spec.target_column].to_numpy(dtype=float)[plan.holdout]
        check_holdout_events(spec.gate, y)


@step("gate")
def apply_gate(spec: ModelSpec, evaluation, champion: ChampionRescoring | None,
               monotonic: dict | None = None, mcs: dict | None = None) -> GateResult:
    """Judge the selected challenger against the spec's rules, the re-scored champion and the
    naive baselines, all on the same holdout rows; ``monotonic`` is the candidates' checks along the
    declared directions (:func:`tasks.monotonic.check_monotonic`, None without any); ``mcs`` the
    holdout's model confidence set (:func:`tasks.market_tests.holdout_mcs`, for ``mcs`` rules).

    Builds the comparison inputs from the evaluation (:class:`tasks.evaluate.HoldoutEvaluation`):
    a walk-forward split is time-ordered (circular-block bootstrap), the spec's feature builder
    gives the label horizon (Diebold-Mariano lags).
    """
    time_ordered, horizon = holdout_time_order(spec)
    fits = (getattr(evaluation, "forecast", None) or {}).get("fits") or {}
    inputs = GateInputs(
        y=evaluation.y, scores=evaluation.scores, champion=champion, baselines=evaluation.baselines,
        time_ordered=time_ordered, horizon=horizon, monotonic=monotonic, mcs=mcs,
        baseline_errors=dict(fits.get("errors") or {}),
    )
    return evaluate_gate(spec, evaluation.metrics, inputs)
