"""The evidence a version records about its development data (issue 12, sections 3 and 6):
duplicates counted per fold, the holdout's period, per-fold walk-forward metrics with dates, and
a drift reference that is the whole development sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.spec import find_spec
from tasks.leakage import duplicate_rows
from tasks.load import (
    load_source,
    modelling_table,
    parse_declared_types,
    split_out_of_time,
)
from tasks.split import Fold, SplitPlan, plan_split
from tests.helpers import BUILTIN_SPECS


@pytest.fixture(scope="module")
def market():
    """market_forecast's development modelling table (1950-2015) and its walk-forward plan."""
    spec = find_spec("market_forecast", BUILTIN_SPECS)
    raw = parse_declared_types(load_source(spec), spec)
    table = modelling_table(split_out_of_time(raw, spec)[0], spec)
    return spec, table, plan_split.fn(table, spec)


def test_walk_forward_duplicates_are_counted_against_each_folds_own_training_rows(market):
    spec, table, plan = market
    dup = duplicate_rows(spec, table, plan)
    # pooled over every fold's training rows, 3,971 of the 4,970 holdout rows (80 %) were counted:
    # the earlier test blocks are training rows of the later folds
    assert dup["holdout_rows"] == 4970 and len(dup["per_fold"]) == 5
    assert dup["duplicated_in_training"] == 0 and dup["share"] == 0.0
    assert [f["test_rows"] for f in dup["per_fold"]] == [994] * 5


def test_a_test_row_copying_a_row_of_its_own_folds_training_window_is_counted(market):
    spec, table, _ = market
    small = table.iloc[:300].reset_index(drop=True)
    small = pd.concat([small, small.iloc[[10, 20]], small.iloc[[250]]], ignore_index=True)  # rows 300-302
    # fold 0 trains on 0-199 and tests 200-249 plus the copies of rows 10 and 20 (300, 301);
    # fold 1 trains on 0-249 and tests 250-299 plus the copy of row 250 (302), which is a test row of
    # fold 1 itself, not a training row: not a duplicate
    plan = SplitPlan("walk_forward", [Fold(np.arange(200), np.r_[np.arange(200, 250), 300, 301]),
                                      Fold(np.arange(250), np.r_[np.arange(250, 300), 302])],
                     final_train=np.arange(303), refit_final=True)
    dup = duplicate_rows(spec, small, plan)
    assert [f["duplicated_in_training"] for f in dup["per_fold"]] == [2, 0]
    assert dup["duplicated_in_training"] == 2 and dup["holdout_rows"] == 103
    assert dup["share"] == pytest.approx(2 / 103)
