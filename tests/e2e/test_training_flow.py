"""End to end: train_model through Prefect on the bundled real data, for every built-in model."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from models.registry import ModelRegistry
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict, write_spec

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_every_model_is_trained_gated_and_promoted(trained):
    s = trained["summaries"]
    assert {m: (r["gate"], r["version"], r["champion"]) for m, r in s.items()} == {
        "credit_risk": ("passed", 1, 1), "loan_evaluation": ("passed", 1, 1), "market_forecast": ("passed", 1, 1),
        "mortgage_approval": ("passed", 1, 1), "market_direction": ("failed", None, None),
    }
    assert s["credit_risk"]["primary_metric"] == "roc_auc" and s["credit_risk"]["value"] >= 0.78
    assert s["loan_evaluation"]["value"] >= 0.68
    market = ModelRegistry(trained["registry"], "market_forecast").read_metadata(1)
    assert market["metrics"]["rmse"] < market["metrics"]["baseline_rmse"]  # beats persistence
    assert market["metrics"]["rmse_ratio_vs_persistence"] <= 0.97


def test_version_folder_holds_everything_design_lists(trained):
    reg = ModelRegistry(trained["registry"], "credit_risk")
    vdir = reg.version_dir(1)
    for name in ("metadata.json", "model_card.md", "reference.parquet", "model/pipeline.joblib"):
        assert (vdir / name).is_file(), name
    meta = reg.verify(1)  # every recorded SHA-256 matches
    assert meta["data"]["rows"] == 4454 and len(meta["data"]["sha256"]) == 64
    assert meta["data"]["development_rows"] == 3563 and meta["data"]["out_of_time_rows"] == 891
    assert len(meta["spec_sha256"]) == 64
    assert {c["candidate"] for c in meta["candidates"]} == {"logistic", "gradient_boosting", "keras_mlp"}
    assert sum(c["selected"] for c in meta["candidates"]) == 1
    assert all(c["roc_auc"] > 0.75 for c in meta["candidates"])  # every candidate evaluated on the holdout
    assert meta["gate"]["passed"] and meta["gate"]["first_model"]
    assert {"prefect", "scikit-learn", "great-expectations", "pandas"} <= set(meta["lineage"]["libraries"])
    assert meta["run"]["id"]
    reference = pd.read_parquet(vdir / "reference.parquet")
    assert meta["holdout"]["rows"] == 891  # the holdout judges; the reference is every development row
    assert len(reference) == meta["reference"]["rows"] == meta["data"]["modelling_rows"] == 3563
    assert meta["reference"]["in_sample_rows"] == meta["split"]["final_train_rows"] == 2672
    assert {"score", "Status", "Income", "Home"} <= set(reference.columns)
    card = (vdir / "model_card.md").read_text()
    assert "# Model card: credit_risk v1" in card and "first model" in card
    assert "| threshold | roc_auc |" in card and "Trained on a single historical portfolio" in card
    for png in ("roc_curve.png", "calibration.png", "score_distribution.png", "event_rate_by_decile.png"):
        assert (vdir / "reports" / png).stat().st_size > 5000
        assert f"reports/{png}" in card


def test_champion_scores_the_later_out_of_time_rows(trained):
    from models.spec import find_spec
    from models.metrics import roc_auc
    from tasks.load import load_source, modelling_table, split_out_of_time

    spec = find_spec("credit_risk", BUILTIN_SPECS)
    _, later = split_out_of_time(load_source(spec), spec)
    table = modelling_table(later, spec)
    pipeline, version, _ = ModelRegistry(trained["registry"], "credit_risk").load_model()
    p = pipeline.predict_proba(table[spec.feature_columns])[:, 1]
    assert version == 1 and 0.75 < roc_auc(table["Status"].to_numpy(), p) < 0.95


def test_the_reference_scores_are_the_deployed_models_even_after_a_walk_forward_backtest(trained):
    """The score PSI compares the deployed pipeline's scores on a batch with its own scores on the
    reference; a walk-forward holdout was scored by the per-fold models (they differed by up to 0.07)."""
    import numpy as np

    from models.estimators import predict_scores
    from models.spec import find_spec

    for name in ("market_forecast", "credit_risk"):
        reg = ModelRegistry(trained["registry"], name)
        pipeline, version, meta = reg.load_model()
        reference = pd.read_parquet(reg.version_dir(version) / "reference.parquet")
        spec = find_spec(name, BUILTIN_SPECS)
        expected = predict_scores(pipeline, reference[meta["features"]], spec.estimator_task)
        np.testing.assert_allclose(reference["score"].to_numpy(), expected, rtol=0, atol=1e-6)


def test_a_second_run_that_is_not_better_is_not_promoted(trained):
    from flows.training import train_model

    summary = train_model("credit_risk", reason="second demo run")
    reg = ModelRegistry(trained["registry"], "credit_risk")
    assert summary["promoted"] is False and summary["version"] is None and summary["champion"] == 1
    assert reg.list_versions() == [1] and reg.champion() == 1
    last = reg.history()[-1]
    assert last["event"] == "rejected" and last["reason"] == "second demo run"
    assert any("does not meet the required margin 0.005" in r for r in last["failed_rules"])
    assert any("is not better beyond noise than champion v1" in r for r in last["failed_rules"])
    evidence = json.loads(open(last["evidence"]).read())
    champion = evidence["champion_comparison"]
    assert champion["version"] == 1 and champion["same_holdout"] is True
    assert champion["metrics"]["roc_auc"] == pytest.approx(evidence["metrics"]["roc_auc"])


def test_artifacts_are_published(trained):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read(key):
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))

    summary = asyncio.run(read("credit-risk-training-summary"))
    assert summary and "Training credit_risk" in summary[0].data
    table = asyncio.run(read("market-forecast-candidates"))
    assert table and "linear_har" in str(table[0].data)


def test_cli_registry_commands(trained):
    runner = CliRunner()
    trained["mp"].setenv("COLUMNS", "200")
    listing = runner.invoke(app, ["registry", "list"])
    assert listing.exit_code == 0, listing.output
    for name in ("credit_risk", "loan_evaluation", "market_forecast"):
        assert name in listing.output
    assert "roc_auc" in listing.output and "rmse" in listing.output
    show = runner.invoke(app, ["registry", "show", "credit_risk", "--version", "1"])
    assert show.exit_code == 0 and "credit_risk v1" in show.output and "hashes verified" in show.output
    missing = runner.invoke(app, ["registry", "show", "credit_risk", "--version", "9"])
    assert missing.exit_code == 1 and "no version 9" in missing.output


def test_rollback_through_the_cli(trained, tmp_path):
    # A copy of the trained registry with a second version, to roll back from.
    root = tmp_path / "registry"
    shutil.copytree(trained["registry"], root)
    trained["mp"].setenv("FINML_REGISTRY_DIR", str(root))
    try:
        reg = ModelRegistry(root, "loan_evaluation")

        def write(folder, version):
            (folder / "note.txt").write_text(f"v{version}")
            return {"primary_metric": "roc_auc"}

        v2 = reg.publish(write, promote=True, history_event={"event": "promoted"})
        assert reg.champion() == v2 == 2
        result = CliRunner().invoke(app, ["registry", "rollback", "loan_evaluation", "--to", "1", "--reason", "test"])
        assert result.exit_code == 0, result.output
        assert reg.champion() == 1 and reg.history()[-1]["event"] == "rolled_back"
    finally:
        trained["mp"].setenv("FINML_REGISTRY_DIR", str(trained["registry"]))


def test_bad_data_stops_the_run_before_training_and_names_the_columns(finml_env):
    from flows.training import train_model
    from tasks.load import load_source
    from models.spec import find_spec
    from tasks.validate import DataValidationError

    raw = load_source(find_spec("credit_risk", BUILTIN_SPECS))
    raw.loc[10:14, "Age"] = 7  # under-age borrowers
    raw = raw.drop(columns=["Records"])
    raw.to_csv(finml_env["specs"] / "applications.csv", index=False)
    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "file", "path": "applications.csv"}
    write_spec(finml_env["specs"], data)
    with pytest.raises(DataValidationError) as info:
        train_model("credit_risk")
    message = str(info.value)
    assert "column 'Age'" in message and "5 unexpected value(s)" in message
    assert "column 'Records'" in message and "missing" in message
    reg = ModelRegistry(finml_env["registry"], "credit_risk")  # nothing written but the stopped line
    assert reg.list_versions() == [] and reg.champion() is None and not (reg.dir / "versions").exists()
    stopped = [(e["event"], e["error"], e["cause"]) for e in reg.history()]
    assert stopped == [("stopped", "DataValidationError", message)]


def test_bad_spec_fails_naming_the_field_and_writes_nothing(finml_env):
    data = builtin_spec_dict("credit_risk")
    data["target"] = {"positive": "bad"}  # no column
    write_spec(finml_env["specs"], data)
    result = CliRunner().invoke(app, ["train", "credit_risk"])
    assert result.exit_code == 1
    assert "field 'target.column'" in result.output and "required field is missing" in result.output
    assert not (finml_env["registry"] / "credit_risk").exists()


def test_every_version_records_its_drivers_and_the_card_shows_them(trained):
    meta = ModelRegistry(trained["registry"], "credit_risk").read_metadata(1)
    drivers = meta["drivers"]
    assert drivers["metric"] == "roc_auc" and drivers["rows"] == drivers["holdout_rows"] == 891
    assert drivers["in_sample"] is False  # a stratified holdout: the promoted model never saw these rows
    assert sorted(d["feature"] for d in drivers["permutation_importance"]) == sorted(meta["features"])
    top = drivers["permutation_importance"][0]
    assert top["importance"] > 0.01 and top["rank"] == 1
    assert len(drivers["partial_dependence"]) == 4
    assert [c["feature"] for c in drivers["partial_dependence"]] == [
        d["feature"] for d in drivers["permutation_importance"][:4]]
    card = (ModelRegistry(trained["registry"], "credit_risk").version_dir(1) / "model_card.md").read_text()
    assert "## Drivers of the selected candidate" in card
    assert f"| 1 | `{top['feature']}` | {top['importance']:.4f} |" in card
    assert "reports/drivers.png" in card and "reports/partial_dependence.png" in card
    market = ModelRegistry(trained["registry"], "market_forecast").read_metadata(1)["drivers"]
    assert market["in_sample"] is True and market["metric"] == "rmse"  # walk-forward refits on the holdout rows
    assert market["permutation_importance"][0]["importance"] > 0


def test_credit_models_take_the_simplest_candidate_within_noise(trained):
    meta = ModelRegistry(trained["registry"], "credit_risk").read_metadata(1)
    sel = meta["selected_candidate"]
    rule = sel["selection"]
    assert rule["rule"] == "simplest_within_noise" and rule["chosen"] == sel["name"] and rule["metric"] == "roc_auc"
    assert {c["candidate"] for c in rule["comparisons"]} == {"logistic", "gradient_boosting", "keras_mlp"} - {
        rule["best_by_metric"]}
    for c in rule["comparisons"]:  # DeLong intervals of the best's advantage
        assert c["method"] == "delong" and c["ci_low"] < c["best_advantage"] < c["ci_high"]
    if rule["chosen"] != rule["best_by_metric"]:
        chosen = next(c for c in rule["comparisons"] if c["candidate"] == rule["chosen"])
        assert chosen["within_noise"] and chosen["ci_low"] <= 0
    card = (ModelRegistry(trained["registry"], "credit_risk").version_dir(1) / "model_card.md").read_text()
    assert f"Selected: **{sel['name']}** ({sel['estimator']}) by the rule simplest_within_noise: {rule['reason']}" in card
    assert "selection" not in ModelRegistry(trained["registry"], "market_forecast").read_metadata(1)["selected_candidate"]
