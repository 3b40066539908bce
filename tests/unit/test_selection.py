"""Candidate selection: simplest_within_noise (tasks.selection) and the spec's default rule."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.selection import comparison_metric, simplest_within_noise
from tests.helpers import builtin_spec_dict


def _scores(seed: int = 0, n: int = 2000):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-1.5 * signal))).astype(float)
    strong = 1 / (1 + np.exp(-(1.5 * signal)))
    return rng, y, signal, strong


def test_a_network_inside_the_noise_loses_to_the_logistic_model():
    rng, y, signal, strong = _scores()
    logistic = strong
    network = 1 / (1 + np.exp(-(1.5 * signal + rng.normal(scale=0.05, size=len(y)))))  # a hair different
    cands = [{"name": "logistic", "estimator": "logistic_regression", "scores": logistic},
             {"name": "gbm", "estimator": "hist_gradient_boosting", "scores": None},  # failed candidate
             {"name": "net", "estimator": "keras_mlp", "scores": network}]
    rec = simplest_within_noise(cands, "net", y, "roc_auc")
    assert rec["chosen"] == "logistic" and rec["best_by_metric"] == "net"
    comp = rec["comparisons"][0]
    assert comp["candidate"] == "logistic" and comp["method"] == "delong" and comp["within_noise"]
    assert comp["ci_low"] <= 0 < comp["ci_high"]
    assert "includes 0" in rec["reason"] and "logistic (logistic_regression)" in rec["reason"]


def test_a_significantly_better_network_is_kept_and_the_reason_gives_the_interval():
    rng, y, signal, strong = _scores(1)
    weak = 1 / (1 + np.exp(-(0.3 * signal + rng.normal(size=len(y)))))
    cands = [{"name": "logistic", "estimator": "logistic_regression", "scores": weak},
             {"name": "net", "estimator": "keras_mlp", "scores": strong}]
    rec = simplest_within_noise(cands, "net", y, "roc_auc")
    assert rec["chosen"] == "net"
    comp = rec["comparisons"][0]
    assert comp["within_noise"] is False and comp["ci_low"] > 0.05
    assert "significantly worse" in rec["reason"] and f"[{comp['ci_low']:+.4f}" in rec["reason"]


def test_boosting_is_chosen_when_only_it_is_within_noise():
    rng, y, signal, strong = _scores(2)
    weak = 1 / (1 + np.exp(-(0.2 * signal + rng.normal(size=len(y)))))
    near = 1 / (1 + np.exp(-(1.5 * signal + rng.normal(scale=0.05, size=len(y)))))
    cands = [{"name": "net", "estimator": "keras_mlp", "scores": strong},
             {"name": "gbm", "estimator": "hist_gradient_boosting", "scores": near},
             {"name": "logistic", "estimator": "logistic_regression", "scores": weak}]
    rec = simplest_within_noise(cands, "net", y, "roc_auc")
    assert rec["chosen"] == "gbm"
    assert {c["candidate"]: c["within_noise"] for c in rec["comparisons"]} == {"gbm": True, "logistic": False}


def test_a_simpler_candidate_failing_a_gate_threshold_is_passed_over_for_one_within_noise():
    # the mortgage case: logistic within noise of boosting but under the four-fifths screen
    rng, y, signal, strong = _scores(4)
    near = 1 / (1 + np.exp(-(1.5 * signal + rng.normal(scale=0.05, size=len(y)))))
    net = 1 / (1 + np.exp(-(1.5 * signal + rng.normal(scale=0.05, size=len(y)))))
    cands = [{"name": "logistic", "estimator": "logistic_regression", "scores": near},
             {"name": "gbm", "estimator": "hist_gradient_boosting", "scores": strong},
             {"name": "net", "estimator": "keras_mlp", "scores": net}]
    fails = {"logistic": ["adverse_impact_ratio = 0.7580 fails >= 0.8"], "gbm": [], "net": []}
    rec = simplest_within_noise(cands, "gbm", y, "roc_auc", threshold_failures=fails)
    assert rec["chosen"] == "gbm"
    assert rec["passed_over"] == [{"candidate": "logistic", "fails": ["adverse_impact_ratio = 0.7580 fails >= 0.8"]}]
    assert rec["reason"] == ("gbm has the best roc_auc; passed over, within noise but failing the gate's thresholds: "
                             "logistic (adverse_impact_ratio = 0.7580 fails >= 0.8)")
    # without the failure the logistic model is chosen, as before
    assert simplest_within_noise(cands, "gbm", y, "roc_auc")["chosen"] == "logistic"
    # when every candidate within noise fails, the simplest is kept (the gate will reject it) and said so
    every = {name: ["brier = 0.2 fails <= 0.1"] for name in ("logistic", "gbm", "net")}
    rec = simplest_within_noise(cands, "gbm", y, "roc_auc", threshold_failures=every)
    assert rec["chosen"] == "logistic" and rec["passed_over"] == []
    assert rec["reason"].endswith("no candidate within noise meets the gate's thresholds")


def test_threshold_failures_are_read_from_the_gate_rules_of_the_spec():
    from models.spec import ModelSpec
    from tasks.evaluate import CandidateEvaluation, threshold_failures

    spec = ModelSpec.model_validate(builtin_spec_dict("mortgage_approval"))
    good = CandidateEvaluation("gbm", "hist_gradient_boosting",
                               metrics={"roc_auc": 0.81, "brier": 0.08, "ece": 0.03, "max_rank_reversal": 0.0,
                                        "adverse_impact_ratio": 0.86})
    bad = CandidateEvaluation("logistic", "logistic_regression",
                              metrics={**good.metrics, "adverse_impact_ratio": 0.758, "ece": float("nan")})
    out = threshold_failures(spec, [good, bad])
    assert out["gbm"] == []
    assert out["logistic"] == ["ece could not be computed", "adverse_impact_ratio = 0.7580 fails >= 0.8"]


def test_forecasters_on_a_walk_forward_holdout_use_diebold_mariano():
    rng = np.random.default_rng(3)
    y = rng.normal(size=800).cumsum() * 0.01 + 0.2
    good = y + rng.normal(scale=0.01, size=800)
    same = good + rng.normal(scale=0.0005, size=800)
    cands = [{"name": "linear", "estimator": "linear_regression", "scores": same},
             {"name": "net", "estimator": "keras_mlp", "scores": good}]
    rec = simplest_within_noise(cands, "net", y, "rmse_ratio_vs_persistence", time_ordered=True, horizon=5)
    assert rec["metric"] == "rmse" and rec["comparisons"][0]["method"] == "diebold_mariano"
    assert rec["chosen"] == "linear"


def test_a_metric_that_cannot_be_compared_keeps_the_best():
    _, y, _, strong = _scores()
    rec = simplest_within_noise([{"name": "a", "estimator": "keras_mlp", "scores": strong}], "a", y,
                                "adverse_impact_ratio")
    assert rec["chosen"] == "a" and rec["metric"] is None and "cannot be compared" in rec["reason"]
    assert comparison_metric("roc_auc_ci_low") == "roc_auc"


@pytest.mark.parametrize("model, rule", [("credit_risk", "simplest_within_noise"), ("market_forecast", "best"),
                                         ("market_direction", "best")])
def test_default_rule_by_task(model, rule):
    from models.spec import ModelSpec

    spec = ModelSpec.model_validate(builtin_spec_dict(model))
    assert spec.selection is None and spec.selection_rule == rule
    other = "best" if rule != "best" else "simplest_within_noise"
    assert ModelSpec.model_validate({**builtin_spec_dict(model), "selection": other}).selection_rule == other
