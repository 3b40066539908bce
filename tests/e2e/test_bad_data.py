"""Bad data is caught, named, and never promotes a model: one small input file per case.

The files in tests/data/bad_data/ are a clean synthetic loan book (applications.csv) and copies
with one defect each (made by make_cases.py). Every failing case runs the real training flow
through Prefect and checks the message and that nothing reached the registry.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from models.registry import ModelRegistry

pytestmark = pytest.mark.usefixtures("prefect_api")

CASES = Path(__file__).resolve().parents[1] / "data" / "bad_data"


def _spec(env, csv: str, **columns) -> None:
    data = yaml.safe_load((CASES / "applications.yaml").read_text())
    shutil.copy(CASES / csv, env["specs"] / csv)  # a file source reads below the spec's folder (FINML_DATA_ROOTS)
    data["source"]["path"] = csv
    for name, changes in columns.items():
        data["columns"][name] = {**data["columns"][name], **changes}
    (env["specs"] / "applications.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def _train():
    from flows.training import train_model

    return train_model("applications")


def _nothing_written(env) -> None:
    reg = ModelRegistry(env["registry"], "applications")
    assert reg.list_versions() == [] and reg.champion() is None


def test_the_clean_book_trains_and_is_promoted(finml_env):
    _spec(finml_env, "applications.csv")
    summary = _train()
    assert summary["promoted"] and summary["version"] == 1


def test_numbers_written_as_text_are_rejected_without_a_declared_format(finml_env):
    from tasks.load import DataPreparationError

    _spec(finml_env, "numbers_as_text.csv")
    with pytest.raises(DataPreparationError, match=r"column 'income': \d+ value\(s\) are text, not numbers, e.g. \['37,900'"):
        _train()
    _nothing_written(finml_env)


def test_declared_formats_are_parsed(finml_env):
    _spec(finml_env, "formatted_numbers.csv", amount={"format": "currency"}, rate={"format": "percent"},
          balance={"format": "accounting"})
    summary = _train()
    assert summary["promoted"]
    reference = pd.read_parquet(ModelRegistry(finml_env["registry"], "applications").version_dir(1) / "reference.parquet")
    clean = pd.read_csv(CASES / "applications.csv").set_index("application_id")
    parsed = reference.set_index("application_id")
    for col in ("amount", "rate", "balance"):  # "$23,700" -> 23700, "6.23%" -> 6.23, "(632)" -> -632
        pd.testing.assert_series_equal(parsed[col], clean.loc[parsed.index, col], check_names=False)


def test_a_value_not_in_the_declared_format_is_rejected(finml_env):
    from tasks.load import DataPreparationError

    _spec(finml_env, "wrong_number_format.csv", amount={"format": "currency"}, rate={"format": "percent"},
          balance={"format": "accounting"})
    # "n/a" is one of the CSV reader's missing-value markers: it counts against max_null_share, not as a number
    with pytest.raises(DataPreparationError, match=r"column 'amount': 2 value\(s\) are not in the declared format 'currency'") as info:
        _train()
    assert set(info.value.examples) == {"12,400", "EUR 3,000"}
    _nothing_written(finml_env)


def test_dates_in_mixed_formats_are_rejected(finml_env):
    from tasks.load import DataPreparationError

    _spec(finml_env, "mixed_dates.csv")
    with pytest.raises(DataPreparationError, match=r"column 'opened': 3 value\(s\) do not match the date format '%Y-%m-%d'"):
        _train()
    _nothing_written(finml_env)


def test_an_empty_table_is_rejected(finml_env):
    from tasks.load import DataSourceError

    _spec(finml_env, "empty.csv")
    with pytest.raises(DataSourceError, match="applications: the source has no rows"):
        _train()
    _nothing_written(finml_env)


def test_a_single_class_target_is_rejected(finml_env):
    from tasks.validate import ModellingDataError

    _spec(finml_env, "single_class.csv")
    with pytest.raises(ModellingDataError, match="target 'status' has a single class"):
        _train()
    _nothing_written(finml_env)


def test_an_entirely_missing_feature_is_rejected(finml_env):
    from tasks.validate import DataValidationError

    _spec(finml_env, "all_missing_feature.csv")
    with pytest.raises(DataValidationError, match=r"column 'income' \(missing share at most 0.05\): 300 unexpected"):
        _train()
    _spec(finml_env, "all_missing_feature.csv", income={"max_null_share": 1.0})  # even when nulls are allowed
    from tasks.validate import ModellingDataError

    with pytest.raises(ModellingDataError, match="feature 'income' is entirely missing"):
        _train()
    _nothing_written(finml_env)


def test_a_constant_feature_is_reported_not_silently_dropped(finml_env):
    from tasks.validate import ModellingDataError

    _spec(finml_env, "constant_feature.csv")
    with pytest.raises(ModellingDataError, match=r"feature 'grade' is constant \(B\)"):
        _train()
    _nothing_written(finml_env)


def test_an_event_rate_far_from_the_expected_range_is_rejected(finml_env):
    from tasks.validate import ModellingDataError

    _spec(finml_env, "event_rate_out_of_range.csv")
    with pytest.raises(ModellingDataError, match=r"event rate 0\.7\d+ is outside the expected range \[0.05, 0.45\]"):
        _train()
    _nothing_written(finml_env)


def test_declared_sentinels_are_treated_as_missing(finml_env):
    from tasks.validate import DataValidationError

    _spec(finml_env, "sentinels.csv", income={"max": 250000})  # 999999 is out of range unless declared
    with pytest.raises(DataValidationError, match=r"column 'income' \(values within \[0.0, 250000.0\]\): 4 unexpected.*999999"):
        _train()
    _nothing_written(finml_env)
    _spec(finml_env, "sentinels.csv", income={"max": 250000, "sentinels": [999999]})
    summary = _train()
    assert summary["promoted"]
    reference = pd.read_parquet(ModelRegistry(finml_env["registry"], "applications").version_dir(1) / "reference.parquet")
    assert reference["income"].max() < 250000  # the code never reached the model as an income


def test_scoring_rejects_the_same_bad_files(finml_env, tmp_path):
    from flows.monitoring import score_batch
    from tasks.load import DataPreparationError

    _spec(finml_env, "applications.csv")
    _train()
    for csv, column in (("numbers_as_text.csv", "income"), ("mixed_dates.csv", "opened")):
        out = tmp_path / f"{csv}.parquet"
        with pytest.raises(DataPreparationError, match=f"column '{column}'"):
            score_batch("applications", batch=str(CASES / csv), output=str(out))
        assert not out.exists()


def test_on_invalid_missing_trains_and_scores_with_the_invalid_values_counted(finml_env, tmp_path):
    """invalid_values.csv: rates 55, -3 and 99 outside [0, 40] (applications 11, 51, 121), the text
    "unknown" as a rate (201), the grade "Z" (8, 81). By default they stop the run; with
    ``on_invalid: missing`` they become missing values, the run trains, and scoring the same file works."""
    import json

    from flows.monitoring import score_batch
    from tasks.load import DataPreparationError

    _spec(finml_env, "invalid_values.csv")
    text = r"column 'rate': 1 value\(s\) are text, not numbers, e.g. \['unknown'\]"
    with pytest.raises(DataPreparationError, match=text):
        _train()
    _nothing_written(finml_env)
    missing = {"on_invalid": "missing", "max_null_share": 0.05}
    _spec(finml_env, "invalid_values.csv", rate=missing, grade=missing)
    summary = _train()
    assert summary["promoted"] and summary["version"] == 1
    vdir = ModelRegistry(finml_env["registry"], "applications").version_dir(1)
    report = (vdir / "reports" / "validation.md").read_text()
    assert ("| warning | ExpectColumnValuesToBeBetween (values within [0.0, 40.0]; invalid values made missing "
            "(on_invalid: missing)) | rate | 3 | 55.0, -3.0, 99.0; rows with application_id 11, 51, 121 |") in report
    assert "| grade | 2 | Z; rows with application_id 8, 81 |" in report
    assert json.loads((vdir / "metadata.json").read_text())["validation"]["warnings"] == 3
    reference = pd.read_parquet(vdir / "reference.parquet").set_index("application_id")
    assert reference["rate"].max() <= 40 and reference["grade"].dropna().isin(list("ABCD")).all()
    out = tmp_path / "scores.parquet"
    result = score_batch("applications", batch=str(CASES / "invalid_values.csv"), output=str(out))
    scores = pd.read_parquet(out)
    assert result["rows"] == 300 and len(scores) == 300 and scores["score"].between(0, 1).all()
    from flows.monitoring import monitor_model

    record = monitor_model("applications", batch=str(CASES / "invalid_values.csv"))  # the serving path of monitoring
    assert record.batch.rows == 300 and record.verdict == "stable"  # the training data itself: nothing drifted
