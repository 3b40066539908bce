"""End to end: the evidence a model validator reads, and the gate's hard cases, through Prefect."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pytest

from models.registry import ModelRegistry
from models.spec import find_spec
from tasks.load import load_source
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict, write_spec

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.mark.parametrize("model", ["credit_risk", "loan_evaluation", "market_forecast", "mortgage_approval"])
def test_every_promoted_model_has_a_card_a_validator_can_read(trained, model):
    vdir = ModelRegistry(trained["registry"], model).version_dir(1)
    card = (vdir / "model_card.md").read_text()
    for section in ("## Purpose and intended use", "## Data", "## Features", "## Candidates compared",
                    "## Performance of the selected candidate", "## Gate", "## Plots", "## Leakage guards",
                    "## Limitations", "## Promotion record"):
        assert section in card, section
    assert "| rule | metric | value | bound |" in card and "PASS" in card
    plots = sorted(p.name for p in (vdir / "reports").glob("*.png"))
    assert plots and all(f"reports/{p}" in card for p in plots)
    assert ("Protected attribute `" in card) == (model == "mortgage_approval")
    if model in ("credit_risk", "loan_evaluation"):
        assert "Not measured: the spec names no protected attribute" in card
    assert "hyperparameters:" in card


def test_credit_card_shows_confidence_interval_calibration_and_rank_ordering(trained):
    meta = ModelRegistry(trained["registry"], "credit_risk").read_metadata(1)
    m = meta["metrics"]
    assert m["roc_auc_ci_low"] < m["roc_auc"] < m["roc_auc_ci_high"] and m["roc_auc_ci_low"] > 0.80
    assert 0 <= m["ece"] < 0.05 and 0.9 < m["calibration_ratio"] < 1.1 and m["max_rank_reversal"] <= 0.05
    assert len(meta["deciles"]) == 10 and meta["deciles"][-1]["event_rate"] > 0.6 > meta["deciles"][0]["event_rate"]
    card = (ModelRegistry(trained["registry"], "credit_risk").version_dir(1) / "model_card.md").read_text()
    assert "95 % DeLong CI" in card and "| decile (least risky first)" in card


def test_mortgage_fairness_section(trained):
    meta = ModelRegistry(trained["registry"], "mortgage_approval").read_metadata(1)
    fair = meta["fairness"]
    groups = {g["group"]: g for g in fair["attributes"]["afam"]["groups"]}
    assert set(groups) == {"no", "yes"} and groups["no"]["reference"]
    assert groups["yes"]["base_rate"] > groups["no"]["base_rate"]  # the data's denial rates differ by group
    assert groups["yes"]["adverse_impact_ratio"] == pytest.approx(groups["yes"]["approval_rate"] / groups["no"]["approval_rate"])
    assert fair["adverse_impact_ratio"] == meta["metrics"]["adverse_impact_ratio"] >= 0.8
    verdict = next(v for v in meta["gate"]["verdicts"] if v["metric"] == "adverse_impact_ratio")
    assert verdict["passed"] and verdict["bound"] == ">= 0.8"
    assert "afam" not in meta["features"]
    card = (ModelRegistry(trained["registry"], "mortgage_approval").version_dir(1) / "model_card.md").read_text()
    assert "Protected attribute `afam`" in card and "four-fifths" in card


def test_market_direction_has_no_edge_and_is_not_promoted(trained):
    summary = trained["summaries"]["market_direction"]
    assert summary["promoted"] is False and summary["version"] is None
    reg = ModelRegistry(trained["registry"], "market_direction")
    assert reg.list_versions() == [] and reg.champion() is None
    last = reg.history()[-1]
    assert last["event"] == "rejected" and any("baseline" in r for r in last["failed_rules"])
    evidence = json.loads(Path(last["evidence"]).read_text())
    m = evidence["metrics"]
    assert 0.45 < m["directional_accuracy"] < 0.56 and 0.50 < m["majority_directional_accuracy"] < 0.56
    verdicts = evidence["gate"]["verdicts"]
    failed = [v for v in verdicts if not v["passed"]]
    assert failed and {v["rule"] for v in failed} <= {"sanity", "baseline"}
    # issue 12 §4: the scores rank up days no better than chance (ROC AUC interval includes 0.5)
    auc = next(v for v in verdicts if v["rule"] == "sanity" and v["metric"] == "roc_auc")
    assert not auc["passed"] and m["roc_auc_ci_low"] <= 0.5 and auc["sentence"] in summary["reason"]
    # issue 12 §6: each baseline's own verdict in the reason
    baselines = [v for v in verdicts if v["rule"] == "baseline"]
    beaten = [v for v in baselines if v["passed"]]
    missed = [v for v in baselines if not v["passed"]]
    assert missed and all(v["sentence"] in summary["reason"] for v in baselines)
    if beaten:
        assert "no edge over the naive baselines" not in summary["reason"]
        assert f"edge over the {beaten[0]['other']}: " in summary["reason"]
    else:
        assert "no edge over the naive baselines: " in summary["reason"]
    card = (Path(last["evidence"]).parent / "model_card.md").read_text()
    assert "challenger NOT promoted" in card and "| sanity | roc_auc |" in card


def test_every_promoted_model_passed_the_sanity_rules(trained):
    for model in ("credit_risk", "loan_evaluation", "market_forecast", "mortgage_approval"):
        gate = ModelRegistry(trained["registry"], model).read_metadata(1)["gate"]
        sanity = [v for v in gate["verdicts"] if v["rule"] == "sanity"]
        assert sanity and all(v["passed"] for v in sanity), (model, sanity)
        assert [v["rule"] for v in gate["verdicts"][:len(sanity)]] == ["sanity"] * len(sanity)


def test_forecaster_beats_persistence_with_significance(trained):
    meta = ModelRegistry(trained["registry"], "market_forecast").read_metadata(1)
    verdict = next(v for v in meta["gate"]["verdicts"] if v["rule"] == "baseline")
    c = verdict["comparison"]
    assert verdict["passed"] and c["method"] == "diebold_mariano" and c["ci_low"] > 0


def test_a_challenger_better_only_within_noise_is_not_promoted(finml_env):
    """v1: logistic C=1; challenger: C=2, a hair better on the same holdout, not beyond noise."""
    from flows.training import train_model

    data = builtin_spec_dict("credit_risk")
    data["candidates"] = [{"name": "logistic", "estimator": "logistic_regression", "params": {"C": 1.0}}]
    data["gate"]["rules"] = [
        {"kind": "threshold", "metric": "roc_auc", "min": 0.75},
        {"kind": "champion", "metric": "roc_auc", "margin": 0.0},
        {"kind": "champion", "metric": "roc_auc", "test": "superior", "method": "delong"},
    ]
    write_spec(finml_env["specs"], data)
    assert train_model("credit_risk")["version"] == 1
    data["candidates"][0]["params"]["C"] = 2.0
    write_spec(finml_env["specs"], data)
    summary = train_model("credit_risk")
    reg = ModelRegistry(finml_env["registry"], "credit_risk")
    assert summary["promoted"] is False and reg.list_versions() == [1] and reg.champion() == 1
    last = reg.history()[-1]
    evidence = json.loads(Path(last["evidence"]).read_text())
    point, significance = [v for v in evidence["gate"]["verdicts"] if v["rule"] == "champion"]
    assert point["passed"] and point["comparison"]["diff"] > 0  # better on the point estimate...
    assert not significance["passed"] and significance["comparison"]["ci_low"] < 0  # ...but only by noise
    assert last["failed_rules"] == [significance["sentence"]]
    assert "not better beyond noise than champion v1" in last["failed_rules"][0]


def test_a_champion_promoted_by_another_run_meanwhile_stops_the_promotion(finml_env, monkeypatch):
    """Two runs judged against v1: the second must not replace v2 without being compared with it."""
    from flows.training import train_model

    data = builtin_spec_dict("credit_risk")
    data["candidates"] = [{"name": "logistic", "estimator": "logistic_regression"}]
    data["gate"]["rules"] = [{"kind": "threshold", "metric": "roc_auc", "min": 0.75}]
    write_spec(finml_env["specs"], data)
    assert train_model("credit_risk")["version"] == 1
    real_publish = ModelRegistry.publish

    def concurrent_run_wins_first(self, write, **kwargs):  # another run promotes v2 just before ours publishes
        monkeypatch.setattr(ModelRegistry, "publish", real_publish)
        real_publish(self, lambda folder, version: {"note": "the other run"}, promote=True,
                     history_event={"event": "promoted", "run_id": "other"})
        return real_publish(self, write, **kwargs)

    monkeypatch.setattr(ModelRegistry, "publish", concurrent_run_wins_first)
    summary = train_model("credit_risk")
    reg = ModelRegistry(finml_env["registry"], "credit_risk")
    assert summary["promoted"] is False and summary["champion"] == 2
    assert reg.list_versions() == [1, 2] and reg.champion() == 2
    last = reg.history()[-1]
    assert last["event"] == "rejected" and last["champion_before"] == 2
    assert "the champion is now version 2, but this run was judged against version 1" in last["failed_rules"][0]
    assert "not promoted" in summary["reason"]


def test_target_copied_into_a_feature_stops_the_run_naming_it(finml_env):
    from flows.training import train_model
    from tasks.leakage import LeakageError

    raw = load_source(find_spec("credit_risk", BUILTIN_SPECS))
    raw["recovery_flag"] = raw["Status"]  # a copy of the target, as a collections system would record it
    raw.to_csv(finml_env["specs"] / "credit.csv", index=False)
    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "file", "path": "credit.csv"}
    data["columns"]["recovery_flag"] = {"role": "categorical"}
    write_spec(finml_env["specs"], data)
    with pytest.raises(LeakageError, match=r"probable target leakage: 'recovery_flag' \(roc_auc 1\.0000 > 0\.95\)"):
        train_model("credit_risk")
    assert not glob.glob(str(finml_env["registry"] / "credit_risk" / "versions" / "*"))
