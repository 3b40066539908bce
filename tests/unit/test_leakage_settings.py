"""A leakage stop names the spec setting that controls it (issue 14 §2): a legitimate feature that
scored 0.9499 against the 0.95 limit left its author looking for the knob."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import yaml

from models.errors import DataError, FinmlError, LeakageError
from models.spec import parse_spec
from tasks.leakage import (
    check_id_like_features,
    check_missingness_leakage,
    check_point_in_time,
    check_single_feature_leakage,
    model_lift_check,
)
from tests.helpers import ROOT

CASES = ROOT / "tests" / "data" / "bad_data"


def _applications(**changes) -> dict:
    data = yaml.safe_load((CASES / "applications.yaml").read_text())
    data.update(changes)
    return data


def _table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    bad = rng.random(n) < 0.3
    return pd.DataFrame({
        "application_id": np.arange(1, n + 1), "opened": pd.date_range("2021-01-04", periods=n, freq="D"),
        "income": rng.normal(50_000, 10_000, n), "amount": rng.normal(10_000, 3_000, n),
        "rate": rng.uniform(2, 20, n), "balance": rng.normal(0, 3_000, n),
        "grade": rng.choice(list("ABCD"), n), "status": bad.astype(int),
    })


def test_the_single_feature_stop_of_a_classifier_names_max_single_feature_auc():
    spec = parse_spec(_applications())
    table = _table()
    table["rate"] = table["status"] * 10 + np.random.default_rng(1).uniform(0, 1, len(table))  # a copy of the target
    with pytest.raises(LeakageError) as info:
        check_single_feature_leakage(spec, table, np.arange(len(table)))
    err = info.value
    assert err.setting == "leakage.max_single_feature_auc" and err.columns == ["rate"]
    assert "'rate' (roc_auc 1.0000 > 0.95)" in str(err)
    assert str(err).endswith("(limit 0.95: leakage.max_single_feature_auc in the spec; "
                             "raise it only with a documented reason)")
    assert isinstance(err, DataError) and isinstance(err, FinmlError) and isinstance(err, ValueError)


def test_a_raised_limit_is_the_one_quoted():
    spec = parse_spec(_applications(leakage={"max_single_feature_auc": 0.97}))
    table = _table()
    table["rate"] = table["status"] * 10.0
    with pytest.raises(LeakageError, match=r"\(limit 0\.97: leakage\.max_single_feature_auc in the spec"):
        check_single_feature_leakage(spec, table, np.arange(len(table)))


def test_the_single_feature_stop_of_a_regression_names_max_abs_correlation():
    data = _applications(task="regression", target={"column": "loss"},
                         gate={"primary_metric": "rmse", "rules": [{"kind": "threshold", "metric": "rmse", "max": 1e9}]},
                         candidates=[{"name": "linear", "estimator": "linear_regression"}], time_column="opened",
                         split={"method": "walk_forward", "n_folds": 2, "test_share": 0.3})
    spec = parse_spec(data)
    table = _table().drop(columns="status")
    table["loss"] = table["amount"] * 0.1  # the amount is the loss over ten: Spearman 1
    with pytest.raises(LeakageError) as info:
        check_single_feature_leakage(spec, table, np.arange(len(table)))
    assert info.value.setting == "leakage.max_abs_correlation" and info.value.columns == ["amount"]
    assert "'amount' (abs_spearman 1.0000 > 0.98)" in str(info.value)
    assert "(limit 0.98: leakage.max_abs_correlation in the spec; raise it only with a documented reason)" \
        in str(info.value)


def test_the_missingness_stop_names_max_missingness_auc():
    spec = parse_spec(_applications())
    table = _table()
    table.loc[table["status"] == 0, "balance"] = np.nan  # a balance recorded only for defaults
    with pytest.raises(LeakageError) as info:
        check_missingness_leakage(spec, table, np.arange(len(table)))
    assert info.value.setting == "leakage.max_missingness_auc" and info.value.columns == ["balance"]
    assert "'balance' (ROC AUC of 'is missing' 1.0000 > 0.75" in str(info.value)
    assert "(limit 0.75: leakage.max_missingness_auc in the spec; raise it only with a documented reason" \
        in str(info.value)


def test_an_id_like_feature_names_the_column_role_and_no_setting():
    spec = parse_spec(_applications())
    table = _table()
    table["income"] = np.arange(len(table), dtype=float) * 3 + 1000
    with pytest.raises(LeakageError) as info:
        check_id_like_features(spec, table)
    assert info.value.setting is None and info.value.columns == ["income"]
    assert "columns.income.role" in str(info.value)


def test_a_look_ahead_names_point_in_time_check(monkeypatch):
    from models.spec import find_spec
    from tasks.load import (
        load_source,
        modelling_table,
        parse_declared_types,
        split_out_of_time,
    )
    from tests.helpers import BUILTIN_SPECS

    spec = find_spec("market_forecast", BUILTIN_SPECS)
    dev = split_out_of_time(parse_declared_types(load_source(spec), spec), spec)[0].tail(1500)
    builder_cls = type(spec.builder)
    original = builder_cls.build

    def peeking(self, raw_rows, require_target=True):
        out = original(self, raw_rows, require_target=False)
        out["rv_5d"] = out["rv_5d"].shift(-1)
        return out[out[self.target_name].notna()] if require_target else out

    monkeypatch.setattr(builder_cls, "build", peeking)
    with pytest.raises(LeakageError) as info:
        check_point_in_time(spec, dev, modelling_table(dev, spec))
    assert info.value.setting == "leakage.point_in_time_check" and info.value.columns == ["rv_5d"]
    assert "leakage.point_in_time_check in the spec" in str(info.value)


def test_the_lift_warning_names_max_auc_lift():
    spec = parse_spec(_applications())
    screen = [{"column": "rate", "statistic": "roc_auc", "value": 0.70}]
    warning = model_lift_check(spec, screen, model_auc=0.94, linear_auc=0.80)["warning"]
    assert "more than 0.08 (leakage.max_auc_lift)" in warning


def test_a_leakage_error_survives_pickling_with_its_columns_and_setting():
    """Prefect keeps a failed run's exception; the old two-argument constructor could not be unpickled."""
    err = LeakageError("m: probable target leakage", ["fee"], "leakage.max_single_feature_auc")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is LeakageError and str(back) == str(err)
    assert back.columns == ["fee"] and back.setting == "leakage.max_single_feature_auc"


def test_tasks_leakage_still_exports_the_error():
    import tasks.leakage

    assert tasks.leakage.LeakageError is LeakageError
