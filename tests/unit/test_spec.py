"""Spec validation: the built-in specs load; bad specs fail naming the field."""

from __future__ import annotations

import pytest

from models.spec import SpecError, find_spec, list_specs, load_spec_file, parse_spec
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict, write_spec


def test_builtin_specs_load_with_their_features():
    specs = {s.name: s for s in list_specs(BUILTIN_SPECS)}
    assert {"credit_risk", "loan_evaluation", "market_forecast"} <= set(specs)
    credit = specs["credit_risk"]
    assert credit.task == "binary_classification"
    assert credit.target.positive == "bad"
    assert "Income" in credit.numeric_features and "Home" in credit.categorical_features
    assert "rownames" not in credit.feature_columns  # an id is never a feature
    market = specs["market_forecast"]
    assert market.target_column == "rv_next_5d"
    assert "rv_5d" in market.feature_columns and "rv_22d" in market.feature_columns
    assert not {"Close", "Volume"} & set(market.feature_columns)  # price and volume levels are never features


def _error(data: dict) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(data, origin="test.yaml")
    return str(info.value)


def test_unknown_key_is_named():
    data = builtin_spec_dict("credit_risk")
    data["colour"] = "blue"
    message = _error(data)
    assert "field 'colour'" in message and "unknown key" in message


def test_unknown_nested_key_is_named_with_its_path():
    data = builtin_spec_dict("credit_risk")
    data["columns"]["Age"]["minimum"] = 18
    assert "field 'columns.Age.minimum'" in _error(data)


def test_missing_target_is_named():
    data = builtin_spec_dict("credit_risk")
    del data["target"]
    message = _error(data)
    assert "field 'target'" in message and "required field is missing" in message


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "x" * 65, "name with space"])
def test_unsafe_names_are_rejected(name):
    data = builtin_spec_dict("credit_risk")
    data["name"] = name
    message = _error(data)
    assert "field 'name'" in message


def test_a_gate_without_thresholds_is_rejected():
    data = builtin_spec_dict("credit_risk")
    data["gate"]["rules"] = [{"kind": "champion", "metric": "roc_auc", "margin": 0.0}]
    assert "never promotes by default" in _error(data)


def test_gate_rule_fields_are_named():
    data = builtin_spec_dict("credit_risk")
    data["gate"]["rules"][0] = {"kind": "threshold", "metric": "roc_auc", "minimum": 0.7}
    assert "field 'gate.rules.0.minimum'" in _error(data)


def test_metric_must_fit_the_task():
    data = builtin_spec_dict("credit_risk")
    data["gate"]["rules"].append({"kind": "threshold", "metric": "rmse", "max": 1.0})
    last = len(data["gate"]["rules"]) - 1
    assert f"gate.rules.{last}.metric: metric 'rmse' does not apply" in _error(data)


def test_unknown_hyperparameter_is_named():
    data = builtin_spec_dict("credit_risk")
    data["candidates"][0]["params"]["penalty_strength"] = 3
    message = _error(data)
    assert "candidates.0.params" in message and "penalty_strength" in message


def test_walk_forward_gap_shorter_than_the_horizon_is_rejected():
    data = builtin_spec_dict("market_forecast")
    data["split"]["gap"] = 2
    assert "split.gap (2) must be at least the label horizon (5 rows)" in _error(data)


def test_target_column_listed_as_a_feature_is_rejected():
    data = builtin_spec_dict("credit_risk")
    data["columns"]["Status"] = {"role": "categorical"}
    assert "target.column" in _error(data)


@pytest.mark.parametrize("name", ["score", "model", "model_version", "scored_at"])
def test_names_the_platform_writes_are_reserved(name):
    """A feature called ``score`` was silently replaced by the model score in drift monitoring."""
    data = builtin_spec_dict("credit_risk")
    data["columns"][name] = {"role": "numeric", "min": 300, "max": 850}
    assert f"columns.{name}: {name!r} is a name the platform writes" in _error(data)


def test_a_tolerance_needs_a_metric_with_a_direction():
    data = builtin_spec_dict("credit_risk")
    data.setdefault("drift", {})["performance_tolerance"] = {"calibration_ratio": 0.1}
    assert "'calibration_ratio' has an ideal value, not a better direction" in _error(data)


def test_a_random_holdout_is_refused_for_time_series_features_and_for_regression():
    data = builtin_spec_dict("market_forecast")
    data["split"] = {"method": "stratified_holdout"}
    message = _error(data)
    assert "features built from a time series need a time-ordered split" in message
    assert "stratified_holdout stratifies on classes; a regression model needs method walk_forward" in message


def test_a_comparison_needs_a_metric_computed_from_scores_alone():
    data = builtin_spec_dict("market_forecast")
    data["gate"]["rules"].append({"kind": "champion", "metric": "rmse_ratio_vs_persistence"})
    assert "'rmse_ratio_vs_persistence' cannot be compared row by row" in _error(data)
    data = builtin_spec_dict("credit_risk")
    data["gate"]["rules"].append({"kind": "champion", "metric": "roc_auc_ci_low"})
    assert "'roc_auc_ci_low' cannot be compared row by row" in _error(data)


def test_comparison_rules_are_checked():
    data = builtin_spec_dict("credit_risk")
    data["gate"]["rules"].append({"kind": "champion", "metric": "brier", "method": "delong", "test": "superior"})
    assert "'delong' applies to an absolute change of roc_auc only" in _error(data)
    data = builtin_spec_dict("credit_risk")
    data["gate"]["rules"].append({"kind": "baseline", "baseline": "persistence", "metric": "roc_auc"})
    assert "baseline: 'persistence' is not a baseline of this model" in _error(data)
    data = builtin_spec_dict("credit_risk")
    data["gate"]["rules"].append({"kind": "champion", "metric": "calibration_ratio"})
    assert "has no better direction" in _error(data)
    data = builtin_spec_dict("credit_risk")
    data["gate"]["rules"].append({"kind": "threshold", "metric": "adverse_impact_ratio", "min": 0.8})
    assert "needs a column with role 'protected'" in _error(data)


def test_protected_columns_are_never_features():
    spec = parse_spec(builtin_spec_dict("mortgage_approval"))
    assert spec.protected_columns == ["afam"] and "afam" not in spec.feature_columns


@pytest.mark.parametrize("cron,why", [
    ("every sunday", "not a five-field cron"), ("61 * * * *", "minute '61' is outside 0-59"),
    ("0 24 * * *", "hour '24' is outside 0-23"), ("0 3 * * mond", "day of week 'mond'"),
    ("0 3 10-2 * *", "runs backwards"), ("*/0 * * * *", "step '0'"),
    ("0 3 31 2 *", "never fires: no month it names has day(s) [31]"),
    ("0 3 30,31 feb *", "never fires"), ("0 3 31 4,6,9,11 *", "never fires"),
])
def test_bad_cron_is_named(cron, why):
    data = builtin_spec_dict("credit_risk")
    data["schedules"]["train"] = cron
    message = _error(data)
    assert "field 'schedules.train'" in message and why in message


def test_good_crons_pass():
    from models.spec import check_cron

    for cron in ("0 3 * * 0", "*/15 9-17 * * mon-fri", "0 22 * * 1-5", "0 0 1 jan,jul *", "30 6 * * 7",
                 "0 3 29 2 *", "0 3 31 2,3 *", "0 3 31 2 mon", "0 3 25-31/3 feb *"):
        assert check_cron(cron) == cron


def test_find_spec_checks_the_file_name(tmp_path):
    data = builtin_spec_dict("credit_risk")
    data["name"] = "other_name"
    (tmp_path / "credit_risk.yaml").write_text(__import__("yaml").safe_dump(data))
    with pytest.raises(SpecError, match="field 'name' is 'other_name'"):
        find_spec("credit_risk", tmp_path)


def test_find_spec_lists_what_exists(tmp_path):
    write_spec(tmp_path, builtin_spec_dict("credit_risk"))
    with pytest.raises(SpecError, match=r"no spec named 'nope'.*available: credit_risk"):
        find_spec("nope", tmp_path)
    with pytest.raises(SpecError, match="not a safe name"):
        find_spec("../credit_risk", tmp_path)


def test_relative_file_source_resolves_against_the_spec_folder(tmp_path):
    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "file", "path": "data/loans.csv"}
    path = write_spec(tmp_path, data)
    spec = load_spec_file(path)
    assert spec.source.path == str((tmp_path / "data" / "loans.csv").resolve())


def test_content_hash_ignores_formatting_but_not_content():
    a = parse_spec(builtin_spec_dict("credit_risk"))
    b = parse_spec(builtin_spec_dict("credit_risk"))
    assert a.content_hash() == b.content_hash()
    changed = builtin_spec_dict("credit_risk")
    changed["gate"]["rules"][0]["min"] = 0.76
    assert parse_spec(changed).content_hash() != a.content_hash()
