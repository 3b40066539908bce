"""Every gate rule: thresholds, champion and baseline comparisons (point, superior, not worse)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.records.gate import ChampionRescoring, GateResult
from models.spec import parse_spec
from tasks.gate import GateInputs, evaluate_gate
from tests.helpers import builtin_spec_dict


def _spec(rules, name="credit_risk"):
    data = builtin_spec_dict(name)
    data["gate"]["rules"] = rules
    return parse_spec(data)


THRESHOLDS = [
    {"kind": "threshold", "metric": "roc_auc", "min": 0.75},
    {"kind": "threshold", "metric": "ks", "min": 0.30},
    {"kind": "threshold", "metric": "brier", "max": 0.20},
]
GOOD = {"roc_auc": 0.80, "ks": 0.45, "brier": 0.15}


def _scores(n=2000, seed=0, strength=1.5):
    """Labels and a champion score with real signal (AUC about 0.8)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    champion = 1 / (1 + np.exp(-(strength * (y - 0.3) + rng.normal(0, 1, n))))
    return y, champion, rng


def _signal(n=2000, seed=10):
    """Holdout labels and a challenger's scores with real signal: they pass the sanity rules."""
    y, scores, _ = _scores(n, seed)
    return GateInputs(y, scores)


def test_first_model_is_judged_by_thresholds_alone():
    spec = _spec(THRESHOLDS + [{"kind": "champion", "metric": "roc_auc", "test": "superior", "method": "delong"}])
    gate = evaluate_gate(spec, GOOD, _signal())
    assert gate.passed and gate.first_model
    champion = [v for v in gate.verdicts if v.rule == "champion"][0]
    assert champion.passed and not champion.applicable
    assert "first model" in gate.reason()


@pytest.mark.parametrize("metric,value", [("roc_auc", 0.7499), ("ks", 0.29), ("brier", 0.2001)])
def test_each_threshold_fails_on_its_own(metric, value):
    gate = evaluate_gate(_spec(THRESHOLDS), {**GOOD, metric: value}, _signal())
    assert not gate.passed
    assert [v.metric for v in gate.failed] == [metric]
    assert "fails" in gate.failed[0].sentence


def test_threshold_bounds_are_inclusive_and_missing_metrics_fail():
    assert evaluate_gate(_spec(THRESHOLDS), {"roc_auc": 0.75, "ks": 0.30, "brier": 0.20}, _signal()).passed
    assert [v.metric for v in evaluate_gate(_spec(THRESHOLDS), {"roc_auc": 0.8, "brier": 0.1}, _signal()).failed] == ["ks"]


def test_champion_absolute_margin_on_the_point_estimate():
    y, champ, rng = _scores()
    spec = _spec(THRESHOLDS + [{"kind": "champion", "metric": "roc_auc", "margin": 0.005}])
    better = champ + 0.8 * (y - 0.3) * rng.random(len(y))  # clearly better ranking
    inputs = GateInputs(y, better, champion=ChampionRescoring(version=3, scores=champ))
    gate = evaluate_gate(spec, GOOD, inputs)
    verdict = gate.verdicts[-1]
    assert gate.passed and verdict.comparison.diff > 0.005 and verdict.other == "champion v3"
    same = evaluate_gate(spec, GOOD, GateInputs(y, champ, champion=ChampionRescoring(version=3, scores=champ)))
    assert not same.passed  # an equal challenger does not clear a positive margin
    assert "+0.0000 does not meet the required margin 0.005" in same.failed[0].sentence


def test_relative_change_for_a_lower_is_better_metric():
    y, champ, rng = _scores(seed=1)
    spec = _spec(THRESHOLDS + [{"kind": "champion", "metric": "brier", "change": "relative", "margin": -0.02}])
    slightly_worse = np.clip(champ + rng.normal(0, 0.02, len(y)), 0.001, 0.999)
    brier_c = np.mean((champ - y) ** 2)
    brier_w = np.mean((slightly_worse - y) ** 2)
    gate = evaluate_gate(spec, GOOD, GateInputs(y, slightly_worse, champion=ChampionRescoring(version=1, scores=champ)))
    rel = gate.verdicts[-1].comparison.diff
    assert rel == pytest.approx((brier_c - brier_w) / brier_c)
    assert gate.passed == (rel >= -0.02)
    much_worse = np.clip(champ + rng.normal(0, 0.2, len(y)), 0.001, 0.999)
    assert not evaluate_gate(spec, GOOD, GateInputs(y, much_worse, champion=ChampionRescoring(version=1, scores=champ))).passed


def test_a_challenger_better_only_by_noise_is_not_promoted():
    """A small point gain (it clears a 0.002 margin) whose DeLong interval includes zero."""
    y, champ, rng = _scores(n=900, seed=2)
    challenger = champ + rng.normal(0, 0.02, len(y))
    rules = THRESHOLDS + [
        {"kind": "champion", "metric": "roc_auc", "margin": 0.0},
        {"kind": "champion", "metric": "roc_auc", "test": "superior", "method": "delong"},
    ]
    gate = evaluate_gate(_spec(rules), GOOD, GateInputs(y, challenger, champion=ChampionRescoring(version=4, scores=champ)))
    point, significance = gate.verdicts[-2], gate.verdicts[-1]
    c = significance.comparison
    if c.diff <= 0:  # make the construction explicit: we need a (tiny) point improvement
        pytest.fail(f"construction needs a positive point gain, got {c.diff}")
    assert point.passed and not significance.passed
    assert c.ci_low < 0 < c.ci_high
    assert "not better beyond noise than champion v4" in significance.sentence
    assert not gate.passed and gate.failed == [significance]


def test_an_identical_challenger_never_passes_superiority():
    y, champ, _ = _scores(seed=3)
    rule = [{"kind": "champion", "metric": "roc_auc", "test": "superior", "method": "bootstrap", "n_boot": 200}]
    inputs = GateInputs(y, champ.copy(), champion=ChampionRescoring(version=2, scores=champ))
    gate = evaluate_gate(_spec(THRESHOLDS + rule), GOOD, inputs)
    assert not gate.passed and gate.failed[0].comparison.ci_low == 0.0


def test_not_worse_is_not_blocked_by_noise_but_fails_when_significantly_worse():
    y, champ, rng = _scores(n=900, seed=4)
    rule = [{"kind": "champion", "metric": "roc_auc", "test": "not_worse", "method": "delong"}]
    spec = _spec(THRESHOLDS + rule)
    noisy_equal = champ + rng.normal(0, 0.03, len(y))
    gate = evaluate_gate(spec, GOOD, GateInputs(y, noisy_equal, champion=ChampionRescoring(version=1, scores=champ)))
    c = gate.verdicts[-1].comparison
    assert c.ci_low < 0 < c.ci_high and gate.passed  # whatever the sign of the point estimate
    worse = champ + rng.normal(0, 0.6, len(y))
    gate = evaluate_gate(spec, GOOD, GateInputs(y, worse, champion=ChampionRescoring(version=1, scores=champ)))
    assert not gate.passed and gate.failed[0].comparison.ci_high < 0
    assert "significantly worse than champion v1" in gate.failed[0].sentence


def test_baseline_rule_for_the_forecaster():
    spec = parse_spec(builtin_spec_dict("market_forecast"))  # persistence rule: superior, Diebold-Mariano
    rng = np.random.default_rng(5)
    y = np.abs(rng.normal(0.15, 0.05, 1500))
    persistence = y + rng.normal(0, 0.05, 1500)
    good = y + rng.normal(0, 0.03, 1500)
    metrics = {"rmse_ratio_vs_persistence": 0.6, "rmse": 0.03}
    inputs = GateInputs(y, good, baselines={"persistence": persistence}, time_ordered=True, horizon=5)
    gate = evaluate_gate(spec, metrics, inputs)
    baseline = [v for v in gate.verdicts if v.rule == "baseline"][0]
    assert baseline.passed and baseline.comparison.method == "diebold_mariano" and baseline.comparison.ci_low > 0
    inputs = GateInputs(y, persistence + rng.normal(0, 0.001, 1500), baselines={"persistence": persistence},
                        time_ordered=True, horizon=5)
    gate = evaluate_gate(spec, metrics, inputs)
    assert not gate.passed and "no edge over the naive baselines" in gate.reason()


def test_unscorable_champion_fails_closed():
    spec = _spec(THRESHOLDS + [{"kind": "champion", "metric": "roc_auc", "margin": 0.0}])
    y, champ, _ = _scores()
    gate = evaluate_gate(spec, GOOD, GateInputs(y, champ, champion=ChampionRescoring(
        version=2, scores=None, error="IntegrityError: model changed")))
    assert not gate.passed
    assert "fails closed" in gate.failed[0].sentence and "v2" in gate.failed[0].sentence


# --------------------------------------------------------------------------- the typed records

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "gate_records_before_issue_11.json"


@pytest.mark.parametrize("which", ["credit_risk", "market_direction"])
def test_a_gate_written_by_the_code_before_the_records_reads_back_unchanged(which):
    data = json.loads(FIXTURE.read_text())
    old = data if which == "credit_risk" else data[which]
    gate = GateResult.model_validate(old["gate"])
    assert gate.as_dict() == old["gate"]
    assert json.dumps(gate.as_dict(), sort_keys=True) == json.dumps(old["gate"], sort_keys=True)
    assert gate.passed is False
    if which == "credit_risk":
        assert gate.reason() == old["decision"]["reason"]
    else:  # issue 12: the old reason said "no edge over the naive baselines" though persistence was beaten
        assert old["decision"]["reason"].startswith("no edge over the naive baselines")
        majority, persistence = [v for v in gate.verdicts if v.rule == "baseline"]
        assert not majority.passed and persistence.passed
        assert gate.reason() == (f"no edge over the majority baseline: {majority.sentence}; "
                                 f"edge over the persistence baseline: {persistence.sentence}")
    assert not gate.model_extra and all(not v.model_extra for v in gate.verdicts)
    methods = [v.comparison.method for v in gate.verdicts if v.comparison is not None]
    assert methods == (["none", "delong", "bootstrap"] if which == "credit_risk" else ["diebold_mariano"] * 2)
    if which == "credit_risk":
        champion = ChampionRescoring.model_validate(old["champion_comparison"])
        assert champion.as_dict() == old["champion_comparison"] and champion.scores is None
        assert champion.version == 1 and champion.method == "rescored" and champion.metrics["roc_auc"] > 0.86
    else:
        assert old["champion_comparison"] is None and gate.first_model
        assert [v.applicable for v in gate.verdicts] == [True, True, True, False]


def test_the_gate_writes_the_keys_it_always_wrote():
    data = json.loads(FIXTURE.read_text())["gate"]
    y, champ, rng = _scores(seed=6)
    rules = THRESHOLDS + [{"kind": "champion", "metric": "roc_auc", "margin": 0.005},
                          {"kind": "champion", "metric": "roc_auc", "test": "superior", "method": "delong"},
                          {"kind": "champion", "metric": "brier", "test": "not_worse", "method": "bootstrap", "n_boot": 100}]
    gate = evaluate_gate(_spec(rules), GOOD, GateInputs(y, champ, champion=ChampionRescoring(version=1, scores=champ)))
    written = json.loads(json.dumps(gate.as_dict()))
    assert set(written) == set(data) == {"passed", "champion_version", "first_model", "verdicts"}
    assert [v["rule"] for v in written["verdicts"][:2]] == ["sanity", "sanity"]  # then the spec's rules
    assert [set(v) for v in written["verdicts"]] == [set(v) for v in data["verdicts"][:len(written["verdicts"])]]
    rules = written["verdicts"][2:]
    assert [set(v["comparison"]) for v in rules[3:]] == [set(v["comparison"]) for v in data["verdicts"][6:]]
    assert rules[3]["champion_value"] == rules[3]["other_value"] == gate.verdicts[5].other_value
    assert written["passed"] is False and written["first_model"] is False and written["champion_version"] == 1
    assert gate.as_dict() == gate.model_dump() and GateResult.model_validate(written).as_dict() == written


def test_the_champion_record_leaves_its_scores_out_of_the_json():
    record = ChampionRescoring(version=2, method="recipe_refit", same_holdout=False, metrics={"roc_auc": 0.8},
                               scores=np.arange(5.0))
    assert record.as_dict() == {"version": 2, "method": "recipe_refit", "same_holdout": False,
                                "metrics": {"roc_auc": 0.8}, "error": None}
    assert "scores" not in record.model_dump_json() and record.scores.tolist() == [0, 1, 2, 3, 4]


def test_rules_failing_for_one_cause_give_one_sentence():
    """Every champion rule fails with the same sentence when the champion cannot be re-scored: the
    reason and the history's failed_rules say it once."""
    from models.records.gate import GateResult, RuleVerdict

    cause = "champion v1 could not be re-scored on this holdout (IntegrityError: ...); the gate fails closed"
    verdicts = [RuleVerdict(rule="threshold", metric="roc_auc", value=0.8, bound=">= 0.7", passed=True, sentence="ok"),
                *[RuleVerdict(rule="champion", metric=m, value=0.8, bound="vs champion", passed=False, sentence=cause)
                  for m in ("roc_auc", "ks", "brier")],
                RuleVerdict(rule="threshold", metric="ks", value=0.2, bound=">= 0.3", passed=False, sentence="ks low")]
    gate = GateResult(verdicts=verdicts, champion_version=1)
    assert gate.failed_sentences() == [cause, "ks low"]
    assert gate.reason() == f"{cause}; ks low"
