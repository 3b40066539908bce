"""The estimate from the scores alone (models/performance_estimate.py) against independent
computations: a brute-force double loop over pairs, scikit-learn's roc_auc_score, a direct
resample-and-Bernoulli bootstrap, Monte Carlo coverage on calibrated data; and its blindness, by
construction: a simulated downturn and concept drift that the estimate must miss."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from models.performance_estimate import (
    WARNING,
    estimate_performance,
    expected_auc_if_calibrated,
    expected_event_rate,
    pairwise_auc,
)


def brute_force_expected_auc(p) -> float:
    """E_AUC by its definition, every ordered pair i != j."""
    num = den = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            if i != j:
                w = p[i] * (1 - p[j])
                den += w
                num += w * ((p[i] > p[j]) + 0.5 * (p[i] == p[j]))
    return num / den


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def calibrated_pds(n: int, seed: int, intercept: float = -2.0, slope: float = 1.0) -> np.ndarray:
    """PDs of a calibrated logistic model: the true P(default | x) of a logistic simulation."""
    x = np.random.default_rng(seed).normal(size=n)
    return sigmoid(intercept + slope * x)


# --------------------------------------------------------------------------- the point estimate


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_expected_auc_equals_the_double_loop_with_ties(seed):
    rng = np.random.default_rng(seed)
    p = rng.beta(1.0, 4.0, size=40).round(1)  # rounding to one decimal makes many ties
    assert len(np.unique(p)) < len(p)
    assert expected_auc_if_calibrated(p) == pytest.approx(brute_force_expected_auc(p), abs=1e-12)


def test_expected_auc_in_small_cases_by_hand():
    assert expected_auc_if_calibrated([0.3, 0.3, 0.3]) == pytest.approx(0.5)  # all tied
    assert expected_auc_if_calibrated([0.0, 1.0, 1.0, 0.0]) == pytest.approx(1.0)  # sure events above sure non-events
    # two rows: pairs (1,2) weight .8*.9 = .72 ordered right, (2,1) weight .1*.2 = .02 ordered wrong
    assert expected_auc_if_calibrated([0.8, 0.1]) == pytest.approx(0.72 / 0.74)
    # the i = j terms are left out: with them (NannyML's expected ROC curve) the value would differ
    p = np.array([0.8, 0.1])
    with_self = (0.72 + 0.5 * (0.8 * 0.2 + 0.1 * 0.9)) / (p.sum() * (1 - p).sum())
    assert abs(expected_auc_if_calibrated(p) - with_self) > 0.05


@pytest.mark.parametrize("p", [[0.4], [0.0, 0.0], [1.0, 1.0, 1.0]])
def test_no_possible_event_and_non_event_pair_has_no_expected_auc(p):
    assert expected_auc_if_calibrated(p) is None


def test_the_expected_event_rate_is_the_mean_pd():
    assert expected_event_rate([0.1, 0.2, 0.6]) == pytest.approx(0.3)


def test_pairwise_auc_with_labels_is_roc_auc_score():
    rng = np.random.default_rng(5)
    s = rng.integers(0, 8, size=300).astype(float)  # heavy ties
    y = (rng.random(300) < 0.3).astype(int)
    assert pairwise_auc(s, y, 1 - y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("args", [([0.1, 0.2], [1, 0], [0]), ([0.1, np.inf], [1, 0], [0, 1]),
                                  ([0.1, 0.2], [1, -1], [0, 1])])
def test_pairwise_auc_refuses_mismatched_or_impossible_weights(args):
    with pytest.raises(ValueError, match="one-dimensional|finite"):
        pairwise_auc(*args)


@pytest.mark.parametrize("bad, match", [([0.1, float("nan")], "missing"), ([0.2, 1.5], r"\[0, 1\]"),
                                        ([], "no PD"), ([[0.1, 0.2]], "one-dimensional")])
def test_invalid_pds_are_refused_with_the_reason(bad, match):
    with pytest.raises(ValueError, match=match):
        expected_auc_if_calibrated(bad)
    with pytest.raises(ValueError, match=match):
        estimate_performance(bad)


@pytest.mark.parametrize("kwargs, match", [({"draws": 0}, "draws"), ({"draws": 2.5}, "draws"),
                                           ({"confidence": 1.0}, "confidence")])
def test_invalid_bootstrap_settings_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        estimate_performance([0.1, 0.5], **kwargs)


# --------------------------------------------------------------------------- the band


def test_the_record_carries_point_band_settings_and_the_warning():
    p = calibrated_pds(500, seed=1)
    est = estimate_performance(p, draws=50, seed=9)
    d = est.as_dict()
    assert d["rows"] == 500 and d["draws"] == 50 and d["seed"] == 9 and d["confidence"] == 0.95
    assert d["expected_event_rate"] == pytest.approx(p.mean())
    assert d["expected_auc"] == pytest.approx(expected_auc_if_calibrated(p))
    assert d["event_rate_low"] < d["expected_event_rate"] < d["event_rate_high"]
    assert d["auc_low"] < d["expected_auc"] < d["auc_high"]
    assert d["warning"] == WARNING and "concept drift" in WARNING and "downturn" in WARNING
    assert estimate_performance(p, draws=50, seed=9) == est  # seeded: the same band again
    assert estimate_performance(p, draws=50, seed=10).auc_low != est.auc_low


def test_the_band_by_counts_matches_a_direct_resample_and_bernoulli_bootstrap():
    """The counting shortcut (Binomial(w, p) events among w copies) against the plain algorithm:
    resample rows, draw each label, AUC from scipy's mid-ranks (Mann-Whitney)."""
    p = calibrated_pds(300, seed=2)
    rng = np.random.default_rng(123)
    rates, aucs = [], []
    for _ in range(2000):
        idx = rng.integers(0, len(p), size=len(p))
        y = (rng.random(len(p)) < p[idx]).astype(int)
        rates.append(y.mean())
        ranks = stats.rankdata(p[idx])
        m = y.sum()
        aucs.append((ranks[y == 1].sum() - m * (m + 1) / 2) / (m * (len(y) - m)))
    est = estimate_performance(p, draws=2000, seed=4)
    assert est.event_rate_low == pytest.approx(np.quantile(rates, 0.025), abs=0.006)
    assert est.event_rate_high == pytest.approx(np.quantile(rates, 0.975), abs=0.006)
    assert est.auc_low == pytest.approx(np.quantile(aucs, 0.025), abs=0.012)
    assert est.auc_high == pytest.approx(np.quantile(aucs, 0.975), abs=0.012)


def test_a_draw_without_both_classes_has_no_auc_and_is_counted():
    est = estimate_performance([0.001, 0.002, 0.003], draws=100, seed=0)
    assert est.draws_without_auc > 90  # almost never a default among three rows at 0.1-0.3 %
    assert est.event_rate_low == 0.0
    all_zero = estimate_performance([0.0, 0.0], draws=20)
    assert all_zero.expected_auc is None and all_zero.auc_low is None and all_zero.draws_without_auc == 20


def test_on_calibrated_data_the_band_holds_the_realised_figures_about_95_percent_of_the_time():
    rng = np.random.default_rng(2026)
    hits_auc = hits_rate = 0
    reps = 200
    for r in range(reps):
        p = sigmoid(-2.0 + rng.normal(size=400))
        y = (rng.random(400) < p).astype(int)  # outcomes from the model's own probabilities
        est = estimate_performance(p, draws=200, seed=r)
        hits_auc += est.auc_low <= roc_auc_score(y, p) <= est.auc_high
        hits_rate += est.event_rate_low <= y.mean() <= est.event_rate_high
    assert 0.88 <= hits_auc / reps <= 0.995
    assert 0.88 <= hits_rate / reps <= 0.995


# --------------------------------------------------------------------------- what it cannot see


def test_a_downturn_is_missed_by_the_estimate_and_the_warning_says_so():
    """The same borrowers and scores (a calibrated logistic model), outcomes drawn in a downturn:
    the true logit shifted by +1 at every score. The estimate, made from the scores alone, still
    expects the calibrated default rate: its band misses the realised rate by far, while its AUC
    stays near the calibrated one (the downturn keeps the ranking). The warning names the case."""
    n = 5000
    p = calibrated_pds(n, seed=16)
    rng = np.random.default_rng(17)
    y_calibrated = (rng.random(n) < p).astype(int)
    y_downturn = (rng.random(n) < sigmoid(np.log(p / (1 - p)) + 1.0)).astype(int)
    est = estimate_performance(p, seed=18)

    assert y_downturn.mean() > est.event_rate_high + 0.05  # missed: 0.31 realised against a band of 0.144-0.164
    assert est.event_rate_low <= y_calibrated.mean() <= est.event_rate_high  # the calibrated world is inside
    assert est.expected_auc == pytest.approx(roc_auc_score(y_calibrated, p), abs=0.02)
    assert roc_auc_score(y_downturn, p) == pytest.approx(est.expected_auc, abs=0.03)  # the ranking survives
    assert "downturn" in est.warning and "calibrated" in est.warning


def test_concept_drift_is_missed_by_the_estimate():
    """Outcomes that no longer depend on the score (same default rate): the realised AUC falls to
    about 0.5, outside the band the scores expect."""
    n = 5000
    p = calibrated_pds(n, seed=21)
    y = (np.random.default_rng(22).random(n) < p.mean()).astype(int)
    est = estimate_performance(p, seed=23)
    realised = roc_auc_score(y, p)
    assert realised == pytest.approx(0.5, abs=0.03)
    assert realised < est.auc_low and est.auc_low > 0.65
    assert "concept drift" in est.warning
