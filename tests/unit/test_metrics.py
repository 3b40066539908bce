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


# --------------------------------------------------------------------------- figures unchanged

def _golden_sample():
    rng = np.random.default_rng(42)
    n = 400
    y = (rng.random(n) < 0.3).astype(float)
    p = np.round(1 / (1 + np.exp(-(1.2 * (y - 0.3) + rng.normal(0, 1, n)))), 2)  # rounded: tied scores
    q = np.round(1 / (1 + np.exp(-(0.8 * (y - 0.3) + rng.normal(0, 1, n)))), 2)
    t = np.abs(rng.normal(0.2, 0.05, n))
    return y, p, q, t, t + rng.normal(0, 0.02, n), t + rng.normal(0, 0.03, n)


# Computed by the code before the catalogue (hand-written Brier, log loss, RMSE, MAE; DeLong written
# twice); the catalogue's scikit-learn functions give the same figures (mse to the last bit but one).
GOLDEN_CLASSIFICATION = {
    "average_precision": 0.563986230874258, "brier": 0.214441, "calibration_ratio": 1.6239669421487604,
    "ece": 0.18874999999999997, "gini": 0.49805977665215195, "ks": 0.38765958707307685,
    "log_loss": 0.6179610571793233, "max_rank_reversal": 0.02500000000000001, "roc_auc": 0.749029888326076,
    "roc_auc_ci_high": 0.8009694944321659, "roc_auc_ci_low": 0.697090282219986,
}
GOLDEN_REGRESSION = {
    "baseline_rmse": 0.030178087839179014, "mae": 0.01610799731504291, "mse": 0.00041047696939397916,
    "rmse": 0.020260231227554614, "rmse_ratio_vs_persistence": 0.6713556980655202,
}


def test_the_figures_are_those_of_the_code_before_the_catalogue():
    y, p, q, t, f, base = _golden_sample()
    assert classification_metrics(y, p) == pytest.approx(GOLDEN_CLASSIFICATION, rel=1e-13, abs=0)
    regression = regression_metrics(t, f, base)
    assert {k: regression[k] for k in GOLDEN_REGRESSION} == pytest.approx(GOLDEN_REGRESSION, rel=1e-13, abs=0)
    assert set(regression) - set(GOLDEN_REGRESSION) == {"qlike"}  # added by issue 19 for volatility labels


def test_log_loss_clips_at_1e15_like_before():
    """scikit-learn clips at the float64 epsilon (2.2e-16); the catalogue clips at 1e-15 first."""
    y = np.array([0, 1, 1, 0, 1, 0.0])
    p = np.array([0.0, 1.0, 1e-17, 1 - 1e-17, 0.5, 0.3])
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    by_hand = -np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))
    assert log_loss(y, p) == pytest.approx(by_hand, rel=1e-12)
    from sklearn.metrics import log_loss as sklearn_log_loss

    assert sklearn_log_loss(y, p, labels=[0, 1]) > log_loss(y, p) + 0.4  # its own clip: -log(2.2e-16) per bad row


def test_each_resampling_shortcut_equals_the_metric():
    from models.metrics import METRICS

    rng = np.random.default_rng(8)
    y = (rng.random(500) < 0.2).astype(float)
    s = np.round(rng.random(500) + 0.3 * y, 1)  # ties
    fast = {name: m for name, m in METRICS.items() if m.resample is not None}
    assert set(fast) == {"roc_auc", "gini"}
    for name, m in fast.items():
        assert m.resample(y, s) == pytest.approx(m.fn(y, s), abs=1e-14), name
        assert math.isnan(m.resample(np.zeros(5), s[:5]))  # where fn raises MetricError
        with pytest.raises(MetricError):
            m.fn(np.zeros(5), s[:5])


def test_the_catalogue_is_consistent():
    from models.metrics import METRICS, ROW_COMPARABLE, MetricInfo

    for name, m in METRICS.items():
        assert m.tasks and m.description and m.digits >= 0, name
        assert (name in ROW_COMPARABLE) == m.row_comparable
        if m.row_comparable:
            assert m.fn is not None, name
    assert sorted(ROW_COMPARABLE) == sorted(n for n, m in METRICS.items() if m.row_comparable)
    assert {n for n, m in METRICS.items() if m.per_row_loss} == {"rmse", "mse", "mae", "qlike", "directional_accuracy"}
    assert [n for n, m in METRICS.items() if m.delong] == ["roc_auc"]
    with pytest.raises(ValueError, match="needs its function"):
        MetricInfo(higher_is_better=True, tasks=frozenset({"regression"}), description="x", row_comparable=True)
    with pytest.raises(ValueError, match="row-comparable"):
        MetricInfo(higher_is_better=True, tasks=frozenset({"regression"}), description="x", fn=rmse,
                   loss=lambda y, f: (f - y) ** 2)


def test_display_digits_come_from_the_catalogue(monkeypatch):
    from models.metrics import METRICS, format_metric
    from tasks.report import fmt_value

    assert format_metric("roc_auc", 0.86270651) == "0.8627" and format_metric("roc_auc", None) == "n/a"
    assert format_metric("ks", float("nan")) == "n/a" and format_metric("not_a_metric", 1 / 3) == "0.3333"
    monkeypatch.setitem(METRICS, "ks", METRICS["ks"].model_copy(update={"digits": 2}))
    assert format_metric("ks", 0.5961538) == "0.60"
    assert fmt_value(0.5961538, metric="ks") == "0.60" and fmt_value(0.5961538) == "0.5962"
    assert fmt_value(2.345, 1) == "2.3" and fmt_value(None, missing="-") == "-" and fmt_value(3) == "3"


# --------------------------------------------------------------------------- adding a metric is one entry


def test_a_new_metric_is_one_catalogue_entry(monkeypatch):
    """A throw-away metric (the event rate among the riskiest tenth of the scores, the docs'
    example) registered in the catalogue alone: the spec accepts it in threshold and champion
    rules, the evaluation computes it, the candidates table shows it with its digits, the
    comparisons and the gate judge it. No other code knows its name."""
    from models.metrics import METRICS, ROW_COMPARABLE, MetricInfo
    from models.records.gate import ChampionRescoring
    from tasks.compare import bootstrap, point_only
    from tasks.evaluate import CandidateEvaluation, candidates_table, select_best
    from tasks.gate import GateInputs, evaluate_gate
    from tasks.report import candidates_markdown

    def top_decile_event_rate(y, p):
        y, p = np.asarray(y, float), np.asarray(p, float)
        k = max(1, len(p) // 10)
        return float(y[np.argsort(-p, kind="stable")[:k]].mean())

    monkeypatch.setitem(METRICS, "top_decile_event_rate", MetricInfo(
        higher_is_better=True, tasks=frozenset({"binary_classification"}), fn=top_decile_event_rate,
        row_comparable=True, shown=True, digits=2, description="event rate among the 10 % riskiest scores"))
    assert "top_decile_event_rate" in ROW_COMPARABLE

    y, p, q, *_ = _golden_sample()
    data = builtin_spec_dict("credit_risk")
    data["gate"]["rules"] = [
        {"kind": "threshold", "metric": "top_decile_event_rate", "min": 0.5},
        {"kind": "champion", "metric": "top_decile_event_rate", "test": "not_worse", "method": "bootstrap",
         "n_boot": 200},
    ]
    spec = parse_spec(data)
    metrics = compute_metrics(spec, y, p)
    expected = top_decile_event_rate(y, p)
    assert metrics["top_decile_event_rate"] == expected == pytest.approx(y[np.argsort(-p, kind="stable")[:40]].mean())

    evaluations = [CandidateEvaluation("a", "logistic_regression", metrics=metrics),
                   CandidateEvaluation("b", "logistic_regression", metrics=compute_metrics(spec, y, q))]
    assert select_best(evaluations, "top_decile_event_rate").name == (
        "a" if expected > evaluations[1].metrics["top_decile_event_rate"] else "b")
    rows = candidates_table(evaluations, spec, "a")
    assert rows[0]["top_decile_event_rate"] == round(expected, 6)
    assert f"| {expected:.2f} |" in candidates_markdown(rows, spec.task)

    c = point_only("top_decile_event_rate", y, p, q)
    assert c.diff == pytest.approx(expected - top_decile_event_rate(y, q))
    b = bootstrap("top_decile_event_rate", y, p, q, n_boot=200)
    assert b.replicates == 200 and b.ci_low < b.diff < b.ci_high

    gate = evaluate_gate(spec, metrics, GateInputs(y, p, champion=ChampionRescoring(version=1, scores=q)))
    threshold, champion = [v for v in gate.verdicts if v.rule != "sanity"]
    assert threshold.passed == (expected >= 0.5) and threshold.sentence.startswith(f"top_decile_event_rate = {expected:.2f}")
    assert champion.comparison.method == "bootstrap" and champion.comparison.diff == pytest.approx(c.diff)
    assert champion.sentence.startswith(f"top_decile_event_rate {expected:.2f} vs champion v1")


def test_every_catalogue_metric_is_documented():
    from pathlib import Path

    from models.metrics import METRICS

    page = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    rows = {line.split("|")[1].strip().strip("`") for line in page.splitlines() if line.startswith("| `")}
    assert set(METRICS) <= rows, sorted(set(METRICS) - rows)
