"""The file order as time: a spec with ``out_of_time.share`` and no time axis holds back the last
rows *in file order*, which is time order only if the file was written in time order. A file
sorted by a feature or a protected attribute would hold back its largest values, or whole groups
(a sorted protected attribute puts one group entirely out of time). :func:`file_order_outcomes`
warns, naming the column, when the file looks sorted or grouped by one.

Rules (each on the non-missing values of a column with at least 2 distinct values, in file order):

- *sorted*: at least :data:`SORTED_SHARE` (95 %) of adjacent pairs are in non-decreasing order, or
  as many in non-increasing order, and as many of the pairs whose values differ go the same way
  (so that a column with one dominant value, whose pairs are mostly ties, is not called sorted
  in a shuffled file);
- *grouped* (categorical and protected columns): the values change between adjacent rows at most
  :data:`GROUPED_SHARE` (5 %) as often as they would in a random order of the same values
  (``(n - 1) * (1 - sum p_i^2)`` changes expected), so the values come in blocks, in any order.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from models.errors import SHOWN_BY_CALLER
from models.spec import ModelSpec
from tasks.expectations import ExpectationOutcome

log = logging.getLogger(__name__)

SORTED_SHARE = 0.95
"""Share of adjacent pairs (and of changing pairs) in one direction above which a column is sorted."""
GROUPED_SHARE = 0.05
"""Changes between adjacent rows, as a share of those a random order gives, below which a
categorical column comes in blocks."""
EXPECTATION = "ExpectFileNotOrderedByColumn"
"""The name the warning carries in validation reports."""


def _sorted_share(values: pd.Series) -> tuple[float, str] | None:
    """``(share of adjacent pairs in the column's main direction, "non-decreasing"/"non-increasing")``
    when the pairs whose values differ go that way at least :data:`SORTED_SHARE` of the time; else None."""
    try:
        a, b = values.iloc[:-1].to_numpy(), values.iloc[1:].to_numpy()
        up, down = b > a, b < a
    except TypeError:  # values that do not compare (mixed types)
        return None
    changes = int(up.sum() + down.sum())
    if changes == 0:
        return None
    pairs = len(a)
    for moves, against, words in ((up, down, "non-decreasing"), (down, up, "non-increasing")):
        if moves.sum() / changes >= SORTED_SHARE and 1 - against.sum() / pairs >= SORTED_SHARE:
            return float(1 - against.sum() / pairs), words
    return None


def _blocks(values: pd.Series) -> tuple[int, float] | None:
    """``(changes between adjacent rows, changes a random order gives)`` when the values come in
    blocks (:data:`GROUPED_SHARE`); else None."""
    codes = pd.factorize(values)[0]
    changes = int((codes[1:] != codes[:-1]).sum())
    p = np.bincount(codes) / len(codes)
    expected = (len(codes) - 1) * (1.0 - float((p**2).sum()))
    if expected <= 0 or changes > GROUPED_SHARE * expected:
        return None
    return changes, expected


def file_order_outcomes(frame: pd.DataFrame, spec: ModelSpec) -> list[ExpectationOutcome]:
    """Warnings (severity ``warning``) for each feature or protected column by which ``frame``
    looks sorted or grouped in file order, when the spec takes the file order as time
    (``out_of_time.share`` and no ``time_column``/``time_index``); none otherwise.

    Args:
        frame: the source rows in file order, declared types parsed.

    Returns:
        One :class:`tasks.expectations.ExpectationOutcome` per such column (features first, then
        protected columns), also logged, naming the column and how it is ordered.
    """
    oot = spec.out_of_time
    if oot is None or oot.share is None or spec.time_axis is not None or len(frame) < 3:
        return []
    names = [c for c, s in spec.columns.items() if s.role in ("numeric", "categorical", "protected")]
    out: list[ExpectationOutcome] = []
    for name in names:
        if name not in frame.columns:
            continue
        values = frame[name].dropna()
        if values.nunique() < 2:
            continue
        role = spec.columns[name].role
        found, observed = None, None
        if (sorted_ := _sorted_share(values)) is not None:
            share, words = sorted_
            found = f"sorted by {name!r}"
            observed = f"{words} over {share:.1%} of adjacent rows"
        elif role in ("categorical", "protected") or values.dtype == object:
            if (blocks := _blocks(values)) is not None:
                changes, expected = blocks
                order = list(dict.fromkeys(values.astype(str)))[:5]
                found = f"grouped by {name!r}"
                observed = (f"values in blocks ({order} in file order): {changes} changes between adjacent rows, "
                            f"about {expected:.0f} in a random order")
        if found is None:
            continue
        what = "protected attribute" if role == "protected" else "feature"
        description = (f"out_of_time.share takes the last {oot.share:.0%} of rows in file order (no time_column), and "
                       f"the file looks {found}: the out-of-time sample would hold that {what}'s last values, not "
                       "the latest rows" + ("; a sorted protected attribute puts whole groups out of time"
                                            if role == "protected" else "")
                       + ". Declare a time_column or time_index, or write the file in time order")
        outcome = ExpectationOutcome(expectation=EXPECTATION, column=name, severity="warning",
                                     description=description, success=False, observed=observed)
        log.warning(outcome.sentence(), extra={SHOWN_BY_CALLER: True})  # the validation report carries it
        out.append(outcome)
    return out


__all__ = ["EXPECTATION", "GROUPED_SHARE", "SORTED_SHARE", "file_order_outcomes"]
