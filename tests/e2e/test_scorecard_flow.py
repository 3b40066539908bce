"""End to end: the credit model's scorecard section puts points in the model card and in
``finml score`` output, and they agree with the probability."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from models.spec import find_spec
from tasks.load import load_source, split_out_of_time
from tasks.scorecard import feature_points, points_from_probability
from tasks.scoring import load_model_version
from tests.helpers import builtin_spec_dict, write_spec

pytestmark = pytest.mark.usefixtures("prefect_api")


def _points(p: float) -> int:
    """Whole points of an event probability on credit_risk's scale, computed here from the spec's
    numbers: 600 points at good:bad odds 19:1, 50 points to double the odds, rounded half up."""
    return math.floor(600 + 50 * math.log2((1 - p) / p / 19) + 0.5)


def test_credit_risk_points_in_the_card_and_in_finml_score_agree_with_the_probability(finml_env, tmp_path):
    from flows.training import train_model

    data = builtin_spec_dict("credit_risk")
    data["candidates"] = [c for c in data["candidates"] if c["estimator"] == "logistic_regression"]  # a logistic version
    write_spec(finml_env["specs"], data)
    summary = train_model("credit_risk")
    assert summary["promoted"] is True and summary["version"] == 1, summary["reason"]

    version = finml_env["registry"] / "credit_risk" / "versions" / "1"
    meta = json.loads((version / "metadata.json").read_text())
    sc = meta["scorecard"]
    assert (sc["base_points"], sc["base_odds"], sc["pdo"]) == (600, 19, 50) and sc["candidate"] == "logistic"
    cut = sc["cutoff"]
    assert "one minus the holdout event rate" in cut["rule"] and 0.15 < cut["probability"] < 0.6
    assert cut["points"] == pytest.approx(600 + 50 * math.log2((1 - cut["probability"]) / cut["probability"] / 19))
    assert cut["whole_points"] == _points(cut["probability"])
    assert meta["fairness"] is None or meta["fairness"]["cutoff"] == cut["probability"]
    features = {f["feature"] for f in sc["table"]["features"]}
    assert features == set(meta["features"])
    card = (version / "model_card.md").read_text()
    assert "## Scorecard points" in card and f"**{cut['points']:.1f} points** ({cut['whole_points']} in whole points)" in card
    assert "| `Records` | yes |" in card and "| `Income` | (missing) |" in card

    # every development row (the reference sample holds them all, the holdout among them): the feature
    # points of the logistic version sum to the points of its probability
    loaded = load_model_version.fn("credit_risk", finml_env["registry"])
    ref = loaded.reference
    assert len(ref) == meta["data"]["development_rows"] > meta["holdout"]["rows"]
    spec = find_spec("credit_risk", finml_env["specs"])
    per_feature = feature_points(spec.scorecard, loaded.pipeline, ref[loaded.features])
    np.testing.assert_allclose(per_feature.sum(axis=1).to_numpy(), points_from_probability(spec.scorecard, ref["score"]),
                               atol=1e-6)

    batch = tmp_path / "later.csv"
    split_out_of_time(load_source(spec), spec)[1].to_csv(batch, index=False)
    out = tmp_path / "scored.csv"
    result = CliRunner().invoke(app, ["score", "credit_risk", "--batch", str(batch), "--out", str(out)])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out)
    assert "scorecard points in column 'points': 600 points at good:bad odds 19:1, 50 points to double the odds" in result.output
    assert list(scored.columns[:3]) == ["rownames", "score", "points"] and len(scored) == 891
    assert scored["points"].tolist() == [_points(p) for p in scored["score"]]
    assert scored["points"].min() > 0 and scored["points"].max() < 1000  # no clipped probability on real rows
    ranked = scored.sort_values("score")
    assert ranked["points"].is_monotonic_decreasing  # more risk, fewer points
