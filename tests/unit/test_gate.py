"""Every gate rule: thresholds, champion comparison in both directions, first model, fail-closed."""

from __future__ import annotations

import pytest

from models.spec import parse_spec
from tasks.gate import evaluate_gate
from tests.helpers import builtin_spec_dict


@pytest.fixture
def credit():
    return parse_spec(builtin_spec_dict("credit_risk"))  # roc_auc >= 0.75, ks >= 0.30, brier <= 0.20, champion +0.005


@pytest.fixture
def market():
    return parse_spec(builtin_spec_dict("market_forecast"))  # ratio <= 0.97, rmse <= 0.15, champion rmse -0.0005


GOOD = {"roc_auc": 0.80, "ks": 0.45, "brier": 0.15}


def test_first_model_is_judged_by_thresholds_alone(credit):
    gate = evaluate_gate(credit, GOOD)
    assert gate.passed and gate.first_model
    champion = [v for v in gate.verdicts if v.rule == "champion"][0]
    assert champion.passed and not champion.applicable
    assert "first model" in gate.reason()


@pytest.mark.parametrize("metric,value", [("roc_auc", 0.7499), ("ks", 0.29), ("brier", 0.2001)])
def test_each_threshold_fails_on_its_own(credit, metric, value):
    gate = evaluate_gate(credit, {**GOOD, metric: value})
    assert not gate.passed
    assert [v.metric for v in gate.failed] == [metric]
    assert "fails" in gate.failed[0].sentence


def test_threshold_bounds_are_inclusive(credit):
    assert evaluate_gate(credit, {"roc_auc": 0.75, "ks": 0.30, "brier": 0.20}).passed


def test_missing_metric_fails(credit):
    gate = evaluate_gate(credit, {"roc_auc": 0.8, "brier": 0.1})
    assert [v.metric for v in gate.failed] == ["ks"]


def test_champion_margin_higher_is_better(credit):
    assert evaluate_gate(credit, {**GOOD, "roc_auc": 0.806}, {"roc_auc": 0.800}, champion_version=3).passed
    gate = evaluate_gate(credit, {**GOOD, "roc_auc": 0.804}, {"roc_auc": 0.800}, champion_version=3)
    assert not gate.passed
    verdict = gate.failed[0]
    assert verdict.rule == "champion" and verdict.champion_value == 0.800
    assert "+0.0040 does not beat the required margin 0.005" in verdict.sentence
    # an equal challenger is not promoted when a margin is required
    assert not evaluate_gate(credit, GOOD, dict(GOOD), champion_version=3).passed


def test_champion_margin_lower_is_better(market):
    metrics = {"rmse_ratio_vs_persistence": 0.9, "rmse": 0.0800}
    assert evaluate_gate(market, {**metrics, "rmse": 0.0794}, {"rmse": 0.0800}, champion_version=1).passed
    gate = evaluate_gate(market, {**metrics, "rmse": 0.0797}, {"rmse": 0.0800}, champion_version=1)
    assert [v.rule for v in gate.failed] == ["champion"]
    # a worse (higher) RMSE never passes
    assert not evaluate_gate(market, {**metrics, "rmse": 0.09}, {"rmse": 0.08}, champion_version=1).passed


def test_forecaster_must_beat_persistence(market):
    gate = evaluate_gate(market, {"rmse_ratio_vs_persistence": 1.02, "rmse": 0.08})
    assert [v.metric for v in gate.failed] == ["rmse_ratio_vs_persistence"]


def test_unscorable_champion_fails_closed(credit):
    gate = evaluate_gate(credit, GOOD, None, champion_version=2, champion_error="IntegrityError: model changed")
    assert not gate.passed
    assert "fails closed" in gate.failed[0].sentence and "v2" in gate.failed[0].sentence
