"""End to end (issue 16): credit_risk's out-of-time rows are scored twice through ``finml score``
(ledgered at two as-of dates), their real outcomes arrive later through ``finml outcomes``, and
the back-test's figures agree with an independent computation here (scipy's beta and binom, a
hand DeLong); outcomes that cannot be joined are counted, never dropped."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from flows.cli import app
from models.ledger import read_ledger
from models.spec import find_spec
from tasks.load import load_source, split_out_of_time
from tests.helpers import BUILTIN_SPECS

pytestmark = pytest.mark.usefixtures("prefect_api")


def _hand_delong(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """AUC and its DeLong variance from the placements, written out here (DeLong et al. 1988)."""
    pos, neg = s[y == 1], s[y == 0]
    greater = (pos[:, None] > neg[None, :]).astype(float) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = greater.mean(axis=1), greater.mean(axis=0)
    return float(v10.mean()), float(np.var(v10, ddof=1) / len(pos) + np.var(v01, ddof=1) / len(neg))


@pytest.fixture()
def credit_registry(trained, tmp_path, monkeypatch):
    """A copy of the session's trained credit_risk (the ledger is written into it, not the shared one)."""
    registry = tmp_path / "registry"
    shutil.copytree(trained["registry"] / "credit_risk", registry / "credit_risk")
    for store in ("ledger", "outcomes"):  # what other tests scored with the shared registry is not this test's
        shutil.rmtree(registry / "credit_risk" / store, ignore_errors=True)
    (registry / "credit_risk" / "backtests.jsonl").unlink(missing_ok=True)
    monkeypatch.setenv("FINML_REGISTRY_DIR", str(registry))
    monkeypatch.setenv("FINML_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("FINML_SPECS_DIR", str(BUILTIN_SPECS))
    return registry


def test_late_outcomes_of_ledgered_rows_give_the_supervisors_tests(credit_registry, tmp_path):
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    _, oot = split_out_of_time(load_source(spec), spec)
    batch = tmp_path / "oot.csv"
    oot.drop(columns=[spec.target.column]).to_csv(batch, index=False)
    later = tmp_path / "oot_later.csv"  # the same ids three months on: incomes fell, debts rose
    moved = oot.drop(columns=[spec.target.column]).assign(Income=oot["Income"] * 0.6, Debt=oot["Debt"] * 2 + 500)
    moved.to_csv(later, index=False)
    runner = CliRunner()
    first = runner.invoke(app, ["score", "credit_risk", "--batch", str(batch), "--out", str(tmp_path / "p1.parquet"),
                                "--as-of", "2025-01-31"])
    assert first.exit_code == 0, first.output
    assert f"{len(oot)} row(s) recorded in the scoring ledger" in first.output
    second = runner.invoke(app, ["score", "credit_risk", "--batch", str(later), "--out", str(tmp_path / "p2.parquet"),
                                 "--as-of", "2025-04-30"])
    assert second.exit_code == 0, second.output
    scored = pd.read_parquet(tmp_path / "p1.parquet")
    assert set(scored["grade"].astype(str)) <= {"A", "B", "C", "D", "E", "F"}
    ledger = read_ledger(credit_registry, "credit_risk")
    assert len(ledger) == 2 * len(oot) and sorted(ledger["as_of"].dt.strftime("%Y-%m-%d").unique()) == [
        "2025-01-31", "2025-04-30"]

    ids = oot["rownames"].astype(int)
    outcomes = pd.DataFrame({"rownames": ids, "Status": oot[spec.target.column], "outcome_date": "2025-03-31"}
                            ).iloc[[0, *range(2, len(ids))]]  # the second id's outcome comes below, too early
    extra = pd.DataFrame({"rownames": [10**7, int(ids.iloc[0]), int(ids.iloc[1])],
                          "Status": ["bad", "good", "bad"], "outcome_date": ["2025-03-31", "2025-03-31", "2024-12-01"]})
    labels = tmp_path / "outcomes.csv"
    pd.concat([outcomes, extra]).to_csv(labels, index=False)
    result = runner.invoke(app, ["outcomes", "credit_risk", "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    assert f"{len(oot) + 2} outcome(s) received, {len(oot) - 2} joined to the ledger, 4 left out" in result.output
    assert "1 outcome(s) have an id that was never scored (e.g. 10000000)" in result.output
    assert f"2 outcome(s) repeat an id within the file (every copy left out) (e.g. {ids.iloc[0]})" in result.output
    assert f"1 outcome(s) are dated before the record was first scored (e.g. {ids.iloc[1]})" in result.output

    record = [json.loads(line) for line in (credit_registry / "credit_risk" / "backtests.jsonl").read_text().splitlines()][-1]
    assert record["join"]["left_out"] == {"unknown_id": 1, "duplicated": 2, "already_recorded": 0, "before_score": 1,
                                          "outside_window": 0}
    # the independent computation: the January scores of the joined ids and their real outcomes
    january = scored.assign(id=scored["rownames"].astype(int)).set_index("id")
    joined_ids = ids[~ids.isin([ids.iloc[0], ids.iloc[1]])]
    y = (oot.set_index("rownames").loc[joined_ids, spec.target.column] == spec.target.positive).astype(int).to_numpy()
    p = january.loc[joined_ids, "score"].to_numpy()
    (version,) = record["versions"]
    assert version["obligors"] == len(y) and version["defaults"] == int(y.sum())
    grades = january.loc[joined_ids, "grade"].astype(str).to_numpy()
    for row in version["rating"]["grades"]:
        inside = grades == row["grade"]
        n, d = int(inside.sum()), int(y[inside].sum())
        assert (row["obligors"], row["defaults"]) == (n, d), row["grade"]
        if n:
            pd_g = float(p[inside].mean())
            assert row["jeffreys_p"] == pytest.approx(stats.beta.cdf(pd_g, d + 0.5, n - d + 0.5), rel=1e-9)
            assert row["binomial_p"] == pytest.approx(stats.binom.sf(d - 1, n, pd_g), rel=1e-9)
    meta = json.loads((credit_registry / "credit_risk" / "versions" / "1" / "metadata.json").read_text())
    auc, var = _hand_delong(y, p)
    test = version["auc_test"]
    assert test["auc_initial"] == pytest.approx(meta["metrics"]["roc_auc"])
    assert test["auc_current"] == pytest.approx(auc, abs=1e-12)
    s = (meta["metrics"]["roc_auc"] - auc) / math.sqrt(var)
    assert test["statistic"] == pytest.approx(s, rel=1e-9) and test["p_value"] == pytest.approx(stats.norm.sf(s), rel=1e-9)
    shares = np.array([r["obligors"] for r in version["rating"]["grades"]]) / len(y)
    k = len(shares)
    cv = math.sqrt(k * float(((shares - 1 / k) ** 2).sum()))
    assert version["rating"]["concentration"]["herfindahl_index"] == pytest.approx(
        1 + math.log((cv * cv + 1) / k) / math.log(k), rel=1e-9)
    assert version["concentration_initial"]["herfindahl_index"] == meta["rating"]["concentration"]["herfindahl_index"]

    vintages = {r["vintage"]: r for r in record["vintages"]["rows"]}
    assert set(vintages) == {"2025Q1", "2025Q2"}
    q1, q2 = vintages["2025Q1"], vintages["2025Q2"]
    assert q1["matured"] == len(y) and q1["event_rate"] == pytest.approx(y.mean())
    assert q1["auc"] == pytest.approx(auc, abs=1e-12)
    assert q1["expected_event_rate"] == pytest.approx(january["score"].mean())  # beside it, from the scores alone
    assert q2["matured"] == 0 and q2["event_rate"] is None and q2["expected_auc"] is not None
    assert "assumes the model stays calibrated" in record["vintages"]["estimate"]["warning"]

    migration = record["migration"]
    assert (migration["first_date"], migration["second_date"]) == ("2025-01-31", "2025-04-30")
    counts = np.array(migration["counts"])
    assert counts.sum() == len(oot) and np.triu(counts, 1).sum() > 0  # lower incomes, more debt: worse grades
    assert migration["upper_mwb"] is not None and 0 < migration["upper_mwb"] <= 1

    folder = tmp_path / "reports" / "credit_risk" / "backtest"
    (report,) = folder.glob("*/backtest.html")
    html = report.read_text()
    assert "Jeffreys" in html and "Migration of grades from 2025-01-31 to 2025-04-30" in html and "2025Q1" in html
    for name in ("grades", "auc_test", "concentration", "migration", "vintages", "outcomes_join"):
        assert (report.parent / f"{name}.csv").is_file(), name
    ledger_out = runner.invoke(app, ["ledger", "credit_risk"])
    assert ledger_out.exit_code == 0 and "2025-01" in ledger_out.output and "2025-04" in ledger_out.output
    verify = runner.invoke(app, ["registry", "verify", "credit_risk"])
    assert verify.exit_code == 0, verify.output
    again = runner.invoke(app, ["backtest", "credit_risk", "--json"])  # the outcomes joined so far, as JSON
    assert again.exit_code == 0, again.output
    result = json.loads(again.stdout)
    assert result["join"] is None and result["backtest"]["matured"] == len(oot) - 2 and result["changes"] == []
    assert len(list(folder.glob("*/backtest.html"))) == 2
