"""Volatility baselines fitted inside the walk-forward folds, QLIKE and the gate rules naming them
(issue 19 §1, §2): hand computations, arch's own forecasts, numpy's least squares, and the proof
that no fold's baseline sees its test period."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.features import DAILY_RETURN
from models.metrics import METRICS, qlike, qlike_loss
from models.spec import SpecError, parse_spec
from models.vol_baselines import ewma_variance, fit_garch, fold_baselines
from tasks.split import Fold, walk_forward
from tests.market_returns_data import returns_frame, returns_spec

A = 252
ALL = ["persistence", "ewma", "garch", "gjr", "har", "log_har"]


def _returns(n: int = 1500, seed: int = 3) -> np.ndarray:
    """Daily log returns with GARCH-like clustering (a fixed series: seeded)."""
    rng = np.random.default_rng(seed)
    r, s2 = np.zeros(n), 1e-4
    for t in range(n):
        r[t] = math.sqrt(s2) * rng.standard_t(6) / math.sqrt(1.5)
        s2 = 2e-6 + 0.08 * r[t] ** 2 + 0.9 * s2
    return r


def _target(r: np.ndarray, h: int = 5) -> np.ndarray:
    s = pd.Series(r**2).rolling(h).sum().shift(-h).to_numpy()
    return np.sqrt(A / h * s)


# --------------------------------------------------------------------------- QLIKE


def test_qlike_agrees_with_a_hand_computation_on_variances():
    y, f = np.array([0.20, 0.10, 0.05]), np.array([0.10, 0.10, 0.10])
    # y²/f² = 4, 1, 0.25: 4 - ln 4 - 1 = 1.6137056; 0; 0.25 - ln 0.25 - 1 = 0.6362944
    np.testing.assert_allclose(qlike_loss(y, f), [1.6137056389, 0.0, 0.6362943611], rtol=1e-9)
    assert qlike(y, f) == pytest.approx((1.6137056389 + 0.6362943611) / 3, rel=1e-9)
    info = METRICS["qlike"]
    assert info.row_comparable and info.per_row_loss and info.higher_is_better is False and info.volatility


def test_qlike_is_only_computed_for_volatility_specs():
    from models.metrics import metrics_for

    assert "qlike" not in metrics_for("regression") and "qlike" in metrics_for("regression", volatility=True)


# --------------------------------------------------------------------------- EWMA, GARCH, HAR


def test_the_ewma_recursion_by_hand():
    r = np.array([0.01, -0.02, 0.03])
    # v0 = .9e-4 + .1 * 1e-4 = 1e-4; v1 = .9 * 1e-4 + .1 * 4e-4 = 1.3e-4; v2 = .9 * 1.3e-4 + .1 * 9e-4 = 2.07e-4
    np.testing.assert_allclose(ewma_variance(r, 0.9, 1e-4), [1e-4, 1.3e-4, 2.07e-4], rtol=1e-12)
    # in a fold: started from the training rows' mean squared return, annualised as sqrt(A * v_t)
    r = _returns(400)
    fits = fold_baselines(r, _target(r), [Fold(np.arange(200), np.arange(205, 255))], ["ewma"], horizon=5,
                          trading_days=A, ewma_lambda=0.94)
    v, init = [], float(np.mean(r[:200] ** 2))
    for x in r[:255]:
        init = 0.94 * init + 0.06 * x**2
        v.append(init)
    np.testing.assert_allclose(fits.forecasts["ewma"], np.sqrt(A * np.array(v[205:255])), rtol=1e-10)
    assert fits.folds[0]["ewma"]["initial_variance"] == pytest.approx(float(np.mean(r[:200] ** 2)))


@pytest.mark.parametrize("asymmetric", [False, True], ids=["garch", "gjr"])
def test_the_garch_one_step_variance_forecast_equals_arch_own(asymmetric):
    from arch import arch_model

    r = _returns()
    forecast, record = fit_garch(r, 1000, slice(1005, 1100), horizon=1, trading_days=A, asymmetric=asymmetric)
    mine = (forecast * 100 / math.sqrt(A)) ** 2  # back to arch's daily variance of percent returns
    am = arch_model(100 * r[:1100], mean="Zero", vol="GARCH", p=1, o=int(asymmetric), q=1, rescale=False)
    res = am.fit(disp="off", last_obs=1000)
    theirs = res.forecast(horizon=1, start=1005, reindex=False).variance.to_numpy()[:, 0]
    np.testing.assert_allclose(mine, theirs, rtol=1e-8)
    # and the recursion by hand from the fitted parameters and arch's filtered variance of day t
    p = record["params"]
    sigma2 = am.fix(res.params.to_numpy()).conditional_volatility[1005:1100] ** 2
    e2 = (100 * r[1005:1100]) ** 2
    hand = p["omega"] + (p["alpha[1]"] + p.get("gamma[1]", 0.0) * (r[1005:1100] < 0)) * e2 + p["beta[1]"] * sigma2
    np.testing.assert_allclose(mine, hand, rtol=1e-6)
    assert record["rows"] == 1000 and record["converged"]


def test_the_h_day_garch_forecast_is_the_annualised_sum_of_arch_variance_path():
    from arch import arch_model

    r = _returns()
    forecast, _ = fit_garch(r, 1000, slice(1005, 1010), horizon=5, trading_days=A, dist="t")
    res = arch_model(100 * r[:1010], mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False).fit(
        disp="off", last_obs=1000)
    path = res.forecast(horizon=5, start=1005, reindex=False).variance.to_numpy()
    np.testing.assert_allclose(forecast, np.sqrt(A / 5 * path.sum(axis=1)) / 100, rtol=1e-8)


def test_har_coefficients_equal_numpy_lstsq_on_a_constructed_series():
    r = _returns(600)
    y = _target(r)
    rows = []
    for t in range(21, 400):  # training rows with 22 days of returns behind them
        d = math.sqrt(A * r[t] ** 2)
        w = math.sqrt(A / 5 * sum(r[t - i] ** 2 for i in range(5)))
        m = math.sqrt(A / 22 * sum(r[t - i] ** 2 for i in range(22)))
        rows.append([1.0, d, w, m])
    beta, *_ = np.linalg.lstsq(np.array(rows), y[21:400], rcond=None)
    fits = fold_baselines(r, y, [Fold(np.arange(400), np.arange(405, 500))], ["har", "log_har"], horizon=5,
                          trading_days=A)
    coef = fits.folds[0]["har"]
    np.testing.assert_allclose([coef["intercept"], coef["daily"], coef["weekly"], coef["monthly"]], beta, rtol=1e-9)
    assert coef["rows"] == 379
    x = [1.0, math.sqrt(A * r[450] ** 2), math.sqrt(A / 5 * np.sum(r[446:451] ** 2)),
         math.sqrt(A / 22 * np.sum(r[429:451] ** 2))]
    assert fits.forecasts["har"][450 - 405] == pytest.approx(float(np.dot(x, beta)), rel=1e-9)
    logs = np.log(np.maximum(np.array(rows)[:, 1:], 1e-3))
    lbeta, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(logs)), logs]), np.log(y[21:400]), rcond=None)
    lc = fits.folds[0]["log_har"]
    np.testing.assert_allclose([lc["intercept"], lc["daily"], lc["weekly"], lc["monthly"]], lbeta, rtol=1e-9)


# --------------------------------------------------------------------------- no look-ahead


def test_no_folds_baseline_sees_its_test_period():
    r = _returns(1600)
    y = _target(r)
    plan = walk_forward(len(r) - 5, n_folds=3, test_share=0.3, gap=5)
    names = ["ewma", "garch", "gjr", "har", "log_har"]
    before = fold_baselines(r[:-5], y[:-5], plan.folds, names, horizon=5, trading_days=A)
    k = 1
    test = plan.folds[k].test
    changed_r = r.copy()
    changed_r[test[0]:] *= 3.0  # fold 1's test period and everything after it: a volatility burst
    changed_y = _target(changed_r)
    after = fold_baselines(changed_r[:-5], changed_y[:-5], plan.folds, names, horizon=5, trading_days=A)
    assert not after.errors and not before.errors
    for j in (0, 1):  # folds whose training rows end before the change: the same fitted parameters
        assert after.folds[j] == before.folds[j], f"fold {j}'s baselines saw returns of fold 1's test period"
    assert after.folds[2]["garch"] != before.folds[2]["garch"]  # fold 2 trains on the changed rows: it refits
    # fold 0's forecasts are unchanged; fold 1's change (its forecasts filter returns up to each test day)
    n0 = len(plan.folds[0].test)
    for name in names:
        np.testing.assert_array_equal(after.forecasts[name][:n0], before.forecasts[name][:n0])


# --------------------------------------------------------------------------- spec and gate


def _vol_spec(**change) -> dict:
    data = returns_spec()
    data["features_from"]["params"]["baselines"] = ALL
    data["gate"]["rules"].append({"kind": "baseline", "baseline": "garch", "metric": "qlike", "test": "superior",
                                  "method": "diebold_mariano"})
    for key, value in change.items():
        data[key] = value
    return data


def test_a_gate_rule_requiring_beating_garch_on_qlike_is_accepted_and_judged():
    from tasks.gate import GateInputs, evaluate_gate

    spec = parse_spec(_vol_spec(), origin="t.yaml")
    assert spec.builder.declared_baselines == tuple(ALL)
    rng = np.random.default_rng(0)
    y = np.exp(rng.normal(np.log(0.15), 0.3, 300))
    garch = y * np.exp(rng.normal(0.0, 0.5, 300))  # a noisy forecast
    good = y * np.exp(rng.normal(0.0, 0.05, 300))  # close to the realised volatility
    worse = y * np.exp(rng.normal(0.0, 1.0, 300))  # noisier than garch
    verdicts = {}
    for challenger, expect in ((good, True), (worse, False)):
        result = evaluate_gate(spec, {"rmse": 0.01}, GateInputs(y=y, scores=challenger, baselines={"garch": garch},
                                                                horizon=5, time_ordered=True))
        rule = next(v for v in result.verdicts if v.rule == "baseline")
        assert rule.passed is expect and rule.metric == "qlike" and rule.other == "garch baseline"
        assert rule.comparison.method == "diebold_mariano"
        diff = float(np.mean(qlike_loss(y, garch) - qlike_loss(y, challenger)))
        assert rule.comparison.diff == pytest.approx(diff)
        verdicts[expect] = rule
    assert verdicts[True].comparison.ci_low > 0 and verdicts[False].comparison.ci_high < 0


def test_a_baseline_rule_naming_an_undeclared_baseline_or_qlike_without_a_volatility_label_is_refused():
    data = _vol_spec()
    data["features_from"]["params"]["baselines"] = ["persistence", "ewma"]
    with pytest.raises(SpecError, match=r"'garch' is not a baseline of this model .*features_from.params.baselines"):
        parse_spec(data, origin="t.yaml")
    data["features_from"]["params"]["baselines"] = ["ewma"]
    with pytest.raises(SpecError, match="baselines must list persistence"):
        parse_spec(data, origin="t.yaml")
    from tests.helpers import builtin_spec_dict

    credit = builtin_spec_dict("market_direction")
    credit["gate"]["rules"].append({"kind": "threshold", "metric": "qlike", "max": 1.0})
    with pytest.raises(SpecError, match="qlike"):
        parse_spec(credit, origin="t.yaml")


def test_an_existing_spec_keeps_persistence_only_and_its_table():
    spec = parse_spec(returns_spec(), origin="t.yaml")
    assert spec.builder.declared_baselines == ("persistence",)
    table = spec.builder.build(returns_frame(200).rename(columns={}))
    assert DAILY_RETURN not in table.columns
    assert "baselines" not in spec.model_dump(mode="json")["features_from"]["params"]  # spec hash unchanged


def test_integer_index_returns_only_series_gets_every_baseline_and_the_forecast_comparison():
    from tasks.evaluate import evaluate_fitted
    from tasks.load import modelling_table, parse_declared_types
    from tasks.split import plan_split
    from tasks.train import fit_candidate

    frame = returns_frame(700).drop(columns=["Date"]).assign(day=np.arange(1, 701))
    data = _vol_spec()
    data.pop("time_column")
    data["time_index"] = {"column": "day", "kind": "integer"}
    data["columns"] = {"day": {"role": "datetime", "dtype": "integer"}} | {
        k: v for k, v in data["columns"].items() if k != "Date"}
    data["table"] = {"min_rows": 200, "unique": ["day"]}
    spec = parse_spec(data, origin="t.yaml")
    table = modelling_table(parse_declared_types(frame, spec), spec)
    plan = plan_split.fn(table, spec)
    evaluation = evaluate_fitted.fn(spec, table, plan, [fit_candidate.fn(spec, spec.candidates[0], table, plan)])
    rec = evaluation.forecast
    assert [m["name"] for m in rec["models"]] == ["linear_har", *ALL] and not rec["fits"]["errors"]
    y = evaluation.y
    for m in rec["models"]:
        f = evaluation.scores if m["kind"] == "candidate" else evaluation.baselines[m["name"]]
        assert len(f) == len(y) and np.isfinite(f).all()
        assert m["pooled"]["qlike"] == pytest.approx(qlike(y, f)) and len(m["folds"]) == 3
    assert evaluation.metrics["qlike"] == pytest.approx(qlike(y, evaluation.scores))
    dm = [r for r in rec["diebold_mariano"] if r["baseline"] == "garch" and r["metric"] == "qlike"]
    assert len(dm) == 1 and dm[0]["ci_low"] < dm[0]["diff"] < dm[0]["ci_high"]


def test_a_garch_fit_that_does_not_converge_is_left_out_with_the_fold_and_cause():
    # returns of 1e-7: arch's optimiser stops without converging; the fit must not be judged
    from tasks.split import walk_forward

    rng = np.random.default_rng(1)
    r = rng.standard_normal(600) * 1e-7
    y = np.r_[np.sqrt(252 / 5 * np.convolve(r ** 2, np.ones(5), "full")[4:604])[1:], np.nan]
    plan = walk_forward(595, 3, 0.3, 5)
    fits = fold_baselines(r, y, plan.folds, ["ewma", "garch", "gjr"], horizon=5, trading_days=252, dist="t")
    assert "garch" not in fits.forecasts and "gjr" not in fits.forecasts and "ewma" in fits.forecasts
    assert fits.errors["garch"].startswith("fold 0: the optimiser did not converge on ")
    assert "arch convergence flag" in fits.errors["gjr"]


def test_a_gate_rule_naming_a_baseline_that_could_not_be_fitted_gives_the_cause():
    from models.spec import BaselineRule
    from tasks.gate import GateInputs, _baseline

    rule = BaselineRule(kind="baseline", baseline="garch", metric="qlike", test="superior", method="diebold_mariano")
    inputs = GateInputs(y=np.ones(10), scores=np.ones(10), baselines={"persistence": np.ones(10)},
                        baseline_errors={"garch": "fold 2: the optimiser did not converge on 300 training rows"})
    verdict = _baseline(rule, {"qlike": 0.4}, inputs)
    assert not verdict.passed
    assert verdict.sentence == ("the garch baseline is not available for this model: it could not be fitted "
                                "(fold 2: the optimiser did not converge on 300 training rows)")
