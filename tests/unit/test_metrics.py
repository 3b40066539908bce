"""Each metric against an independent computation on a small example."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import ks_2samp

from models.metrics import (
    MetricError,
    average_precision,
    brier_score,
    gini,
    ks_statistic,
    log_loss,
    mae,
    rmse,
    roc_auc,
)
from models.spec import parse_spec
from tasks.evaluate import compute_metrics
from tests.helpers import builtin_spec_dict


def classification_metrics(y, p):
    return compute_metrics(parse_spec(builtin_spec_dict("credit_risk")), y, p)


def regression_metrics(y, f, baseline):
    return compute_metrics(parse_spec(builtin_spec_dict("market_forecast")), y, f, {"persistence": baseline})

Y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 0, 0])
P = np.array([0.1, 0.4, 0.35, 0.2, 0.8, 0.7, 0.5, 0.45, 0.05, 0.3])


def _auc_by_pairs(y, p):
    """Mann-Whitney: share of (event, non-event) pairs ranked correctly, ties counting half."""
    pos, neg = p[y == 1], p[y == 0]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_roc_auc_matches_pair_counting():
    # 4 events x 6 non-events = 24 pairs; the only misordered pairs: 0.35 < 0.4 and 0.35, 0.45 < 0.5
    assert _auc_by_pairs(Y, P) == pytest.approx(21 / 24)
    assert roc_auc(Y, P) == pytest.approx(21 / 24)


def test_gini_is_two_auc_minus_one():
    assert gini(Y, P) == pytest.approx(2 * 21 / 24 - 1)


def test_ks_matches_scipy_two_sample_statistic():
    expected = ks_2samp(P[Y == 1], P[Y == 0]).statistic
    assert ks_statistic(Y, P) == pytest.approx(expected)
    # by hand: at a cut-off of 0.35, 4/4 events vs 2/6 non-events score >= it
    assert ks_statistic(Y, P) == pytest.approx(1 - 2 / 6)


def test_brier_and_log_loss_by_hand():
    assert brier_score(Y, P) == pytest.approx(sum((p - y) ** 2 for y, p in zip(Y, P)) / len(Y))
    expected = -sum(math.log(p) if y else math.log(1 - p) for y, p in zip(Y, P)) / len(Y)
    assert log_loss(Y, P) == pytest.approx(expected)


def test_average_precision_by_hand():
    # ranking by score: 0.8(1) 0.7(1) 0.5(0) 0.45(1) 0.4(0) 0.35(1) ...
    # precision at each event: 1/1, 2/2, 3/4, 4/6; AP = mean of them
    assert average_precision(Y, P) == pytest.approx((1 + 1 + 3 / 4 + 4 / 6) / 4)


def test_regression_metrics_by_hand():
    y = np.array([0.10, 0.20, 0.30, 0.40])
    f = np.array([0.12, 0.18, 0.33, 0.36])
    base = np.array([0.20, 0.10, 0.20, 0.30])
    assert rmse(y, f) == pytest.approx(math.sqrt((0.02**2 + 0.02**2 + 0.03**2 + 0.04**2) / 4))
    assert mae(y, f) == pytest.approx((0.02 + 0.02 + 0.03 + 0.04) / 4)
    out = regression_metrics(y, f, base)
    assert out["baseline_rmse"] == pytest.approx(0.1)
    assert out["rmse_ratio_vs_persistence"] == pytest.approx(out["rmse"] / 0.1)


def test_perfect_and_inverted_rankings():
    y = np.array([0, 0, 1, 1])
    m = classification_metrics(y, np.array([0.1, 0.2, 0.8, 0.9]))
    assert m["roc_auc"] == 1.0 and m["ks"] == 1.0 and m["gini"] == 1.0
    assert roc_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0


def test_bad_inputs_raise():
    with pytest.raises(MetricError, match="single class"):
        roc_auc(np.array([1, 1, 1]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(MetricError, match="differ in length"):
        brier_score(np.array([1, 0]), np.array([0.1]))
    with pytest.raises(MetricError, match="finite"):
        rmse(np.array([1.0, np.nan]), np.array([1.0, 2.0]))


def test_deciles_keep_tied_scores_together_so_row_order_does_not_matter():
    """Four score levels, calibrated at each: ECE and rank reversal were 0.15-0.23 and 0.40-0.97
    depending on row order when a cut split a run of tied scores."""
    from models.metrics import (
        decile_table,
        expected_calibration_error,
        max_rank_reversal,
    )

    rng = np.random.default_rng(0)
    p = rng.choice([0.1, 0.3, 0.6, 0.9], 2_000)
    y = (rng.random(2_000) < p).astype(float)
    tables = []
    for order in (np.argsort(y, kind="stable"), np.argsort(-y, kind="stable"), rng.permutation(2_000)):
        tables.append(decile_table(y[order], p[order]))
        assert expected_calibration_error(y[order], p[order]) == pytest.approx(
            expected_calibration_error(y, p), abs=1e-12)
    assert tables[0] == tables[1] == tables[2]
    table = tables[0]
    assert [r["min_score"] for r in table] == [0.1, 0.3, 0.6, 0.9] and all(r["min_score"] == r["max_score"] for r in table)
    by_hand = sum((p == v).mean() * abs(v - y[p == v].mean()) for v in (0.1, 0.3, 0.6, 0.9))
    assert expected_calibration_error(y, p) == pytest.approx(by_hand)
    assert max_rank_reversal(table) == 0.0
    # a constant score at the base rate is perfectly calibrated in the large: one group, ECE 0
    assert expected_calibration_error(np.array([0.0, 1.0] * 50), np.full(100, 0.5)) == 0.0
    # distinct scores still give ten equal deciles
    x = rng.random(1_000)
    assert [r["rows"] for r in decile_table((rng.random(1_000) < x).astype(float), x)] == [100] * 10
