"""The vintage table (tasks/vintages.py) against independent computations: scipy.stats.beta and
binom, scikit-learn's roc_auc_score, a hand DeLong over all pairs, plain means; vintages that are
empty of outcomes, one-class or partly matured; the downturn seen by the realised tests and missed
by the estimate beside them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from models.performance_estimate import WARNING, estimate_performance, expected_auc_if_calibrated
from models.spec.rating import TrafficLightPolicy
from tasks.vintages import VINTAGE_COLUMNS, vintage_labels, vintage_table


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def joined_frame(n: int, months: list[str], versions: list[int], seed: int, shift: float = 0.0) -> pd.DataFrame:
    """A ledger joined to outcomes: PDs of a calibrated logistic model, outcomes drawn at logit + shift."""
    rng = np.random.default_rng(seed)
    p = sigmoid(-1.5 + rng.normal(size=n))
    y = (rng.random(n) < sigmoid(np.log(p / (1 - p)) + shift)).astype(float)
    month = rng.choice(months, size=n)
    day = rng.integers(1, 28, size=n)
    as_of = pd.to_datetime([f"{m}-{d:02d}T12:00:00Z" for m, d in zip(month, day, strict=True)], utc=True)
    return pd.DataFrame({"id": np.arange(n), "as_of": as_of, "model_version": rng.choice(versions, size=n),
                         "score": p, "grade": None, "outcome": y, "outcome_date": as_of + pd.Timedelta(days=365)})


def hand_delong_interval(y, s, z=1.959963984540054):
    """DeLong's structural components over every (event, non-event) pair, then the normal interval."""
    x, w = s[y == 1], s[y == 0]
    psi = (x[:, None] > w[None, :]) + 0.5 * (x[:, None] == w[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    auc = psi.mean()
    se = math.sqrt(v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(w))
    return max(0.0, auc - z * se), min(1.0, auc + z * se)


# --------------------------------------------------------------------------- labels


def test_vintage_labels_are_utc_months_or_quarters():
    ts = pd.Series([pd.Timestamp("2026-03-31T23:30:00-02:00"), pd.Timestamp("2026-01-05T00:00:00Z"),
                    pd.Timestamp("2025-12-31T23:59:59")])  # naive: taken as UTC
    assert vintage_labels(ts, "month").tolist() == ["2026-04", "2026-01", "2025-12"]
    assert vintage_labels(ts, "quarter").tolist() == ["2026Q2", "2026Q1", "2025Q4"]


# --------------------------------------------------------------------------- figures


def test_every_figure_agrees_with_an_independent_computation():
    df = joined_frame(1200, ["2026-01", "2026-02"], [1, 2], seed=3)
    df.loc[df.sample(frac=0.3, random_state=1).index, "outcome"] = np.nan  # not yet matured
    table = vintage_table(df, "month", draws=50, seed=7)
    assert [(r["vintage"], r["model_version"]) for r in table.rows] == [
        ("2026-01", 1), ("2026-01", 2), ("2026-02", 1), ("2026-02", 2)]
    assert list(table.frame().columns) == VINTAGE_COLUMNS and len(table.frame()) == 4
    labels = df["as_of"].dt.strftime("%Y-%m")
    for row in table.rows:
        g = df[(labels == row["vintage"]) & (df["model_version"] == row["model_version"])]
        m = g[g["outcome"].notna()]
        y, p = m["outcome"].to_numpy().astype(int), m["score"].to_numpy()
        n, d, pd_bar = len(m), int(y.sum()), p.mean()
        assert row["rows"] == len(g) and row["matured"] == n and row["events"] == d
        assert row["matured_share"] == pytest.approx(n / len(g))
        assert row["event_rate"] == pytest.approx(d / n)
        assert row["mean_pd_matured"] == pytest.approx(pd_bar) and row["mean_pd"] == pytest.approx(g["score"].mean())
        assert row["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        low, high = hand_delong_interval(y, p)
        assert row["auc_low"] == pytest.approx(low, abs=1e-9) and row["auc_high"] == pytest.approx(high, abs=1e-9)
        assert row["jeffreys_p"] == pytest.approx(stats.beta.cdf(pd_bar, d + 0.5, n - d + 0.5))
        assert row["binomial_p"] == pytest.approx(stats.binom.sf(d - 1, n, pd_bar))
        assert row["jeffreys_light"] == TrafficLightPolicy().colour(row["jeffreys_p"])
        # the estimate is on all the vintage's rows, matured or not
        est = estimate_performance(g["score"].to_numpy(), draws=50, seed=row["estimate_seed"])
        assert row["expected_event_rate"] == pytest.approx(g["score"].mean())
        assert row["expected_auc"] == pytest.approx(expected_auc_if_calibrated(g["score"].to_numpy()))
        assert (row["expected_auc_low"], row["expected_auc_high"]) == (est.auc_low, est.auc_high)
        assert (row["expected_event_rate_low"], row["expected_event_rate_high"]) == (est.event_rate_low,
                                                                                     est.event_rate_high)
    assert table.estimate["warning"] == WARNING and table.estimate["draws"] == 50 and table.estimate["seed"] == 7


def test_quarters_pool_their_months():
    df = joined_frame(600, ["2026-01", "2026-02", "2026-04"], [1], seed=4)
    rows = vintage_table(df, "quarter", draws=20).rows
    assert [r["vintage"] for r in rows] == ["2026Q1", "2026Q2"]
    assert rows[0]["rows"] == int(df["as_of"].dt.month.isin([1, 2]).sum())


def test_a_vintages_estimate_does_not_move_when_other_vintages_arrive():
    df = joined_frame(800, ["2026-01", "2026-02"], [1], seed=5)
    early = df[df["as_of"].dt.month == 1]
    alone = vintage_table(early, draws=40, seed=3).rows[0]
    beside = vintage_table(df, draws=40, seed=3).rows[0]
    assert alone["vintage"] == beside["vintage"] == "2026-01"
    assert alone == beside


def test_the_policy_colours_and_is_printed():
    df = joined_frame(300, ["2026-01"], [1], seed=6)
    policy = TrafficLightPolicy(red=0.4, amber=0.9)
    table = vintage_table(df, policy=policy, draws=20)
    row = table.rows[0]
    assert row["jeffreys_light"] == policy.colour(row["jeffreys_p"])
    assert table.policy == {"red": 0.4, "amber": 0.9, "text": policy.text()}


# --------------------------------------------------------------------------- thin vintages


def test_no_rows_give_an_empty_table():
    df = joined_frame(10, ["2026-01"], [1], seed=0).iloc[:0]
    table = vintage_table(df)
    assert table.rows == [] and table.long_run is None and table.long_run_by_version == []
    assert table.frame().empty and list(table.frame().columns) == VINTAGE_COLUMNS


def test_a_vintage_without_matured_outcomes_has_only_its_estimate():
    df = joined_frame(200, ["2026-05"], [3], seed=8)
    df["outcome"] = np.nan
    row = vintage_table(df, draws=30).rows[0]
    assert row["rows"] == 200 and row["matured"] == 0 and row["matured_share"] == 0.0 and row["events"] == 0
    for key in ("event_rate", "mean_pd_matured", "auc", "auc_low", "auc_high", "jeffreys_p", "jeffreys_light",
                "binomial_p", "binomial_light"):
        assert row[key] is None, key
    assert row["expected_event_rate"] == pytest.approx(df["score"].mean()) and row["expected_auc"] > 0.6
    assert vintage_table(df, draws=30).long_run is None


def test_a_one_class_vintage_has_no_auc_but_its_calibration_tests():
    df = joined_frame(150, ["2026-01"], [1], seed=9)
    df["outcome"] = 0.0
    row = vintage_table(df, draws=20).rows[0]
    assert row["auc"] is None and row["auc_low"] is None and row["auc_high"] is None
    n, pd_bar = 150, df["score"].mean()
    assert row["jeffreys_p"] == pytest.approx(stats.beta.cdf(pd_bar, 0.5, n + 0.5))
    assert row["binomial_p"] == pytest.approx(1.0)  # P(X >= 0)


def test_a_single_event_gives_an_auc_without_a_delong_interval():
    df = joined_frame(100, ["2026-01"], [1], seed=10)
    df["outcome"] = 0.0
    df.loc[df["score"].idxmax(), "outcome"] = 1.0
    row = vintage_table(df, draws=20).rows[0]
    assert row["auc"] == pytest.approx(1.0) and row["auc_low"] is None and row["auc_high"] is None


# --------------------------------------------------------------------------- long run


def test_the_long_run_rate_averages_complete_vintages_only_unless_told():
    df = joined_frame(900, ["2025-10", "2025-11", "2025-12"], [1, 2], seed=11)
    december = df["as_of"].dt.month == 12
    df.loc[december & (df.index % 2 == 0), "outcome"] = np.nan  # December half matured
    table = vintage_table(df, draws=20)
    labels = df["as_of"].dt.strftime("%Y-%m")
    complete = df[~december]
    rates = complete.groupby(labels[~december])["outcome"].mean()
    lr = table.long_run
    assert lr["model_version"] is None and lr["left_out"] == ["2025-12"] and lr["min_matured_share"] == 1.0
    assert lr["matured"] == len(complete)
    assert lr["long_run_default_rate"] == pytest.approx(rates.mean())
    assert lr["long_run_mean_pd"] == pytest.approx(complete.groupby(labels[~december])["score"].mean().mean())
    assert [r["model_version"] for r in table.long_run_by_version] == [1, 2]
    v2 = complete[complete["model_version"] == 2]
    assert table.long_run_by_version[1]["long_run_default_rate"] == pytest.approx(
        v2.groupby(labels[v2.index])["outcome"].mean().mean())
    loose = vintage_table(df, draws=20, long_run_min_matured_share=0.4).long_run
    assert loose["left_out"] == [] and [v["vintage"] for v in loose["vintages"]] == ["2025-10", "2025-11", "2025-12"]


# --------------------------------------------------------------------------- the downturn, side by side


def test_in_a_downturn_the_realised_tests_turn_red_while_the_estimate_beside_them_misses_it():
    df = joined_frame(3000, ["2026-03"], [1], seed=12, shift=1.0)  # the same scores, logit + 1 outcomes
    table = vintage_table(df, draws=200, seed=1)
    row = table.rows[0]
    assert row["event_rate"] > row["expected_event_rate_high"] + 0.05
    assert row["jeffreys_light"] == "red" and row["binomial_light"] == "red" and row["jeffreys_p"] < 1e-10
    assert row["auc"] == pytest.approx(row["expected_auc"], abs=0.03)  # the ranking holds: only the level is missed
    assert "downturn" in table.estimate["warning"]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("change, match", [
    (lambda d: d.drop(columns="score"), r"lack column\(s\) \['score'\]"),
    (lambda d: d.assign(score=d["score"].where(d.index > 0, 1.2)), "column 'score'.*1 row"),
    (lambda d: d.assign(outcome=d["outcome"].where(d.index > 1, 2.0)), "column 'outcome'.*2 row"),
    (lambda d: d.assign(model_version=1.5), "column 'model_version'"),
    (lambda d: d.assign(as_of=d["as_of"].where(d.index > 0, pd.NaT)), "column 'as_of' has 1 missing"),
    (lambda d: d.assign(as_of="not a date"), "column 'as_of' must hold timestamps"),
])
def test_bad_input_is_refused_naming_the_column(change, match):
    df = joined_frame(20, ["2026-01"], [1], seed=13)
    with pytest.raises(ValueError, match=match):
        vintage_table(change(df), draws=5)


@pytest.mark.parametrize("kwargs, match", [({"vintage": "week"}, "vintage must be one of"),
                                           ({"long_run_min_matured_share": 0.0}, "long_run_min_matured_share"),
                                           ({"draws": 0}, "draws")])
def test_bad_settings_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vintage_table(joined_frame(20, ["2026-01"], [1], seed=14), **kwargs)
