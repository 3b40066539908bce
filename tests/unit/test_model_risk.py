"""Credit metrics (calibration, rank ordering), fairness, leakage guards and the direction builder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.features import LABEL_END, DirectionBuilder, DirectionParams
from models.metrics import decile_table, directional_accuracy, expected_calibration_error, max_rank_reversal
from models.spec import find_spec, parse_spec
from tasks.fairness import fairness_report
from tasks.leakage import LeakageError, check_point_in_time, check_single_feature_leakage, duplicate_rows
from tasks.load import load_source, modelling_table, parse_declared_types, split_out_of_time
from tasks.split import plan_split, walk_forward
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict


def test_deciles_ece_and_rank_reversal_by_hand():
    # 20 rows, 10 bins of 2 (least risky first); event rates 0,0,.5,0,.5,.5,1,.5,1,1
    p = np.linspace(0.05, 0.95, 20)
    y = np.array([0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1], dtype=float)
    table = decile_table(y, p)
    assert [r["rows"] for r in table] == [2] * 10
    assert [r["event_rate"] for r in table] == [0, 0, 0.5, 0, 0.5, 0.5, 1, 0.5, 1, 1]
    # reversals: 0.5 -> 0 (bin 3 to 4) and 1 -> 0.5 (bin 7 to 8): the largest fall is 0.5
    assert max_rank_reversal(table) == 0.5
    expected = sum(0.1 * abs(r["mean_predicted"] - r["event_rate"]) for r in table)
    assert expected_calibration_error(y, p) == pytest.approx(expected)
    assert max_rank_reversal(decile_table(np.sort(y), p)) == 0.0  # monotone


def test_directional_accuracy():
    assert directional_accuracy(np.array([1, 0, 1, 0]), np.array([0.6, 0.4, 0.4, 0.5])) == 0.5


def test_fairness_report_by_hand():
    spec = parse_spec(builtin_spec_dict("mortgage_approval"))  # reference group afam = "no"
    y = np.array([0, 0, 0, 1, 0, 0, 1, 1, 0, 0], dtype=float)
    p = np.array([0.1, 0.2, 0.3, 0.9, 0.1, 0.6, 0.7, 0.8, 0.2, 0.4])
    afam = pd.DataFrame({"afam": ["no"] * 5 + ["yes"] * 5})
    # groups of 5 rows: judged here only because min_group_rows is lowered (default 30)
    spec = spec.model_copy(update={"fairness": spec.fairness.model_copy(update={"cutoff": 0.5, "min_group_rows": 1})})
    report = fairness_report(spec, y, p, afam)
    groups = {g["group"]: g for g in report["attributes"]["afam"]["groups"]}
    assert groups["no"]["approval_rate"] == 0.8 and groups["yes"]["approval_rate"] == 0.4  # scores below 0.5
    assert groups["yes"]["adverse_impact_ratio"] == pytest.approx(0.5) and groups["no"]["reference"]
    assert groups["no"]["base_rate"] == 0.2 and groups["yes"]["base_rate"] == 0.4
    assert groups["no"]["roc_auc"] == 1.0
    assert report["adverse_impact_ratio"] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def credit():
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    table = modelling_table(split_out_of_time(load_source(spec), spec)[0], spec)
    return spec, table, plan_split.fn(table, spec)


def test_a_copy_of_the_target_is_flagged_and_named(credit):
    spec, table, plan = credit
    screen = check_single_feature_leakage(spec, table, plan.folds[0].train)
    assert max(s["value"] for s in screen) < 0.75  # the real features are honest
    data = builtin_spec_dict("credit_risk")
    data["columns"]["status_code"] = {"role": "categorical"}
    leaky_spec = parse_spec(data)
    leaky = table.assign(status_code=np.where(table["Status"] == 1, "D", "C"))
    with pytest.raises(LeakageError, match=r"'status_code' \(roc_auc 1\.0000 > 0\.95\)") as info:
        check_single_feature_leakage(leaky_spec, leaky, plan.folds[0].train)
    assert info.value.columns == ["status_code"]


def test_a_high_cardinality_noise_column_is_not_taken_for_leakage(credit):
    """In-sample category event rates gave a pure-noise 1,000-level column an AUC of about 0.87."""
    from tasks.leakage import out_of_fold_event_rate

    spec, table, plan = credit
    data = builtin_spec_dict("credit_risk")
    data["columns"]["branch_code"] = {"role": "categorical"}
    noisy_spec = parse_spec(data)
    rng = np.random.default_rng(0)
    noisy = table.assign(branch_code=rng.integers(0, 1_000, len(table)).astype(str))
    screen = {s["column"]: s for s in check_single_feature_leakage(noisy_spec, noisy, plan.folds[0].train)}
    assert screen["branch_code"]["value"] < 0.6 and not screen["branch_code"]["flagged"]
    # the out-of-fold rate by hand on a small example: folds of rows {0, 2} and {1, 3}
    values = pd.Series(["a", "a", "a", "b"])
    y = np.array([1.0, 0.0, 1.0, 1.0])
    rates = out_of_fold_event_rate(values, y, folds=2, seed=0)
    fold = np.random.default_rng(0).permutation(4) % 2
    for i in range(4):
        others = (fold != fold[i])
        same = others & (values == values[i]).to_numpy()
        expected = y[same].mean() if same.any() else y[others].mean()
        assert rates[i] == pytest.approx(expected)


def test_point_in_time_check_passes_the_builder_and_catches_a_look_ahead(monkeypatch):
    spec = find_spec("market_forecast", BUILTIN_SPECS)
    raw = parse_declared_types(load_source(spec), spec)
    dev = split_out_of_time(raw, spec)[0].tail(3000)
    table = modelling_table(dev, spec)
    assert check_point_in_time(spec, dev, table)["checked"]
    # a builder whose "rv_22d" peeks one day ahead
    builder_cls = type(spec.builder)
    original = builder_cls.build

    def peeking(self, raw_rows, require_target=True):
        out = original(self, raw_rows, require_target=False)
        out["rv_22d"] = out["rv_22d"].shift(-1)
        return out[out[self.target_name].notna()] if require_target else out

    monkeypatch.setattr(builder_cls, "build", peeking)
    with pytest.raises(LeakageError, match="'rv_22d'"):
        check_point_in_time(spec, dev, modelling_table(dev, spec))


def test_duplicates_between_training_and_holdout_are_counted(credit):
    spec, table, plan = credit
    assert duplicate_rows(spec, table, plan)["duplicated_in_training"] == 0
    doubled = pd.concat([table, table.iloc[plan.folds[0].train[:7]]], ignore_index=True)
    n = len(table)
    from tasks.split import Fold, SplitPlan

    fake = SplitPlan("stratified_holdout", [Fold(plan.folds[0].train, np.arange(n, n + 7))],
                     final_train=plan.folds[0].train, refit_final=False)
    assert duplicate_rows(spec, doubled, fake)["duplicated_in_training"] == 7


def test_direction_builder_features_labels_and_baselines():
    raw = pd.DataFrame({"Date": pd.bdate_range("2020-01-01", periods=40),
                        "Close": 100 + np.cumsum(np.tile([1.0, -0.5, 2.0, -1.0], 10)),
                        "Volume": np.full(40, 1000.0)})
    b = DirectionBuilder(DirectionParams(price_column="Close", volume_column="Volume", return_lags=2, windows=[5]), "Date")
    table = b.build(raw)
    r = np.log(raw["Close"]).diff()
    t = int(raw.index[raw["Date"] == table["Date"].iloc[0]][0])
    assert table["return_lag0"].iloc[0] == pytest.approx(r[t]) and table["return_lag1"].iloc[0] == pytest.approx(r[t - 1])
    assert table["up_next_1d"].iloc[0] == int(r[t + 1] > 0)
    assert table[LABEL_END].iloc[0] == raw["Date"].iloc[t + 1]
    plan = walk_forward(len(table), n_folds=2, test_share=0.4, gap=1, min_train_rows=5)
    base = b.baseline_scores(table, plan)
    y = table["up_next_1d"].to_numpy()
    assert np.allclose(base["majority"][: len(plan.folds[0].test)], y[plan.folds[0].train].mean())
    assert np.array_equal(base["persistence"], (table["return_lag0"].to_numpy()[plan.holdout] > 0).astype(float))
