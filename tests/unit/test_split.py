"""Splits: stratified holdout, and walk-forward folds that never look ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.features import LABEL_END
from models.spec import find_spec
from tasks.load import load_source, modelling_table, parse_declared_types, split_out_of_time
from tasks.split import SplitError, check_no_lookahead, plan_split, stratified_holdout, walk_forward
from tests.helpers import BUILTIN_SPECS


def test_stratified_holdout_keeps_the_event_rate():
    y = np.array([1] * 100 + [0] * 300)
    plan = stratified_holdout(y, 0.25, seed=1)
    fold = plan.folds[0]
    assert len(fold.test) == 100 and len(fold.train) == 300
    assert set(fold.train).isdisjoint(fold.test)
    assert y[fold.test].mean() == pytest.approx(0.25) and y[fold.train].mean() == pytest.approx(0.25)
    assert not plan.refit_final and np.array_equal(plan.final_train, fold.train)
    # the same seed gives the same holdout
    assert np.array_equal(stratified_holdout(y, 0.25, seed=1).holdout, plan.holdout)


def test_stratified_holdout_rejects_a_single_class():
    with pytest.raises(SplitError, match="single class"):
        stratified_holdout(np.zeros(50), 0.25, seed=1)


def test_walk_forward_folds_are_ordered_with_a_gap():
    plan = walk_forward(1000, n_folds=4, test_share=0.2, gap=5)
    assert [len(f.test) for f in plan.folds] == [50, 50, 50, 50]
    for k, f in enumerate(plan.folds):
        assert f.test[0] == 800 + 50 * k
        assert f.train[0] == 0 and f.train[-1] == f.test[0] - 5 - 1  # expanding window, 5 rows dropped
    assert plan.holdout[-1] == 999 and plan.refit_final and len(plan.final_train) == 1000


def test_walk_forward_needs_enough_training_rows():
    with pytest.raises(SplitError, match="first walk-forward training window"):
        walk_forward(120, n_folds=5, test_share=0.5, gap=5)


def test_no_training_label_reaches_into_the_test_period_on_real_sp500():
    spec = find_spec("market_forecast", BUILTIN_SPECS)
    raw = parse_declared_types(load_source(spec), spec)
    development, later = split_out_of_time(raw, spec)
    assert development["Date"].max() < pd.Timestamp("2016-01-01") <= later["Date"].min()
    table = modelling_table(development, spec)
    plan = plan_split.fn(table, spec)
    assert len(plan.folds) == 5
    for fold in plan.folds:
        last_label_end = table[LABEL_END].iloc[fold.train].max()
        first_test_day = table["Date"].iloc[fold.test].min()
        assert last_label_end < first_test_day
        # and every test row's features come after every training row
        assert table["Date"].iloc[fold.train].max() < first_test_day
    # labels of the development table never use the later (out-of-time) period
    assert table[LABEL_END].max() < later["Date"].min()


def test_lookahead_check_catches_a_gap_shorter_than_the_horizon():
    spec = find_spec("market_forecast", BUILTIN_SPECS)
    raw = parse_declared_types(load_source(spec), spec)
    table = modelling_table(split_out_of_time(raw, spec)[0], spec)
    leaky = walk_forward(len(table), n_folds=5, test_share=0.3, gap=2)  # horizon is 5
    with pytest.raises(SplitError, match="fold 0: a training label ends at"):
        check_no_lookahead(table, leaky, "Date")


def test_the_training_steps_are_the_plain_functions_themselves():
    """One name per step: the plain function is the Prefect task (plain code calls ``.fn``)."""
    from prefect import Task

    import flows.training as training
    import tasks.leakage as leakage
    import tasks.split as split
    import tasks.train as train
    import tasks.validate as validate

    steps = {"plan-split": split.plan_split, "fit-candidate": train.fit_candidate,
             "check-modelling-table": validate.check_modelling_table, "validate-data": validate.validate_data,
             "leakage-guards": leakage.leakage_guards}
    for name, task in steps.items():
        assert isinstance(task, Task) and task.name == name and callable(task.fn)
    assert train.fit_candidate.task_run_name == "fit-{candidate.name}"
    assert not any(hasattr(m, old) for m, old in ((split, "split_data"), (train, "train_candidate"), (validate, "check_table")))
    assert training.plan_split is split.plan_split and training.fit_candidate is train.fit_candidate
    assert training.check_modelling_table is validate.check_modelling_table
