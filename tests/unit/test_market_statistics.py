"""The market statistics against hand computations: Kupiec, Christoffersen, the Basel traffic light,
Pesaran-Timmermann, the VaR quantile and the model confidence set (issue 19, §2-§3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from models.market_statistics import (
    christoffersen,
    kupiec_pof,
    model_confidence_set,
    pesaran_timmermann,
    traffic_light,
    var_exceptions,
    var_quantile,
)
from models.statistics import StatisticsError


def _seq(n: int, ones: list[int]) -> np.ndarray:
    e = np.zeros(n, dtype=int)
    e[ones] = 1
    return e


def test_kupiec_5_exceptions_in_250_days_at_99_percent_is_the_closed_form_lr():
    # -2 ln[(0.99)^245 (0.01)^5] + 2 ln[(0.98)^245 (0.02)^5] = 50.97637 - 49.01956 = 1.95681
    hand = (-2 * (245 * math.log(0.99) + 5 * math.log(0.01)) + 2 * (245 * math.log(0.98) + 5 * math.log(0.02)))
    out = kupiec_pof(_seq(250, [10, 50, 90, 130, 170]), 0.99)
    assert out["exceptions"] == 5 and out["days"] == 250 and out["observed_rate"] == pytest.approx(0.02)
    assert out["lr"] == pytest.approx(hand, rel=1e-12) and out["lr"] == pytest.approx(1.95681, abs=1e-5)
    assert out["p_value"] == pytest.approx(stats.chi2.sf(hand, 1), rel=1e-12)
    assert out["p_value"] == pytest.approx(0.1619, abs=1e-4)


def test_kupiec_without_exceptions_uses_0_ln_0_equal_0():
    out = kupiec_pof(np.zeros(250, dtype=int), 0.99)
    assert out["lr"] == pytest.approx(-2 * 250 * math.log(0.99), rel=1e-12)  # 5.0252: too few exceptions too
    assert out["p_value"] == pytest.approx(stats.chi2.sf(-2 * 250 * math.log(0.99), 1))


def test_christoffersen_on_a_cluster_of_three_exceptions_is_the_closed_form_lr():
    e = np.array([0, 0, 0, 0, 1, 1, 1, 0, 0, 0])
    out = christoffersen(e, 0.99)
    assert (out["n00"], out["n01"], out["n10"], out["n11"]) == (5, 1, 1, 2)
    assert out["pi01"] == pytest.approx(1 / 6) and out["pi11"] == pytest.approx(2 / 3)
    pi = 3 / 9
    restricted = 6 * math.log(1 - pi) + 3 * math.log(pi)
    free = 5 * math.log(5 / 6) + math.log(1 / 6) + math.log(1 / 3) + 2 * math.log(2 / 3)
    lr_ind = -2 * restricted + 2 * free
    assert out["lr_ind"] == pytest.approx(lr_ind, rel=1e-12) and out["lr_ind"] == pytest.approx(2.231436, abs=1e-6)
    assert out["p_value_ind"] == pytest.approx(stats.chi2.sf(lr_ind, 1), rel=1e-12)
    lr_pof = -2 * (7 * math.log(0.99) + 3 * math.log(0.01)) + 2 * (7 * math.log(0.7) + 3 * math.log(0.3))
    assert out["lr_cc"] == pytest.approx(lr_pof + lr_ind, rel=1e-12)
    assert out["p_value_cc"] == pytest.approx(stats.chi2.sf(lr_pof + lr_ind, 2), rel=1e-12)


def test_christoffersen_evenly_spread_exceptions_are_independent():
    out = christoffersen(np.array([0, 0, 1, 0, 0, 1, 0, 0, 1, 0]), 0.99)
    assert out["n11"] == 0 and out["pi11"] == 0.0
    # pi01 = 3/6 is not pi = 3/9: spreading them evenly is informative too; the LR is the closed form
    pi = 3 / 9
    hand = -2 * (6 * math.log(1 - pi) + 3 * math.log(pi)) + 2 * (3 * math.log(0.5) + 3 * math.log(0.5))
    assert out["lr_ind"] == pytest.approx(hand, rel=1e-12)


def test_christoffersen_without_exceptions_is_zero_and_refuses_one_day():
    out = christoffersen(np.zeros(20, dtype=int), 0.99)
    assert out["lr_ind"] == 0.0 and out["pi11"] is None and out["p_value_ind"] == 1.0
    with pytest.raises(StatisticsError, match="at least 2 days"):
        christoffersen(np.array([1]), 0.99)


@pytest.mark.parametrize("k,zone,plus", [(0, "green", 0.0), (4, "green", 0.0), (5, "yellow", 0.40),
                                         (9, "yellow", 0.85), (10, "red", 1.0), (14, "red", 1.0)])
def test_the_traffic_light_on_250_days_at_99_percent_is_the_basel_table(k, zone, plus):
    out = traffic_light(_seq(250, list(range(0, 5 * k, 5))), 0.99)
    assert (out["zone"], out["exceptions"], out["days"]) == (zone, k, 250)
    assert (out["yellow_from"], out["red_from"], out["scaled"], out["note"]) == (5, 10, False, None)
    assert out["plus_factor"] == plus
    assert out["cumulative_probability"] == pytest.approx(stats.binom.cdf(k, 250, 0.01))


def test_the_traffic_light_counts_the_last_250_days_only():
    e = _seq(400, list(range(0, 100, 10)) + [300, 350])  # 10 exceptions in the first 100 days, 2 in the last 250
    out = traffic_light(e, 0.99)
    assert (out["zone"], out["exceptions"], out["days"]) == ("green", 2, 250)


def test_the_traffic_light_on_100_days_is_scaled_by_the_binomial_and_says_so():
    # P(X <= 2 | 100, 0.01) = 0.9206 < 0.95 <= P(X <= 3) = 0.9816; P(X <= 5) = 0.99946, P(X <= 6) = 0.99995
    out = traffic_light(_seq(100, [3, 40, 80]), 0.99)
    assert (out["zone"], out["yellow_from"], out["red_from"]) == ("yellow", 3, 6)
    assert out["scaled"] is True and out["plus_factor"] is None and "100 days instead of 250" in out["note"]
    assert traffic_light(_seq(100, [1, 2]), 0.99)["zone"] == "green"
    assert traffic_light(_seq(100, [1, 2, 3, 4, 5, 6]), 0.99)["zone"] == "red"


def test_var_quantiles_normal_and_unit_variance_t():
    assert var_quantile(0.99) == pytest.approx(2.326348, abs=1e-6)
    assert var_quantile(0.99, "t", 5) == pytest.approx(stats.t.ppf(0.99, 5) * math.sqrt(3 / 5), rel=1e-12)
    assert var_quantile(0.99, "t", 5) == pytest.approx(2.606464, abs=1e-6)
    with pytest.raises(StatisticsError, match="dof > 2"):
        var_quantile(0.99, "t", 2)


def test_an_exception_is_a_return_below_minus_the_var():
    assert var_exceptions(np.array([-0.03, -0.02, 0.05, -0.0201]), np.full(4, 0.02)).tolist() == [1, 0, 0, 1]


def test_pesaran_timmermann_on_ten_days_is_the_hand_computation():
    y = np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 1])
    x = np.array([1, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    # P = 0.7, Py = 0.6, Px = 0.5, P* = 0.5; V(P) = 0.025, V(P*) = 0.001 + 0.0024; S = 0.2 / sqrt(0.0216)
    out = pesaran_timmermann(y, x)
    assert out["hit_rate"] == pytest.approx(0.7) and out["expected_hit_rate"] == pytest.approx(0.5)
    assert out["statistic"] == pytest.approx(0.2 / math.sqrt(0.0216), rel=1e-12)
    assert out["statistic"] == pytest.approx(1.360828, abs=1e-6)
    assert out["p_value"] == pytest.approx(stats.norm.sf(1.360828), abs=1e-6)


def test_pesaran_timmermann_of_a_constant_forecast_has_no_statistic():
    out = pesaran_timmermann(np.array([1, 0, 1, 1, 0]), np.ones(5, dtype=int))
    assert out["statistic"] is None and out["p_value"] is None and "forecast never changes" in out["note"]


def test_the_model_confidence_set_removes_a_clearly_worse_model():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 600) ** 2
    losses = {"a": a, "b": a + rng.normal(0, 0.01, 600), "worse": a + 1.0 + rng.normal(0, 0.3, 600)}
    out = model_confidence_set(losses, size=0.10, reps=500, block_size=5, seed=0)
    assert out["excluded"] == ["worse"] and out["included"] == ["a", "b"]
    assert out["p_values"]["worse"] < 0.01 and out["p_values"]["a"] >= 0.10
    assert out["rows"] == 600 and out["size"] == 0.10


def test_the_model_confidence_set_keeps_equal_models_and_refuses_one_model():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, 300) ** 2
    out = model_confidence_set({"a": a, "b": a.copy()}, reps=200, seed=0)
    assert out["included"] == ["a", "b"] and out["excluded"] == []
    with pytest.raises(StatisticsError, match="at least 2 models"):
        model_confidence_set({"a": a})
