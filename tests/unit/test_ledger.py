"""The scoring ledger (models.ledger, models.parquet_parts) and the join of late outcomes
(tasks.outcomes): committed parts only, tamper evidence, every outcome joined or counted."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest

from models.errors import RegistryError
from models.ledger import append_ledger, id_text, ledger_frame, ledger_store, ledger_summary, read_ledger, utc_dates
from models.spec import find_spec
from tasks.ledger import ledger_scored_rows, unledgered_reason
from tests.helpers import BUILTIN_SPECS
from tasks.outcomes import (
    OutcomesError,
    backtest_rows,
    join_outcomes,
    read_outcomes,
    recorded_outcomes,
    store_outcomes,
)

UTC = "UTC"


@pytest.fixture()
def root(tmp_path):
    (tmp_path / "m").mkdir()
    return tmp_path


def _two_runs(root):
    first = ledger_frame(pd.Series([1, 2, 3]), pd.Series(["2026-01-05", "2026-02-01", "2026-02-03"]), 1,
                         [0.1, 0.2, 0.3], ["A", "B", "C"], "run-1", "2026-02-04T00:00:00")
    append_ledger(root, "m", first, "run-1")
    second = ledger_frame(pd.Series([1, 2]), "2026-06-01", 2, [0.15, 0.25], None, "run-2", "2026-06-01")
    append_ledger(root, "m", second, "run-2")
    return read_ledger(root, "m")


def test_ids_are_text_the_same_way_for_ledger_and_outcomes():
    assert id_text(pd.Series([1.0, 2.0, np.nan])).tolist() == ["1", "2", None]  # a CSV integer column with a gap
    assert id_text(pd.Series([7, 8])).tolist() == ["7", "8"]
    assert id_text(pd.Series(["a ", "", None])).tolist() == ["a", None, None]
    # a fractional or infinite number keeps its float text; a whole one loses ".0"; NaN is missing
    assert id_text(pd.Series([1.5, 3.0, np.nan, np.inf])).tolist() == ["1.5", "3", None, "inf"]
    assert id_text(pd.Series([True, False])).tolist() == ["True", "False"]
    assert id_text(np.array([10, 20], dtype="uint32")).tolist() == ["10", "20"]


def test_dates_of_any_time_zone_land_in_their_utc_month(root):
    """A date's partition is its UTC month, from a naive (taken as UTC), an aware or a text date."""
    aware = pd.Series(pd.to_datetime(["2025-12-31 23:30"]).tz_localize("America/Los_Angeles"))  # 2026-01-01 07:30 UTC
    naive = pd.Series(pd.to_datetime(["2025-12-31 23:30"]))
    text = pd.Series(["2026-02-28T23:59:59-01:00"])  # 2026-03-01 00:59:59 UTC
    assert str(utc_dates(aware, "d").iloc[0]) == "2026-01-01 07:30:00+00:00"
    assert str(utc_dates(naive, "d").iloc[0]) == "2025-12-31 23:30:00+00:00"
    assert utc_dates(aware, "d").dtype == utc_dates(naive, "d").dtype == utc_dates(text, "d").dtype == "datetime64[ns, UTC]"
    dates = pd.concat([aware.dt.tz_convert("UTC"), utc_dates(naive, "d"), utc_dates(text, "d")], ignore_index=True)
    append_ledger(root, "m", ledger_frame(pd.Series([1, 2, 3]), dates, 1, [0.1, 0.2, 0.3], None, "r", "2026-03-02"), "r")
    assert [(p.partition, p.rows) for p in ledger_store(root, "m").parts()] == [
        ("month=2025-12", 1), ("month=2026-01", 1), ("month=2026-03", 1)]


def test_a_run_is_split_by_month_committed_and_read_back_in_order(root):
    ledger = _two_runs(root)
    parts = ledger_store(root, "m").parts()
    assert [p.partition for p in parts] == ["month=2026-01", "month=2026-02", "month=2026-06"]
    assert [p.rows for p in parts] == [1, 2, 2]
    assert ledger["id"].tolist() == ["1", "2", "3", "1", "2"]
    assert ledger["model_version"].tolist() == [1, 1, 1, 2, 2]
    assert ledger["grade"].tolist() == ["A", "B", "C", None, None]
    assert str(ledger["as_of"].dt.tz) == UTC
    summary = ledger_summary(ledger)
    assert [(s["month"], s["model_version"], s["rows"]) for s in summary] == [("2026-01", 1, 1), ("2026-02", 1, 2),
                                                                               ("2026-06", 2, 2)]
    assert summary[1]["mean_score"] == pytest.approx(0.25)
    mode = os.stat(root / "m" / "ledger" / parts[0].path).st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)  # written once, read-only
    assert ledger_store(root, "m").verify() == []


def test_an_edited_part_is_refused_and_an_uncommitted_one_is_ignored_and_reported(root):
    _two_runs(root)
    store = ledger_store(root, "m")
    debris = store.dir / "month=2026-06" / "part-crashed.parquet"
    ledger_frame(pd.Series([9]), "2026-06-02", 2, [0.9], None, "x", "2026-06-02").to_parquet(debris)
    assert len(read_ledger(root, "m")) == 5  # a part no manifest line commits is not read
    assert store.verify() == ["ledger part month=2026-06/part-crashed.parquet is not committed by the manifest "
                              "(a crashed write)"]
    target = store.dir / store.parts()[0].path
    os.chmod(target, 0o644)
    ledger_frame(pd.Series([1]), "2026-01-05", 1, [0.99], ["F"], "run-1", "2026-02-04").to_parquet(target)
    with pytest.raises(RegistryError, match="changed since it was written"):
        read_ledger(root, "m")
    assert any("changed since it was written" in p for p in store.verify())


def test_the_ledger_needs_the_model_folder(tmp_path):
    frame = ledger_frame(pd.Series([1]), "2026-01-05", 1, [0.1], None, "r", "2026-01-05")
    with pytest.raises(RegistryError, match="no model named 'nope'"):
        append_ledger(tmp_path, "nope", frame, "r")


def test_each_outcome_is_joined_to_the_score_at_its_date_or_counted(root):
    ledger = _two_runs(root)
    outcomes = pd.DataFrame({"id": ["1", "2", "2", "3", "9"], "outcome": [1, 0, 1, 0, 1],
                             "outcome_date": pd.to_datetime(["2026-07-01", "2026-07-01", "2026-07-02", "2025-01-01",
                                                             "2026-07-01"], utc=True)})
    join = join_outcomes(ledger, outcomes, recorded_outcomes(root, "m"), 12, "o-1")
    assert join.received == 5 and len(join.joined) == 1
    assert join.counts == {"unknown_id": 1, "duplicated": 2, "already_recorded": 0, "before_score": 1,
                           "outside_window": 0}
    row = join.joined.iloc[0]
    assert (row["id"], row["model_version"], row["run_id"], row["score"]) == ("1", 2, "run-2", 0.15)  # the later score
    assert join.examples["unknown_id"] == ["9"] and join.examples["before_score"] == ["3"]
    assert join.received == len(join.joined) + join.left_out
    assert "2 outcome(s) repeat an id within the file (every copy left out) (e.g. 2)" in join.sentences()
    store_outcomes(root, "m", join.joined, "o-1", "2026-12-04T00:00:00")
    again = join_outcomes(ledger, outcomes.iloc[[0]], recorded_outcomes(root, "m"), 12, "o-2")
    assert again.counts["already_recorded"] == 1 and again.joined.empty
    rows = backtest_rows(ledger, recorded_outcomes(root, "m"))  # id 1's January score is superseded by June's
    assert rows["id"].tolist() == ["2", "3", "1", "2"]
    assert rows["outcome"].fillna(-1).tolist() == [-1, -1, 1, -1]


def test_an_outcome_later_than_the_window_after_the_last_score_is_counted(root):
    ledger = _two_runs(root)
    outcomes = pd.DataFrame({"id": ["3", "1"], "outcome": [1, 0],
                             "outcome_date": pd.to_datetime(["2027-02-04", "2027-06-01"], utc=True)})
    join = join_outcomes(ledger, outcomes, recorded_outcomes(root, "m"), 12, "o")
    assert join.counts["outside_window"] == 1 and join.examples["outside_window"] == ["3"]  # scored 2026-02-03
    assert join.joined["id"].tolist() == ["1"]  # 2027-06-01 is exactly 12 months after 2026-06-01: inside


def test_a_file_of_only_unknown_ids_fails(root):
    ledger = _two_runs(root)
    outcomes = pd.DataFrame({"id": ["70", "71"], "outcome": [1, 0],
                             "outcome_date": pd.to_datetime(["2026-07-01"] * 2, utc=True)})
    with pytest.raises(OutcomesError, match="none of the 2 outcome id"):
        join_outcomes(ledger, outcomes, recorded_outcomes(root, "m"), 12, "o")


def test_an_outcomes_file_is_read_with_the_targets_labels_and_refused_naming_the_column(tmp_path):
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    good = tmp_path / "good.csv"
    pd.DataFrame({"rownames": [3, 4], "Status": ["bad", "good"], "outcome_date": ["2026-05-01", "2026-05-02"]}
                 ).to_csv(good, index=False)
    frame = read_outcomes(good, spec)
    assert frame["id"].tolist() == ["3", "4"] and frame["outcome"].tolist() == [1, 0]
    assert frame["outcome_date"].iloc[0] == pd.Timestamp("2026-05-01", tz=UTC)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"rownames": [3], "Status": ["maybe"], "outcome_date": ["2026-05-01"]}).to_csv(bad, index=False)
    with pytest.raises(OutcomesError, match=r"bad.csv: column 'Status' holds 1 value\(s\) that are not an outcome"):
        read_outcomes(bad, spec)
    nodate = tmp_path / "nodate.csv"
    pd.DataFrame({"rownames": [3], "outcome": [1]}).to_csv(nodate, index=False)
    with pytest.raises(OutcomesError, match="missing column.*'outcome_date'"):
        read_outcomes(nodate, spec)
    baddate = tmp_path / "baddate.csv"
    pd.DataFrame({"rownames": [3, 4], "outcome": [1, 0], "outcome_date": ["2026-05-01", "soon"]}
                 ).to_csv(baddate, index=False)
    with pytest.raises(OutcomesError, match=r"column .outcome_date.: 1 row\(s\) not an ISO 8601 date .*\(first: row 2"):
        read_outcomes(baddate, spec)


def test_a_batch_without_usable_ids_is_not_ledgered_and_says_why(root):
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    assert "has no id column 'rownames'" in unledgered_reason(spec, pd.DataFrame({"Age": [1]}))
    assert "1 row(s) repeat an id" in unledgered_reason(spec, pd.DataFrame({"rownames": [1, 1]}))
    (root / "credit_risk").mkdir()
    table = pd.DataFrame({"rownames": [5, 6], "Age": [30, 40]})
    out = ledger_scored_rows.fn(spec, root, table, np.array([0.04, 0.6]), 3, "run-9", "2026-12-01T10:00:00",
                                as_of="2026-11-30")
    assert out["rows"] == 2 and out["reason"] is None
    ledger = read_ledger(root, "credit_risk")
    assert ledger["grade"].tolist() == ["A", "F"] and ledger["model_version"].tolist() == [3, 3]
    assert (ledger["as_of"] == pd.Timestamp("2026-11-30", tz=UTC)).all()
