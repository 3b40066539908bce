"""The supervisors' back-tests (models/backtest_statistics.py) against independent computations:
scipy.stats.beta / binom, hand sums, a published worked example, constructed cases."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from scipy import stats

from models.backtest_statistics import (
    assign_grades,
    auc_change_test,
    binomial_test,
    grade_table,
    herfindahl,
    jeffreys_test,
    long_run_default_rate,
    matrix_weighted_bandwidths,
    migration_matrix,
)
from models.spec.rating import RatingScaleSpec
from models.statistics import StatisticsError

SCALE = RatingScaleSpec(grades=[{"name": "A", "max_pd": 0.05}, {"name": "B", "max_pd": 0.10},
                                {"name": "C", "max_pd": 0.20}, {"name": "D"}])


# --------------------------------------------------------------------------- grades


def test_a_pd_on_a_bound_is_in_the_lower_grade_and_0_and_1_are_in_the_end_grades():
    pd = [0.0, 0.05, 0.0500001, 0.10, 0.2, 0.2000001, 1.0]
    assert assign_grades(pd, SCALE).tolist() == [0, 0, 1, 1, 2, 3, 3]


@pytest.mark.parametrize("bad", [[0.1, float("nan")], [-0.01], [1.01]])
def test_a_missing_or_impossible_pd_has_no_grade(bad):
    with pytest.raises(ValueError, match="missing|probabilities"):
        assign_grades(bad, SCALE)


def test_the_default_master_scale_is_geometric_between_floor_and_cap():
    scale = RatingScaleSpec(grades=7)
    bounds = scale.upper_bounds
    assert scale.names == ["1", "2", "3", "4", "5", "6", "7"] and len(bounds) == 6
    assert bounds[0] == pytest.approx(0.0003) and bounds[-1] == pytest.approx(0.20)
    ratios = [b / a for a, b in pairwise(bounds)]
    assert ratios == pytest.approx([(0.20 / 0.0003) ** (1 / 5)] * 5)  # 3.67 per grade
    assert bounds[2] == pytest.approx(0.0003 * (0.2 / 0.0003) ** 0.4)


def test_the_grade_table_counts_each_grade_and_keeps_an_empty_one():
    pd = np.array([0.01, 0.03, 0.05, 0.15, 0.15, 0.5, 0.9])
    y = np.array([0, 0, 1, 0, 1, 1, 1])
    rows = grade_table(pd, y, SCALE)
    assert [r["grade"] for r in rows] == ["A", "B", "C", "D"]
    a, b, c, d = rows
    assert (a["obligors"], a["defaults"], a["mean_pd"], a["default_rate"]) == (3, 1, pytest.approx(0.03), pytest.approx(1 / 3))
    assert (b["obligors"], b["defaults"], b["mean_pd"], b["default_rate"], b["share"]) == (0, 0, None, None, 0.0)
    assert (c["obligors"], c["defaults"], c["mean_pd"]) == (2, 1, pytest.approx(0.15))
    assert (d["obligors"], d["defaults"], d["mean_pd"], d["share"]) == (2, 2, pytest.approx(0.7), pytest.approx(2 / 7))
    assert (a["min_pd"], a["max_pd"], d["min_pd"], d["max_pd"]) == (0.0, 0.05, 0.20, None)


# --------------------------------------------------------------------------- Jeffreys, binomial


@pytest.mark.parametrize(("d", "n", "pd"), [(12, 400, 0.02), (0, 50, 0.01), (3, 3, 0.5), (30, 1000, 0.035)])
def test_jeffreys_is_the_beta_posterior_cdf_at_the_pd(d, n, pd):
    assert jeffreys_test(d, n, pd) == pytest.approx(stats.beta(d + 0.5, n - d + 0.5).cdf(pd), rel=1e-12)


def test_jeffreys_by_hand_for_one_obligor_without_default():
    # Beta(1/2, 3/2) has CDF (2/pi) (asin(sqrt x) + sqrt(x (1 - x))) ... of its density 2/pi sqrt((1-x)/x)
    x = 0.3
    by_hand = (2 / math.pi) * (math.asin(math.sqrt(x)) + math.sqrt(x * (1 - x)))
    assert jeffreys_test(0, 1, x) == pytest.approx(by_hand, rel=1e-10)


def test_the_binomial_p_is_the_chance_of_at_least_the_defaults_seen():
    # P(X >= 2), X ~ Bin(10, 0.1) = 1 - 0.9^10 - 10 * 0.1 * 0.9^9, by hand
    assert binomial_test(2, 10, 0.1) == pytest.approx(1 - 0.9 ** 10 - 10 * 0.1 * 0.9 ** 9, rel=1e-12)
    assert binomial_test(12, 400, 0.02) == pytest.approx(stats.binom.sf(11, 400, 0.02), rel=1e-12)
    assert binomial_test(0, 40, 0.3) == 1.0  # no default: nothing above the PD


def test_more_defaults_than_the_pd_allows_give_a_small_p_and_fewer_a_large_one():
    assert jeffreys_test(30, 500, 0.02) < 0.001 and binomial_test(30, 500, 0.02) < 0.001
    assert jeffreys_test(2, 500, 0.02) > 0.99 and binomial_test(2, 500, 0.02) > 0.99


def test_a_pd_of_exactly_0_or_1_and_an_empty_grade():
    assert jeffreys_test(1, 100, 0.0) == 0.0 and binomial_test(1, 100, 0.0) == 0.0
    assert jeffreys_test(0, 100, 1.0) == 1.0 and binomial_test(100, 100, 1.0) == 1.0
    assert jeffreys_test(0, 0, 0.1) is None and binomial_test(0, 0, 0.1) is None
    with pytest.raises(StatisticsError):
        jeffreys_test(5, 4, 0.1)


# --------------------------------------------------------------------------- AUC against initial


def _hand_delong_se(y, s):
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), math.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))


def test_the_auc_change_test_uses_the_delong_se_of_the_current_auc():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = np.round(y * 0.8 + rng.normal(size=300), 1)  # ties on purpose
    auc, se = _hand_delong_se(y, s)
    t = auc_change_test(0.80, y, s)
    assert t.auc_current == pytest.approx(auc, rel=1e-12) and t.se_current == pytest.approx(se, rel=1e-10)
    assert t.statistic == pytest.approx((0.80 - auc) / se, rel=1e-10)
    assert t.p_value == pytest.approx(1 - stats.norm.cdf((0.80 - auc) / se), rel=1e-9)
    assert auc_change_test(auc, y, s).p_value == pytest.approx(0.5)  # no change: S = 0


# --------------------------------------------------------------------------- Herfindahl


def test_herfindahl_on_constructed_cases():
    even = herfindahl([25, 25, 25, 25])
    assert even.cv == pytest.approx(0.0, abs=1e-12) and even.herfindahl_index == pytest.approx(0.0, abs=1e-12)
    one = herfindahl([0, 80, 0, 0])
    assert one.cv == pytest.approx(math.sqrt(3)) and one.herfindahl_index == pytest.approx(1.0)
    # shares 0.5, 0.25, 0.25 by hand: CV^2 = 3 * (1/6^2 + 2 * 1/12^2) = 1/8, HI = 1 + ln(1.125 / 3) / ln 3
    mixed = herfindahl([2, 1, 1])
    assert mixed.cv == pytest.approx(math.sqrt(1 / 8))
    assert mixed.herfindahl_index == pytest.approx(1 + math.log(1.125 / 3) / math.log(3))
    # the same as the Herfindahl-Hirschman sum rescaled on a log scale
    assert mixed.herfindahl_index == pytest.approx(1 + math.log(0.25 + 0.0625 * 2) / math.log(3))
    with pytest.raises(StatisticsError):
        herfindahl([0, 0, 0])


# --------------------------------------------------------------------------- migration


def test_migration_matrix_on_a_constructed_case():
    first = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    second = np.array([0, 1, 2, 1, 0, 2, 2, 0])
    m = migration_matrix(first, second, ["A", "B", "C"])
    assert m.counts == [[1, 1, 1], [1, 1, 0], [1, 0, 2]] and m.obligors == 8
    assert m.rates[0] == pytest.approx([1 / 3] * 3) and m.rates[1] == pytest.approx([0.5, 0.5, 0.0])
    # upper: moves A->B (1 step), A->C (2 steps); reach of A = 2, of B = 1
    #   sum |i-j| n_ij = 1 + 2 = 3; M_upper = 2 * (1 + 1) + 1 * 0 = 4 -> 0.75
    # lower: moves B->A (1), C->A (2); reach of B = 1, of C = 2: 3 / (1 * 1 + 2 * 1) = 1.0
    assert m.upper_mwb == pytest.approx(0.75) and m.lower_mwb == pytest.approx(1.0)


def test_no_move_gives_no_bandwidth_and_the_published_example_is_reproduced():
    m = migration_matrix([0, 1, 2], [0, 1, 2], ["A", "B", "C"])
    assert (m.upper_mwb, m.lower_mwb) == (None, None)
    counts = [[10, 8, 15, 9, 10], [11, 9, 13, 9, 8], [0, 10, 10, 11, 10], [0, 0, 9, 11, 11], [0, 0, 0, 11, 10]]
    lower, upper = matrix_weighted_bandwidths(counts)  # MathWorks risk.validation.matrixWeightedBandwidth example
    assert round(lower, 4) == 0.3306 and round(upper, 4) == 0.6066
    with pytest.raises(ValueError, match="same obligors"):
        migration_matrix([0, 1], [0], ["A", "B"])


# --------------------------------------------------------------------------- long-run average


def test_the_long_run_default_rate_is_the_simple_mean_of_the_vintages():
    vintage = ["2020"] * 4 + ["2021"] * 6
    pd = [0.1] * 4 + [0.3] * 6
    y = [1, 0, 0, 0] + [1, 1, 1, 0, 0, 0]
    lra = long_run_default_rate(vintage, pd, y)
    assert [v["default_rate"] for v in lra["vintages"]] == [0.25, 0.5]
    assert lra["long_run_default_rate"] == pytest.approx(0.375) and lra["long_run_mean_pd"] == pytest.approx(0.2)
    assert lra["pooled_default_rate"] == pytest.approx(0.4) and lra["pooled_mean_pd"] == pytest.approx(0.22)
    assert lra["difference"] == pytest.approx(0.175)
