"""End to end: a declared direction the data contradicts stops the promotion, naming the feature."""

from __future__ import annotations

import json
import re

import pytest

from models.registry import ModelRegistry
from tests.helpers import builtin_spec_dict, write_spec

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_income_declared_in_the_wrong_direction_is_stopped_by_the_monotonic_rule(finml_env):
    from flows.training import train_model

    data = builtin_spec_dict("credit_risk")
    data["columns"]["Income"]["monotone"] = "increasing"  # credit policy says decreasing; so do the data
    data["candidates"] = [c for c in data["candidates"] if c["estimator"] != "keras_mlp"]  # faster, same verdict
    write_spec(finml_env["specs"], data)
    summary = train_model("credit_risk")
    assert summary["gate"] == "failed" and summary["promoted"] is False and summary["version"] is None
    reg = ModelRegistry(finml_env["registry"], "credit_risk")
    assert reg.list_versions() == [] and reg.champion() is None
    rejected = [e for e in reg.history() if e["event"] == "rejected"]
    assert len(rejected) == 1
    failed = [r for r in rejected[0]["failed_rules"] if r.startswith("monotonic:")]
    assert len(failed) == 1 and "Income is declared increasing" in failed[0]
    assert "the linear candidate logistic gives it a coefficient of -" in failed[0]
    assert "Seniority" not in failed[0] and "Amount" not in failed[0]  # the right declarations hold
    evidence = json.loads(open(rejected[0]["evidence"]).read())
    boosted = evidence["monotonic"]["candidates"]["gradient_boosting"]
    assert boosted["constrained"] is True  # trained under the (wrong) constraint: its own response holds
    assert all(c["passed"] for c in boosted["response"])
    logistic = {c["feature"]: c for c in evidence["monotonic"]["candidates"]["logistic"]["response"]}
    assert not logistic["Income"]["passed"] and logistic["Income"]["reversal"] > 0.05
    card = open(rejected[0]["evidence"].replace("rejected.json", "model_card.md")).read()
    assert re.search(r"\| logistic[^|]* \| `Income` \| increasing \| 0\.\d+ \| [\d.]+ → [\d.]+ \| -0\.\d+ \| \*\*reversed\*\* \|",
                     card)
