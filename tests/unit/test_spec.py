"""Spec validation: the built-in specs load; bad specs fail naming the field."""

from __future__ import annotations

import pytest

from models.spec import CHECKS, ModelSpec, SpecError, find_spec, list_specs, load_spec_file, parse_spec, scan_specs
from models.spec import checks as spec_checks
from models.spec.fields import SpecFields
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict, spec_error, write_spec


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
    return spec_error(data, "test.yaml")


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


def test_a_tolerance_needs_a_metric_with_a_direction_except_the_calibration_ratio(monkeypatch):
    from models.metrics import METRICS

    data = builtin_spec_dict("credit_risk")
    data.setdefault("drift", {})["performance_tolerance"] = {"calibration_ratio": 0.1}  # the accepted |ratio - 1|
    assert parse_spec(data, origin="test.yaml").drift.tolerance("calibration_ratio") == 0.1
    data["drift"]["performance_tolerance"] = {"calibration_ratio": -0.1}
    assert "tolerance of 'calibration_ratio' must be >= 0" in _error(data)
    monkeypatch.setitem(METRICS, "ideal_ratio", METRICS["calibration_ratio"].model_copy())
    data["drift"]["performance_tolerance"] = {"ideal_ratio": 0.1}
    assert "'ideal_ratio' has an ideal value, not a better direction" in _error(data)


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


# --------------------------------------------------------------------------- the named checks


def _drop_positive(d):
    d["target"].pop("positive")


def _no_features(d):
    for col in d["columns"].values():
        if col["role"] in ("numeric", "categorical"):
            col.update(role="excluded", reason="test")


_RESERVED = ("columns.score: 'score' is a name the platform writes on scored rows "
             "['model', 'model_version', 'score', 'scored_at']; rename the column in the spec and the data")

CHECK_CASES = [
    ("check_candidate_names", "credit_risk",
     lambda d: d["candidates"].append(dict(d["candidates"][0])),
     ["candidates: duplicate names in ['logistic', 'gradient_boosting', 'keras_mlp', 'logistic']"]),
    ("check_candidates_fit_task", "market_forecast",
     lambda d: d["candidates"].append({"name": "lr", "estimator": "logistic_regression"}),
     ["candidates.3.estimator: 'logistic_regression' does not support task 'regression'"]),
    ("check_candidates_fit_task", "credit_risk",
     lambda d: d["candidates"][1]["params"].update(depth=3),
     ["candidates.1.params: unknown hyperparameter(s) ['depth'] for hist_gradient_boosting; allowed: "]),
    ("check_metrics_fit_task", "credit_risk",
     lambda d: d["gate"].update(primary_metric="rmse"),
     ["gate.primary_metric: metric 'rmse' does not apply to task 'binary_classification'"]),
    ("check_metrics_fit_task", "credit_risk",
     lambda d: d["gate"].update(primary_metric="calibration_ratio"),
     ["gate.primary_metric: a primary metric needs a better direction"]),
    ("check_metrics_fit_task", "credit_risk",
     lambda d: d["gate"]["rules"].append({"kind": "threshold", "metric": "adverse_impact_ratio", "min": 0.8}),
     ["gate.rules.10.metric: metric 'adverse_impact_ratio' needs a column with role 'protected'"]),
    ("check_baselines_exist", "market_forecast",
     lambda d: d["gate"]["rules"].append({"kind": "baseline", "baseline": "majority", "metric": "rmse"}),
     ["gate.rules.5.baseline: 'majority' is not a baseline of this model (available: ['ewma', 'garch', 'gjr', "
      "'har', 'log_har', 'persistence'])"]),
    ("check_reference_groups", "credit_risk",
     lambda d: d.setdefault("fairness", {}).update(reference_groups={"Home": "owner"}),
     ["fairness.reference_groups.Home: not a column with role 'protected'"]),
    ("check_reference_groups", "mortgage_approval",
     lambda d: (d["fairness"].update(bands={"afam": [1]}, reference_groups={"afam": "no"}),
                d["columns"]["afam"].update(dtype="integer", allowed=None)),
     ["fairness.reference_groups.afam: 'no' is not a band of 'afam'; choose one of ['< 1', '>= 1']"]),
    ("check_fairness_bands", "credit_risk",
     lambda d: d["columns"]["Age"].update(role="protected"),
     ["fairness.bands.Age: protected column 'Age' is numeric: declare its bands (increasing cut points, e.g. Age: "
      "[18, 25, 40, 60]); one group per distinct value gives groups of a row or two"]),
    ("check_fairness_bands", "credit_risk",
     lambda d: d.setdefault("fairness", {}).update(bands={"Income": [1000, 2000]}),
     ["fairness.bands.Income: not a column with role 'protected'"]),
    ("check_time_column", "credit_risk",
     lambda d: d.update(time_column="Age", out_of_time={"start": "2020-01-01"}),
     ["time_column: 'Age' must be a column with role 'datetime'"]),
    ("check_time_column", "credit_risk",
     lambda d: d.update(out_of_time={"start": "2020-01-01"}, split={"method": "walk_forward"}),
     ["out_of_time.start: needs a time_column", "split: a walk_forward split needs a time_column"]),
    ("check_sql_has_order", "credit_risk",
     lambda d: d.update(source={"kind": "sql", "url": "sqlite://", "query": "select * from loans"}),
     ["source.query: add ORDER BY: without a time_column the rows are used in the query's order (out-of-time share, "
      "holdout), and a database returns rows in no fixed order without it, so the same data would give different "
      "models"]),
    ("check_split_fits_task", "market_forecast",
     lambda d: d.update(split={"method": "stratified_holdout"}),
     ["split: stratified_holdout stratifies on classes; a regression model needs method walk_forward (with a "
      "time_column)", "split: features built from a time series need a time-ordered split (method walk_forward): a "
      "random holdout would train on days after the ones it tests on"]),
    ("check_target_not_a_column", "credit_risk",
     lambda d: d["columns"].update(Status={"role": "categorical"}),
     ["target.column: 'Status' must not also be listed under columns"]),
    ("check_has_features", "credit_risk", _no_features,
     ["columns: no column has role 'numeric' or 'categorical'; a model needs features"]),
    ("check_feature_builder", "market_forecast",
     lambda d: d["columns"]["Volume"].update(role="numeric"),
     ["features_from: input column 'Volume' must be declared under columns with role 'input'"]),
    ("check_feature_builder", "market_forecast",
     lambda d: d["target"].update(column="rv_next_week"),
     ["features_from: target.column must be 'rv_next_5d', the label this builder derives"]),
    ("check_feature_builder", "market_forecast",
     lambda d: (d.pop("time_column"), d.pop("out_of_time"), d["split"].update(method="walk_forward")),
     ["features_from: a feature builder needs the spec's time_column"]),
    ("check_positive_label", "credit_risk", _drop_positive,
     ["target.positive: a classifier needs the positive (event) label"]),
    ("check_drift_settings", "credit_risk",
     lambda d: d.setdefault("drift", {}).update(columns={"rownames": {"method": "psi"}},
                                                performance_tolerance={"rmse": 0.1}),
     ["drift.columns.rownames: not a feature of this model",
      "drift.performance_tolerance.rmse: metric does not apply to task 'binary_classification'"]),
    ("check_reserved_columns", "credit_risk",
     lambda d: d["columns"].update(score={"role": "numeric"}), [_RESERVED]),
    ("check_unique_keys", "credit_risk",
     lambda d: d["table"].update(unique=["loan_id"]),
     ["table.unique: 'loan_id' is not a declared column"]),
    ("check_monotonic_rule", "loan_evaluation",
     lambda d: d["gate"]["rules"].append({"kind": "monotonic"}),
     ["gate.rules: a 'monotonic' rule needs at least one numeric column with 'monotone: increasing' or "
      "'monotone: decreasing'"]),
    ("check_scorecard", "market_forecast",
     lambda d: d.update(scorecard={"base_points": 600, "base_odds": 19, "pdo": 50}),
     ["scorecard: points restate a probability of default as good:bad odds; task 'regression' has none"]),
    ("check_scorecard", "credit_risk",
     lambda d: d["columns"].update(points={"role": "numeric"}),
     ["columns.points: 'points' is the column the scorecard section writes beside the score"]),
    ("check_reasons_task", "market_forecast",
     lambda d: d.update(reasons={"explain": "all"}),
     ["reasons: adverse-action reasons apply to binary_classification models, not to task 'regression'"]),
    ("check_var", "market_direction",
     lambda d: d.update(var={"level": 0.99}),
     ["var: a Value-at-Risk back-test needs a volatility forecast (task 'regression' with features_from.name "
      "'realised_volatility'); this spec has task 'direction' and features_from 'daily_direction'"]),
    ("check_backtest", "credit_risk",
     lambda d: d.update(backtest={"as_of": "Age"}),
     ["backtest.as_of: column 'Age' is not a datetime column (role 'numeric'); declare it with role: datetime"]),
    ("check_backtest", "credit_risk",
     lambda d: d.update(backtest={"as_of": "applied"}),
     ["backtest.as_of: 'applied' is not a declared column"]),
    ("check_rating_scale", "market_direction",
     lambda d: d.update(rating_scale={"grades": 7}),
     ["rating_scale: rating grades are bands of a probability of default; task 'direction' has none: remove the "
      "rating_scale section (binary_classification only)"]),
    ("check_mcs_rule", "market_forecast",
     lambda d: d["gate"]["rules"].extend([{"kind": "mcs"}, {"kind": "mcs", "size": 0.25}]),
     ["gate.rules.6: at most one 'mcs' rule per gate (rules [5, 6])"]),
    ("check_segments", "credit_risk",
     lambda d: d.update(segments=["Hom", "Amount", "rownames", {"column": "Home", "bands": [1]}]),
     ["segments.0: 'Hom' is not a declared column, did you mean 'Home'; a segment is a column with role 'categorical'",
      "segments.1: 'Amount' is a numeric feature: one segment per distinct value would give segments of a row or two; "
      "give its bands, e.g. segments: [{column: Amount, bands: [1000, 5000]}]",
      "segments.2: column 'rownames' has role 'id' (one segment per row); a segment is",
      "segments.3: 'Home' is not numeric; its values are its segments: list it by name without bands"]),
    ("check_segments", "mortgage_approval",
     lambda d: (d["columns"]["afam"].update(dtype="integer", allowed=None), d["fairness"].pop("reference_groups"),
                d.update(fairness={"bands": {"afam": [1]}}),
                d.update(segments=["afam", {"column": "afam", "bands": [1]}, "phist"])),
     ["segments.1: 'afam' is a protected column, banded by fairness.bands.afam; list it by name (segments: [afam])",
      "segments: 'afam' is listed 2 times; list each column once"]),
    ("check_segments", "market_direction",
     lambda d: d.update(segments=["Close", "Date"]),
     ["segments.0: column 'Close' has role 'input' (a feature builder's raw input, not kept)",
      "segments.1: column 'Date' has role 'datetime' (one segment per date)"]),
]


@pytest.mark.parametrize("check,base,mutate,expected", CHECK_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CHECK_CASES)])
def test_each_check_names_the_field_and_the_problem(check, base, mutate, expected):
    data = builtin_spec_dict(base)
    mutate(data)
    unchecked = SpecFields.model_validate(data)  # the fields alone, without the cross-field checks
    got = getattr(spec_checks, check)(unchecked)
    assert len(got) == len(expected)
    for message, want in zip(got, expected):
        assert message.startswith(want)
    message = _error(data)
    assert all(m in message for m in got)
    if check != "check_feature_builder":  # a builder without a time column also fails check_time_column
        assert message == f"test.yaml: invalid spec: {'; '.join(got)}"  # only this check fails


def test_every_check_has_a_case_and_passes_the_builtin_specs():
    assert {c.__name__ for c in CHECKS} == {case[0] for case in CHECK_CASES}
    for spec in list_specs(BUILTIN_SPECS):
        for check in CHECKS:
            assert check(spec) == [], (spec.name, check.__name__)


def test_the_messages_of_several_checks_are_joined_in_order():
    data = builtin_spec_dict("credit_risk")
    data["table"]["unique"] = ["loan_id"]
    data["target"].pop("positive")
    data["columns"]["score"] = {"role": "numeric"}
    data["time_column"] = "Age"
    assert _error(data) == (
        "test.yaml: invalid spec: time_column: 'Age' must be a column with role 'datetime'; "
        "target.positive: a classifier needs the positive (event) label; " + _RESERVED
        + "; table.unique: 'loan_id' is not a declared column")


# --------------------------------------------------------------------------- features_from


def test_builder_parameters_are_checked_with_their_field_path():
    data = builtin_spec_dict("market_forecast")
    data["features_from"]["params"]["horizon"] = 0
    assert _error(data) == ("test.yaml: invalid spec: field 'features_from.params.horizon': "
                            "Input should be greater than or equal to 1")
    data = builtin_spec_dict("market_forecast")
    data["features_from"]["params"]["colour"] = "red"
    assert _error(data) == ("test.yaml: invalid spec: field 'features_from.params.colour': "
                            "unknown key (not part of the spec schema)")
    data = builtin_spec_dict("market_direction")
    data["features_from"]["params"]["windows"] = [1]
    assert _error(data) == ("test.yaml: invalid spec: field 'features_from.params': "
                            "windows must list trailing windows of at least 2 days")


def test_a_broken_builder_is_reported_once():
    """Before, a bad builder parameter also gave "'persistence' is not a baseline of this model"."""
    data = builtin_spec_dict("market_forecast")
    data["features_from"]["name"] = "garch"
    assert _error(data) == ("test.yaml: invalid spec: field 'features_from': unknown builder 'garch'; "
                            "choose one of ['daily_direction', 'realised_volatility']")


@pytest.mark.parametrize("name", ["market_forecast", "market_direction"])
def test_features_from_keeps_its_yaml_shape(name):
    """The dump (stored with each version, and hashed) holds the parameters as the spec gave them."""
    data = builtin_spec_dict(name)
    spec = parse_spec(data)
    assert spec.model_dump(mode="json")["features_from"] == data["features_from"]
    assert spec.model_dump()["features_from"] == data["features_from"]
    assert parse_spec(spec.model_dump(mode="json")) == spec


def test_the_builder_is_built_once_and_rebuilt_for_a_changed_copy():
    spec = find_spec("market_forecast", BUILTIN_SPECS)
    assert spec.builder is spec.builder
    assert spec.builder.time_column == "Date"
    moved = spec.model_copy(update={"time_column": "Day"})
    assert moved.builder is not spec.builder and moved.builder.time_column == "Day"
    assert spec.model_copy().builder is not spec.builder
    assert isinstance(spec, ModelSpec) and spec == spec.model_copy()
    assert find_spec("credit_risk", BUILTIN_SPECS).builder is None


def test_features_and_spec_do_not_import_each_other():
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parents[2] / "models" / "features.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("models.spec")}


# --------------------------------------------------------------------------- cron and descriptions


def test_cronsim_itself_rejects_a_day_no_month_has():
    """Why there is no check of our own for "31 February": the library rejects it."""
    from datetime import datetime

    from cronsim import CronSim, CronSimError

    with pytest.raises(CronSimError):
        CronSim("0 3 31 2 *", datetime(2000, 1, 1))


@pytest.mark.parametrize("cron,why", [
    ("0 3 L * *", "day of month 'L' is outside 1-31"), ("0 3 * * 5L", "day of week '5L' is outside 0-7"),
    ("0 3 * * 1#2", "day of week '1#2' is outside 0-7"), ("0 3 LW * *", "day of month 'LW' is outside 1-31"),
    ("1,,2 * * * *", "minute '' is outside 0-59"), ("5-70 * * * *", "minute '70' is outside 0-59"),
    ("0 3 * jan-dex *", "month 'dex' is outside 1-12"), ("0 0 1 * * *", "not a five-field cron"),
    ("*/x * * * *", "minute step 'x' in '*/x * * * *' is not a positive number"),
])
def test_cron_dialect_is_what_prefect_schedules_accept(cron, why):
    """cronsim reads L, W and #, which Prefect's cron schedules do not all accept: refused here."""
    from models.spec import check_cron

    with pytest.raises(ValueError) as info:
        check_cron(cron)
    assert why in str(info.value)


def test_attribute_docstrings_are_the_field_descriptions():
    from models.features import RealisedVolatilityParams
    from models.spec import ColumnSpec, DriftSpec

    assert ColumnSpec.model_fields["max_null_share"].description == "Largest share of missing values accepted (0 = none allowed)."
    assert DriftSpec.model_fields["bins"].description.startswith("Quantile bins of a numeric feature")
    assert RealisedVolatilityParams.model_fields["trading_days"].description == "Annualisation factor: trading days per year."
    assert all(f.description for f in ModelSpec.model_fields.values())


@pytest.mark.parametrize(("section", "key", "typo"), [
    ("split", "method", "methd"), ("source", "kind", "knd"), ("features_from", "name", "nmae")])
def test_a_misspelt_union_tag_is_named_with_the_key_it_means(section, key, typo):
    data = builtin_spec_dict("market_forecast" if section == "features_from" else "credit_risk")
    data[section][typo] = data[section].pop(key)
    assert f"field '{section}': unknown key '{typo}', did you mean '{key}'" in _error(data)


def test_a_missing_union_tag_is_named():
    data = builtin_spec_dict("credit_risk")
    del data["split"]["method"]
    assert "field 'split': required field 'method' is missing" in _error(data)


def test_validator_messages_carry_no_pydantic_prefix():
    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "sql", "url": "sqlite://", "query": "DELETE FROM t"}
    message = _error(data)
    assert "field 'source.query': the SQL source is read-only" in message and "Value error" not in message


def test_scan_specs_keeps_the_valid_specs_and_names_the_broken_ones(tmp_path):
    write_spec(tmp_path, builtin_spec_dict("credit_risk"))
    broken = builtin_spec_dict("loan_evaluation")
    broken["split"]["methd"] = broken["split"].pop("method")
    write_spec(tmp_path, broken)
    valid, errors = scan_specs(tmp_path)
    assert [s.name for s in valid] == ["credit_risk"]
    assert list(errors) == ["loan_evaluation.yaml"]
    assert "unknown key 'methd', did you mean 'method'" in errors["loan_evaluation.yaml"]
    assert find_spec("credit_risk", tmp_path).name == "credit_risk"  # reads only its own file
    with pytest.raises(SpecError, match="loan_evaluation.yaml"):
        list_specs(tmp_path)


@pytest.mark.parametrize("field, value, words", [
    ("intended_use", None, "field 'intended_use': required field is missing"),
    ("intended_use", "  ", "field 'intended_use': is blank; say what the model is for"),
    ("limitations", None, "field 'limitations': required field is missing"),
    ("limitations", [], "field 'limitations': is empty; list at least one known limitation"),
    ("limitations", ["Trained on 2016 loans only.", " "], "field 'limitations': item(s) [1] are blank"),
])
def test_intended_use_and_limitations_are_required(field, value, words):
    data = builtin_spec_dict("credit_risk")
    if value is None:
        del data[field]
    else:
        data[field] = value
    message = _error(data)
    assert message.startswith("test.yaml: invalid spec: ") and words in message
