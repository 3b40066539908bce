"""End to end, issue 12 §4 and §5: the gate's sanity rules and the minimum of holdout events,
and fairness in declared bands, through Prefect."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.errors import DataError, SpecError
from models.registry import ModelRegistry
from tasks.gate import HoldoutEventsError
from tests.helpers import builtin_spec_dict, write_spec

pytestmark = pytest.mark.usefixtures("prefect_api")

LOGISTIC = [{"name": "logistic", "estimator": "logistic_regression", "params": {"C": 1.0}}]


def test_a_holdout_with_too_few_events_stops_the_run_before_training(finml_env):
    from flows.training import train_model

    data = builtin_spec_dict("credit_risk")
    data["split"]["test_size"] = 0.02  # about 71 holdout rows, about 20 bad loans
    data["candidates"] = LOGISTIC
    write_spec(finml_env["specs"], data)
    with pytest.raises(HoldoutEventsError, match=r"the holdout holds \d+ events in \d+ rows, fewer than "
                                                 r"gate\.min_events = 30"):
        train_model("credit_risk")
    reg = ModelRegistry(finml_env["registry"], "credit_risk")
    assert reg.list_versions() == [] and [e["event"] for e in reg.history()] == ["stopped"]  # stopped, not judged
    assert reg.history()[0]["error"] == "HoldoutEventsError"


def test_a_no_signal_model_with_2_percent_events_under_a_brier_only_gate_is_rejected(finml_env):
    from flows.training import train_model

    rng = np.random.default_rng(12)
    n = 8000
    status = np.where(rng.random(n) < 0.02, "bad", "good")
    pd.DataFrame({"rownames": np.arange(1, n + 1), "x1": rng.normal(size=n), "x2": rng.normal(size=n),
                  "Status": status}).to_csv(finml_env["specs"] / "noise.csv", index=False)
    data = builtin_spec_dict("credit_risk")
    data.pop("out_of_time")
    data.pop("drift")
    data.update(name="no_signal", source={"kind": "file", "path": "noise.csv"}, candidates=LOGISTIC,
                columns={"rownames": {"role": "id", "dtype": "integer", "min": 1}, "x1": {"role": "numeric"},
                         "x2": {"role": "numeric"}},
                gate={"primary_metric": "brier", "rules": [{"kind": "threshold", "metric": "brier", "max": 0.05}]})
    data["target"]["expected_positive_rate"] = [0.005, 0.05]
    write_spec(finml_env["specs"], data)
    summary = train_model("no_signal")
    reg = ModelRegistry(finml_env["registry"], "no_signal")
    assert summary["promoted"] is False and reg.list_versions() == [] and reg.champion() is None
    evidence = json.loads(Path(reg.history()[-1]["evidence"]).read_text())
    verdicts = {(v["rule"], v["metric"]): v for v in evidence["gate"]["verdicts"]}
    assert verdicts[("threshold", "brier")]["passed"]  # the spec's only rule is met...
    auc = verdicts[("sanity", "roc_auc")]
    assert not auc["passed"] and evidence["metrics"]["roc_auc_ci_low"] <= 0.5  # ...but the ranking is chance
    assert summary["reason"].startswith("sanity: ROC AUC") and auc["sentence"] in reg.history()[-1]["failed_rules"]
    assert evidence["holdout"]["rows"] == 2000


def test_credit_risk_with_age_protected_needs_bands_and_reports_them(finml_env):
    from flows.training import train_model

    data = builtin_spec_dict("credit_risk")
    data["columns"]["Age"]["role"] = "protected"
    data["candidates"] = LOGISTIC
    data["gate"]["rules"] = [{"kind": "threshold", "metric": "roc_auc", "min": 0.70}]
    write_spec(finml_env["specs"], data)
    with pytest.raises(SpecError, match=r"fairness\.bands\.Age: protected column 'Age' is numeric"):
        train_model("credit_risk")

    data["fairness"] = {"bands": {"Age": [18, 25, 40, 60, 65]}}
    write_spec(finml_env["specs"], data)
    assert train_model("credit_risk")["version"] == 1
    reg = ModelRegistry(finml_env["registry"], "credit_risk")
    meta = reg.read_metadata(1)
    assert "Age" not in meta["features"]
    attr = meta["fairness"]["attributes"]["Age"]
    groups = attr["groups"]
    assert [g["group"] for g in groups] == ["[18, 25)", "[25, 40)", "[40, 60)", "[60, 65)", ">= 65"]
    assert sum(g["rows"] for g in groups) == meta["holdout"]["rows"]
    assert all(g["too_small"] == (g["rows"] < 30) for g in groups) and groups[-1]["too_small"]
    for g in groups:
        assert 0 <= g["approval_rate"] <= 1
        assert (g["adverse_impact_ratio"] is None) == g["too_small"]
    ref = next(g for g in groups if g["reference"])
    assert ref["group"] == attr["reference_group"] == max(groups, key=lambda g: g["rows"])["group"]
    judged = [g["adverse_impact_ratio"] for g in groups if not g["too_small"] and not g["reference"]]
    assert meta["fairness"]["adverse_impact_ratio"] == pytest.approx(min(judged))
    card = (reg.version_dir(1) / "model_card.md").read_text()
    assert "Protected attribute `Age`" in card and "bands at 18, 25, 40, 60, 65" in card
    assert "| >= 65 |" in card and "too small to judge" in card


def test_an_unbanded_numeric_protected_column_stops_the_run_before_any_candidate_is_fitted(finml_env, monkeypatch):
    """Age declared ``{role: protected}`` (no dtype, no bands): the spec cannot see it holds numbers,
    the modelling table can; the run stops there, not after fitting every candidate."""
    import flows.training
    from flows.training import train_model

    calls = []

    class NoFit:
        @staticmethod
        def submit(spec, candidate, *args):
            calls.append(candidate.name)
            raise AssertionError(f"candidate {candidate.name!r} fitted before the protected column was checked")

    monkeypatch.setattr(flows.training, "fit_candidate", NoFit)
    data = builtin_spec_dict("credit_risk")
    data["columns"]["Age"] = {"role": "protected"}
    data["candidates"] = LOGISTIC
    write_spec(finml_env["specs"], data)
    with pytest.raises(DataError, match=r"^fairness\.bands\.Age: protected column 'Age' holds numbers \(\d+ distinct "
                                        r"values\); declare its bands"):
        train_model("credit_risk")
    assert calls == []
    reg = ModelRegistry(finml_env["registry"], "credit_risk")
    assert reg.list_versions() == [] and [e["event"] for e in reg.history()] == ["stopped"]
    assert reg.history()[0]["cause"].startswith("fairness.bands.Age: protected column 'Age' holds numbers")
