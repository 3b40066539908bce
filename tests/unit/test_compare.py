"""Paired comparisons against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from models.statistics import auc_interval as roc_auc_interval
from tasks.compare import bootstrap, delong, diebold_mariano


def _delong_by_pairs(y, a, b):
    """DeLong (1988) written out with the explicit kernel psi(x, z) over every event/non-event pair."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    m, n = len(pos), len(neg)

    def components(s):
        psi = (s[pos][:, None] > s[neg][None, :]).astype(float) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)

    auc_a, v10_a, v01_a = components(a)
    auc_b, v10_b, v01_b = components(b)
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    return auc_a - auc_b, math.sqrt(var)


def test_delong_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.35).astype(float)
    a = np.round(y * 0.8 + rng.normal(0, 0.7, 300), 1)  # rounded: ties exercise the midranks
    b = np.round(y * 0.5 + rng.normal(0, 0.7, 300), 1)
    diff, se = _delong_by_pairs(y, a, b)
    c = delong(y, a, b, confidence=0.95)
    z = stats.norm.ppf(0.975)
    assert c.diff == pytest.approx(diff, abs=1e-12)
    assert c.ci_low == pytest.approx(diff - z * se, abs=1e-10)
    assert c.ci_high == pytest.approx(diff + z * se, abs=1e-10)


def test_single_auc_interval_matches_the_pairwise_definition():
    rng = np.random.default_rng(1)
    y = (rng.random(200) < 0.4).astype(float)
    s = y + rng.normal(0, 1, 200)
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]).astype(float)
    auc = psi.mean()
    se = math.sqrt(psi.mean(axis=1).var(ddof=1) / len(pos) + psi.mean(axis=0).var(ddof=1) / len(neg))
    low, high = roc_auc_interval(y, s)
    assert low == pytest.approx(auc - 1.959964 * se, abs=1e-6)
    assert high == pytest.approx(auc + 1.959964 * se, abs=1e-6)


def test_diebold_mariano_at_horizon_one_is_a_paired_t_interval():
    rng = np.random.default_rng(2)
    y = rng.normal(0, 1, 400)
    a = y + rng.normal(0, 0.9, 400)
    b = y + rng.normal(0, 1.0, 400)
    d = (b - y) ** 2 - (a - y) ** 2
    half = stats.t.ppf(0.975, df=399) * d.std(ddof=1) / math.sqrt(400)
    c = diebold_mariano("mse", y, a, b, horizon=1)
    assert c.diff == pytest.approx(d.mean())
    assert c.ci_low == pytest.approx(d.mean() - half) and c.ci_high == pytest.approx(d.mean() + half)


def test_diebold_mariano_widens_for_overlapping_forecasts():
    rng = np.random.default_rng(3)
    e = rng.normal(0, 1, 2000)
    d_shared = np.convolve(e, np.ones(5) / 5, mode="same")  # autocorrelated loss differential
    y = np.zeros(2000)
    a = np.sqrt(np.clip(1 - d_shared, 0, None))
    b = np.ones(2000)
    narrow = diebold_mariano("mse", y, a, b, horizon=1)
    wide = diebold_mariano("mse", y, a, b, horizon=5)
    assert (wide.ci_high - wide.ci_low) > 1.5 * (narrow.ci_high - narrow.ci_low)


def test_directional_accuracy_differential():
    y = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1] * 10, dtype=float)
    a = y.copy()  # always right
    b = np.ones_like(y)  # always up: right on the 1s only
    c = diebold_mariano("directional_accuracy", y, a, b)
    assert c.value_a == 1.0 and c.value_b == pytest.approx(y.mean())
    assert c.diff == pytest.approx(1.0 - y.mean())


def test_bootstrap_is_reproducible_and_centred():
    rng = np.random.default_rng(4)
    y = (rng.random(800) < 0.3).astype(float)
    a = y + rng.normal(0, 0.5, 800)
    b = y + rng.normal(0, 1.5, 800)
    one = bootstrap("roc_auc", y, a, b, n_boot=300, seed=7)
    two = bootstrap("roc_auc", y, a, b, n_boot=300, seed=7)
    assert (one.ci_low, one.ci_high) == (two.ci_low, two.ci_high)
    assert one.ci_low < one.diff < one.ci_high and one.ci_low > 0  # a is clearly better
    # the bootstrap standard error agrees with DeLong's on the same rows
    width_boot = one.ci_high - one.ci_low
    d = delong(y, a, b)
    assert width_boot == pytest.approx(d.ci_high - d.ci_low, rel=0.2)
    blocks = bootstrap("roc_auc", y, a, b, n_boot=300, seed=7, block=20)
    assert blocks.note.startswith("paired bootstrap of circular blocks of 20 rows")
    same = bootstrap("brier", y, a, a, n_boot=100)
    assert same.diff == 0.0 and same.ci_low == 0.0 and same.ci_high == 0.0


def test_diebold_mariano_at_a_longer_horizon_uses_equal_weights_and_the_hln_factor():
    """Written out independently: DM 1995 variance (autocovariances up to h - 1, equal weights),
    HLN 1997 factor sqrt((n + 1 - 2h + h(h - 1)/n) / n), Student-t with n - 1 df."""
    rng = np.random.default_rng(11)
    n, h = 300, 5
    y = np.convolve(rng.normal(size=n + h), np.ones(h), "valid")[:n]
    a = y + np.convolve(rng.normal(size=n + h), np.ones(h), "valid")[:n] * 0.4
    b = y + np.convolve(rng.normal(size=n + h), np.ones(h), "valid")[:n] * 0.5
    d = (b - y) ** 2 - (a - y) ** 2
    dc = d - d.mean()
    autocov = [np.sum(dc[k:] * dc[: n - k]) / n for k in range(h)]
    variance = autocov[0] + 2 * sum(autocov[1:])
    se = math.sqrt(variance / n) / math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    half = stats.t.ppf(0.975, df=n - 1) * se
    c = diebold_mariano("mse", y, a, b, horizon=h)
    assert c.diff == pytest.approx(d.mean())
    assert c.ci_low == pytest.approx(d.mean() - half) and c.ci_high == pytest.approx(d.mean() + half)
    assert "equal weights" in c.note


def test_diebold_mariano_keeps_its_size_on_overlapping_targets():
    """Equally accurate forecasts of an overlapping 5-day target: the challenger must be called
    better (lower bound above 0) about 2.5 % of the time. With Bartlett weights under the HLN
    factor it was 3.8 % on these same draws."""
    rng = np.random.default_rng(0)
    n, h, reps = 1000, 5, 2000
    superior = 0
    for _ in range(reps):
        y = np.convolve(rng.normal(size=n + h), np.ones(h), "valid")[:n]
        a = np.convolve(rng.normal(size=n + h), np.ones(h), "valid")[:n] * 0.5
        b = np.convolve(rng.normal(size=n + h), np.ones(h), "valid")[:n] * 0.5
        superior += diebold_mariano("mse", y, a, b, horizon=h).ci_low > 0
    assert 0.015 <= superior / reps <= 0.032


def test_bootstrap_drops_replicates_without_both_classes_for_every_metric():
    rng = np.random.default_rng(5)
    y = np.zeros(60)
    y[[7, 41]] = 1  # two events: many replicates draw none
    a, b = rng.random(60), rng.random(60)
    for metric in ("ks", "average_precision", "roc_auc"):
        c = bootstrap(metric, y, a, b, n_boot=200, seed=1)
        assert 0 < c.replicates < 200, metric
        assert c.ci_low <= c.ci_high


def test_a_relative_change_against_zero_keeps_its_sign():
    from tasks.compare import point_only

    y = np.array([0, 0, 1, 1] * 10, dtype=float)
    worst = 1 - y              # Gini -1
    chance = np.full(40, 0.5)  # Gini 0
    assert point_only("gini", y, worst, chance, change="relative").diff == float("-inf")
    assert point_only("gini", y, y, chance, change="relative").diff == float("inf")
    assert point_only("gini", y, chance, chance, change="relative").diff == 0.0


def test_circular_blocks_draw_every_row_with_equal_probability():
    """Every block starts at a uniformly drawn row and wraps around, so each position of a block is
    uniform over the rows and every row, the first and the last included, is drawn once per
    replicate in expectation. Moving blocks that stop at the last row (the method before) draw
    the first row only from a block that starts there."""
    from models.statistics import circular_block_indices

    n, block = 50, 7

    class Starts:  # all blocks start at row s; records the range the starts are drawn from
        def __init__(self, s):
            self.s = s

        def integers(self, low, high, size):
            self.range = (low, high)
            return np.full(size, self.s)

    expected = np.zeros(n)
    for s in range(n):  # the starts are uniform and expectation is linear: average over every start
        rng = Starts(s)
        idx = circular_block_indices(rng, n, block)
        assert rng.range == (0, n) and idx.shape == (n,)
        expected += np.bincount(idx, minlength=n) / n
    np.testing.assert_allclose(expected, np.ones(n), rtol=0, atol=1e-12)

    rng = np.random.default_rng(0)
    reps = 2_000
    circular = sum(np.bincount(circular_block_indices(rng, n, block), minlength=n) for _ in range(reps)) / reps
    moving = np.zeros(n)
    for _ in range(reps):
        starts = rng.integers(0, n - block + 1, size=math.ceil(n / block))
        moving += np.bincount((starts[:, None] + np.arange(block)).ravel()[:n], minlength=n) / reps
    assert 0.85 < circular[0] < 1.15 and 0.85 < circular[-1] < 1.15
    assert moving[0] < 0.3 and moving[n // 2] > 1.05  # 8 / 44 = 0.18 at the first row, more in the middle


def test_block_length_and_the_rows_bootstrap():
    from models.statistics import block_length, bootstrap_indices

    assert block_length(1000) == 10 and block_length(1000, horizon=22) == 22 and block_length(30) == 3
    rng = np.random.default_rng(1)
    idx = bootstrap_indices(rng, 100)
    assert idx.shape == (100,) and len(np.unique(idx)) < 100  # drawn with replacement
    blocks = bootstrap_indices(np.random.default_rng(1), 100, block=10)
    runs = np.diff(blocks.reshape(10, 10), axis=1) % 100
    assert (runs == 1).all()  # ten runs of ten consecutive rows, wrapping at the end


def test_the_single_auc_interval_and_the_paired_difference_share_the_components():
    from models.statistics import StatisticsError, delong_components, delong_difference

    rng = np.random.default_rng(12)
    y = (rng.random(300) < 0.3).astype(float)
    s = np.round(y + rng.normal(0, 1, 300), 1)
    c = delong_components(y, s)
    assert c.v10.shape == (int(y.sum()),) and c.v01.shape == (int((1 - y).sum()),)
    assert c.auc == pytest.approx(c.v10.mean()) == pytest.approx(c.v01.mean())
    low, high = roc_auc_interval(y, s)
    se = (high - low) / 2 / stats.norm.ppf(0.975)
    assert se == pytest.approx(math.sqrt(c.v10.var(ddof=1) / len(c.v10) + c.v01.var(ddof=1) / len(c.v01)))
    # against a constant score (AUC 0.5, no variance of its own), the paired se is the single one
    d = delong_difference(y, s, np.zeros(300))
    assert d.auc_b == 0.5 and d.se == pytest.approx(se)
    with pytest.raises(StatisticsError, match="two events"):
        delong_components(np.array([1, 0, 0, 0.0]), np.arange(4.0))


def test_comparison_errors_name_the_problem():
    from tasks.compare import ComparisonError, point_only

    y = np.array([0, 1] * 10, dtype=float)
    with pytest.raises(ComparisonError, match="cannot be compared row by row"):
        bootstrap("calibration_ratio", y, y, y)
    with pytest.raises(ComparisonError, match="needs a per-row loss"):
        diebold_mariano("roc_auc", y, y, y)
    with pytest.raises(ComparisonError, match="same length"):
        bootstrap("brier", y, y, y[:-1])
    with pytest.raises(ComparisonError, match="at least two events"):
        delong(np.array([1, 0, 0, 0.0]), np.arange(4.0), np.arange(4.0))
    with pytest.raises(ComparisonError, match="at least 10 rows"):
        diebold_mariano("mse", y[:6], y[:6], y[:6])
    with pytest.raises(ComparisonError, match="row by row"):
        point_only("rmse_ratio_vs_persistence", y, y, y)
