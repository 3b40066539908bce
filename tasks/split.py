"""Development / holdout splits: stratified holdout, and walk-forward for time-ordered data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.errors import DataError
from models.features import LABEL_END
from models.spec import ModelSpec, StratifiedHoldoutSplit, WalkForwardSplit
from tasks.step import step
from tasks.time_axis import period_of, point_text, time_values


class SplitError(DataError):
    """The data cannot be split as the spec asks (too few rows, a single class, look-ahead)."""


@dataclass(frozen=True)
class Fold:
    """Row positions (into the modelling table) of one training set and its test block."""

    train: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class SplitPlan:
    """How a modelling table is split.

    Attributes:
        method: ``stratified_holdout`` or ``walk_forward``.
        folds: the train/test folds; the holdout is the union of their test blocks.
        final_train: rows the promoted model is fitted on.
        refit_final: False when the promoted model is the (single) fold's own fit, so its
            holdout figures are exactly those of the model promoted; True for walk-forward,
            where the model is refitted on every development row after the backtest.
        gap: rows left out between each training window and its test block.
    """

    method: str
    folds: list[Fold]
    final_train: np.ndarray
    refit_final: bool
    gap: int = 0

    @property
    def holdout(self) -> np.ndarray:
        """Positions of every test row, in fold order (time order for walk-forward)."""
        return np.concatenate([f.test for f in self.folds])

    def describe(self, table: pd.DataFrame | None = None, time_column: str | None = None,
                 kind: str | None = "datetime") -> dict:
        """Sizes for reports and metadata; with the modelling table and its time column (of ``kind``
        ``datetime`` or ``integer``), also the period (first and last date or index value,
        :func:`rows_period`) of each fold's training and test rows
        (``train_period``, ``test_period``), of the holdout (``holdout_period``) and of the rows
        the promoted model is fitted on (``final_train_period``)."""
        folds = [{"train_rows": int(len(f.train)), "test_rows": int(len(f.test))} for f in self.folds]
        out = {
            "method": self.method,
            "folds": folds,
            "holdout_rows": int(len(self.holdout)),
            "final_train_rows": int(len(self.final_train)),
            "refit_final": self.refit_final,
            "gap": self.gap,
        }
        if table is not None and time_column:
            for row, fold in zip(folds, self.folds):
                row["train_period"] = rows_period(table, time_column, fold.train, kind)
                row["test_period"] = rows_period(table, time_column, fold.test, kind)
            out["holdout_period"] = rows_period(table, time_column, self.holdout, kind)
            out["final_train_period"] = rows_period(table, time_column, self.final_train, kind)
        return out


def rows_period(table: pd.DataFrame, time_column: str | None, rows: np.ndarray | None = None,
                kind: str | None = "datetime") -> list | None:
    """First and last date (``YYYY-MM-DD``), or index value for ``kind`` ``integer``, of
    ``time_column`` over ``rows`` (positions into ``table``; every row when None):
    :func:`tasks.time_axis.period_of`.

    Returns None when there is no time column, the table lacks it, or no row is selected.
    """
    if not time_column or time_column not in table.columns:
        return None
    return period_of(table[time_column] if rows is None else table[time_column].iloc[rows], kind)


def stratified_holdout(y: np.ndarray, test_size: float, seed: int) -> SplitPlan:
    """One random holdout with the same event rate as the development rows.

    Raises:
        SplitError: fewer than two rows of a class (it cannot appear on both sides).
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    values, counts = np.unique(y, return_counts=True)
    if len(values) < 2:
        raise SplitError(f"the target has a single class ({values.tolist()}); a classifier cannot be trained")
    if counts.min() < 2:
        raise SplitError(f"class {values[counts.argmin()]!r} has {counts.min()} row(s); a stratified holdout needs 2")
    positions = np.arange(len(y))
    train, test = train_test_split(positions, test_size=test_size, stratify=y, random_state=seed)
    train, test = np.sort(train), np.sort(test)
    return SplitPlan("stratified_holdout", [Fold(train, test)], final_train=train, refit_final=False)


def walk_forward(n_rows: int, n_folds: int, test_share: float, gap: int, min_train_rows: int = 100) -> SplitPlan:
    """Expanding-window walk-forward backtest over time-ordered rows ``0 .. n_rows-1``.

    The last ``round(n_rows * test_share)`` rows are cut into ``n_folds`` consecutive test
    blocks of equal size (the remainder joins the first training window). Fold ``k`` trains
    on rows ``[0, start_k - gap)`` and tests on ``[start_k, start_k + block)``. With a label
    looking ``h`` rows ahead, ``gap >= h`` keeps every training label inside the past of its
    test block (the last training row ``start_k - gap - 1`` uses rows up to
    ``start_k - gap - 1 + h <= start_k - 1``).

    Raises:
        SplitError: a test block would be empty or the first training window too small.
    """
    n_test = int(round(n_rows * test_share))
    block = n_test // n_folds
    if block < 1:
        raise SplitError(f"{n_rows} rows are too few for {n_folds} walk-forward test blocks")
    first_start = n_rows - n_folds * block
    if first_start - gap < min_train_rows:
        raise SplitError(
            f"the first walk-forward training window has {first_start - gap} rows; "
            f"at least {min_train_rows} are needed"
        )
    folds = []
    for k in range(n_folds):
        start = first_start + k * block
        folds.append(Fold(np.arange(0, start - gap), np.arange(start, start + block)))
    return SplitPlan("walk_forward", folds, final_train=np.arange(n_rows), refit_final=True, gap=gap)


@step("plan-split")
def plan_split(table: pd.DataFrame, spec: ModelSpec) -> SplitPlan:
    """The split the spec asks for, on the modelling table (rows in time order if time-ordered),
    with the proof that no walk-forward training label looks ahead (:func:`check_no_lookahead`).

    Raises:
        SplitError: too few rows or a single class for the split, or a look-ahead (fold named).
    """
    s = spec.split
    if isinstance(s, StratifiedHoldoutSplit):
        return stratified_holdout(table[spec.target_column].to_numpy(), s.test_size, s.seed)
    if isinstance(s, WalkForwardSplit):
        plan = walk_forward(len(table), s.n_folds, s.test_share, s.gap)
        check_no_lookahead(table, plan, spec.time_axis, spec.time_kind)
        return plan
    raise SplitError(f"unsupported split {s!r}")  # pragma: no cover - the schema forbids it


def check_no_lookahead(table: pd.DataFrame, plan: SplitPlan, time_column: str | None,
                       kind: str | None = "datetime") -> None:
    """Prove that no training row's label window reaches into its fold's test period.

    Uses ``label_end`` (time of the last raw row a label uses) when the table has it, else the
    row times (dates, or index values for ``kind`` ``integer``). Raises SplitError naming the fold
    on a violation.
    """
    if not time_column:
        return
    times = time_values(table[time_column], kind).to_numpy()
    ends = time_values(table[LABEL_END], kind).to_numpy() if LABEL_END in table.columns else times
    for k, fold in enumerate(plan.folds):
        if len(fold.train) == 0:
            continue
        test_start = times[fold.test].min()
        last_label = ends[fold.train].max()
        if last_label >= test_start:
            raise SplitError(
                f"walk-forward fold {k}: a training label ends at {point_text(last_label, kind)}, "
                f"inside the test period starting {point_text(test_start, kind)} (increase split.gap)"
            )
