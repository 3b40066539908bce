"""Back-testing on inputs a new user gave it (issue 16, found by a fresh tester): Parquet
timestamps in another unit, dates in mixed or ambiguous formats, blank or conflicting outcomes,
text ids like "3071.0", an as-of date in the future, a broken or truncated ledger manifest, a
rewritten last part, an interrupted run's join, and migration between dates that are not adjacent."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.errors import RegistryError, UsageError
from models.ledger import LedgerInputError, append_ledger, id_text, ledger_frame, read_ledger, utc_dates
from models.spec import find_spec
from tasks.backtest import latest_migration
from tasks.ledger import batch_as_of, check_as_of
from tasks.outcomes import (
    OutcomesError,
    backtest_rows,
    join_outcomes,
    read_outcomes,
    recorded_outcomes,
    store_outcomes,
)
from tests.helpers import BUILTIN_SPECS

UTC = "UTC"


@pytest.fixture()
def spec():
    return find_spec("credit_risk", BUILTIN_SPECS)


@pytest.fixture()
def root(tmp_path):
    (tmp_path / "credit_risk").mkdir()
    return tmp_path


def _ledger(root, ids, as_of, scores, run="run-1"):
    frame = ledger_frame(pd.Series(ids), as_of, 1, scores, None, run, "2026-01-05T00:00:00")
    append_ledger(root, "credit_risk", frame, run)
    return read_ledger(root, "credit_risk")


def test_a_parquet_file_with_millisecond_timestamps_joins(root, spec, tmp_path):
    ledger = _ledger(root, [1, 2], "2025-01-31", [0.1, 0.7])
    path = tmp_path / "outcomes.parquet"
    dates = pd.Series(pd.to_datetime(["2025-12-31", "2025-12-31"])).astype("datetime64[ms]")
    pd.DataFrame({"rownames": [1, 2], "Status": ["good", "bad"], "outcome_date": dates}).to_parquet(path)
    outcomes = read_outcomes(path, spec)
    assert str(outcomes["outcome_date"].dtype) == "datetime64[ns, UTC]"
    join = join_outcomes(ledger, outcomes, recorded_outcomes(root, "credit_risk"), 12, "o-1")
    assert join.joined["id"].tolist() == ["1", "2"] and join.joined["outcome"].tolist() == [0, 1]


def test_dates_must_be_iso_8601_and_may_mix_offsets():
    mixed = utc_dates(["2025-12-01T10:00Z", "2025-12-01", "2025-12-01 23:30:00-08:00"], "d")
    assert mixed.tolist() == [pd.Timestamp("2025-12-01 10:00", tz=UTC), pd.Timestamp("2025-12-01", tz=UTC),
                              pd.Timestamp("2025-12-02 07:30", tz=UTC)]
    with pytest.raises(LedgerInputError, match=r"column 'd': 1 row\(s\) not an ISO 8601 date .*value '01/12/2025'"):
        utc_dates(["2025-12-01", "01/12/2025"], "d")  # 12 January or 1 December: refused, not guessed
    with pytest.raises(LedgerInputError, match=r"1 row\(s\) without a date \(first: row 2"):
        utc_dates(["2025-12-01", None], "d")


def test_blank_and_conflicting_outcomes_are_named(spec, tmp_path):
    blank = tmp_path / "blank.csv"
    pd.DataFrame({"rownames": range(10), "outcome": [0, 1] * 4 + [None, None],
                  "outcome_date": "2025-12-31"}).to_csv(blank, index=False)
    with pytest.raises(OutcomesError, match=r"blank.csv: column 'outcome': 2 row\(s\) without an outcome \(first: row 9\)"):
        read_outcomes(blank, spec)
    both = tmp_path / "both.csv"
    pd.DataFrame({"rownames": [1, 2, 3], "outcome": [1, 0, 0], "Status": ["bad", "good", "bad"],
                  "outcome_date": "2025-12-31"}).to_csv(both, index=False)
    with pytest.raises(OutcomesError, match=r"columns 'outcome' and 'Status' disagree in 1 row\(s\) \(first: row 3\)"):
        read_outcomes(both, spec)
    agree = tmp_path / "agree.csv"
    pd.DataFrame({"rownames": [1, 2], "outcome": [1, 0], "Status": ["bad", "good"],
                  "outcome_date": "2025-12-31"}).to_csv(agree, index=False)
    assert read_outcomes(agree, spec)["outcome"].tolist() == [1, 0]


def test_integral_text_ids_match_numeric_ones():
    assert id_text(["3071.0", " X3080 ", "007", "12.50", None]).tolist() == ["3071", "X3080", "007", "12.50", None]
    assert id_text(pd.Series([3071.0, 12.0])).tolist() == ["3071", "12"]


def test_an_as_of_date_after_the_scoring_time_is_refused(spec):
    check_as_of("2025-01-31")
    with pytest.raises(UsageError, match="as_of '2099-01-01' is in the future"):
        check_as_of("2099-01-01")
    dated = spec.model_copy(update={"backtest": spec.backtest.model_copy(update={"as_of": "decided"})})
    table = pd.DataFrame({"rownames": [1, 2], "decided": ["2026-01-04", "2026-03-01"]})
    with pytest.raises(LedgerInputError, match=r"column 'decided': 1 row\(s\) dated after the scoring time"):
        batch_as_of(dated, table, None, "2026-01-05T00:00:00")
    assert batch_as_of(dated, table.iloc[:1], None, "2026-01-05T00:00:00").tolist() == [
        pd.Timestamp("2026-01-04", tz=UTC)]


def test_a_broken_manifest_chain_is_refused_by_every_reader(root):
    _ledger(root, [1, 2], "2025-01-31", [0.1, 0.7])
    _ledger(root, [3], "2025-02-28", [0.2], run="run-2")
    manifest = root / "credit_risk" / "ledger" / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    first = json.loads(lines[0])
    first["rows"] = 99
    manifest.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(RegistryError, match="ledger/manifest.jsonl is broken"):
        read_ledger(root, "credit_risk")


def _joined(root, spec):
    ledger = _ledger(root, [1, 2], "2025-01-31", [0.1, 0.7])
    ledger = _ledger(root, [3, 4], "2025-02-28", [0.2, 0.3], run="run-2")
    outcomes = pd.DataFrame({"id": ["1", "2", "3", "4"], "outcome": [0, 1, 0, 1],
                             "outcome_date": pd.to_datetime(["2025-12-31"] * 4, utc=True)})
    join = join_outcomes(ledger, outcomes, recorded_outcomes(root, "credit_risk"), 12, "o-1")
    store_outcomes(root, "credit_risk", join.joined, "o-1", "2026-01-10T00:00:00",
                   {**join.record(), "file": "outcomes.csv"})
    return join


def test_the_join_is_committed_with_its_outcomes(root, spec):
    join = _joined(root, spec)
    [line] = (root / "credit_risk" / "outcomes" / "manifest.jsonl").read_text().splitlines()
    note = json.loads(line)["note"]
    assert note["received"] == 4 and note["joined"] == 4 and note["file"] == "outcomes.csv"
    assert note["left_out"] == join.record()["left_out"] and note["received_at"] == "2026-01-10T00:00:00"


def test_outcomes_whose_ledger_rows_are_gone_or_rescored_stop_the_back_test(root, spec):
    from models.audit import data_store_problems
    from models.registry import ModelRegistry

    _joined(root, spec)
    registry = ModelRegistry(root, "credit_risk")
    assert data_store_problems(registry) == []
    assert backtest_rows(read_ledger(root, "credit_risk"), recorded_outcomes(root, "credit_risk"))["outcome"].notna().all()
    manifest = root / "credit_risk" / "ledger" / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    # a rewritten last part with its line rewritten to match: the chain cannot see the last line
    last = json.loads(lines[-1])
    part = root / "credit_risk" / "ledger" / last["path"]
    forged = pd.read_parquet(part).assign(score=0.01)
    part.chmod(0o644)
    forged.to_parquet(part, index=False)
    from models.integrity import sha256_file

    last["sha256"] = sha256_file(part)
    manifest.write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")
    with pytest.raises(RegistryError, match=r"2 ledger row\(s\) have a score other than the one their outcome"):
        backtest_rows(read_ledger(root, "credit_risk"), recorded_outcomes(root, "credit_risk"))
    assert any("score other than" in p for p in data_store_problems(registry))
    manifest.write_text("\n".join(lines[:-1]) + "\n")  # the last line removed
    with pytest.raises(RegistryError, match=r"2 joined outcome\(s\) point at ledger rows no longer in the ledger"):
        backtest_rows(read_ledger(root, "credit_risk"), recorded_outcomes(root, "credit_risk"))


def test_migration_is_measured_to_the_latest_earlier_date_sharing_ids(spec):
    scale = spec.rating_scale
    ids = [str(i) for i in range(50)]
    frame = pd.concat([
        pd.DataFrame({"id": ids, "as_of": pd.Timestamp("2025-01-15", tz=UTC), "score": 0.02}),
        pd.DataFrame({"id": [f"o{i}" for i in range(50)], "as_of": pd.Timestamp("2025-03-15", tz=UTC), "score": 0.02}),
        pd.DataFrame({"id": ids, "as_of": pd.Timestamp("2025-04-15", tz=UTC), "score": 0.9}),
    ], ignore_index=True)
    m = latest_migration(spec, frame)
    assert (m["first_date"], m["second_date"], m["obligors"]) == ("2025-01-15", "2025-04-15", 50)
    first = scale.names.index(np.asarray(m["grades"])[np.asarray(m["counts"]).sum(axis=1) > 0][0])
    assert np.asarray(m["counts"])[first].sum() == 50 and m["upper_mwb"] > 0
