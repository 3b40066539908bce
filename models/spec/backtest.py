"""The ``backtest`` section of a spec: what the scoring ledger records as each scored row's
observation date, how late outcomes are joined to it, and how vintages are formed
(docs/backtesting.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.spec.base import Strict


class BacktestSpec(Strict):
    """How scored rows are ledgered and how their late outcomes are joined (binary classification).

    Every scoring run appends its rows to ``registry/<model>/ledger/`` (id, as-of date, version,
    score, grade); an outcomes file (id, outcome, outcome date) is joined to the ledger row each
    id had at its observation date: the latest at or before the outcome date and no older than
    ``outcome_window`` months. The EBA guidelines on PD estimation (EBA/GL/2017/16, 4.3) define the
    one-year default rate over a 12-month horizon, hence the default window.
    """

    as_of: str | None = None
    """A declared ``datetime`` column of the batch holding each row's observation (application)
    date; None (the default): the scoring time, or the ``--as-of`` date given to ``finml score``."""
    outcome_window: int = Field(default=12, ge=1, le=120, strict=True)
    """Months after its as-of date within which an outcome is attributed to a scored row (12:
    the one-year default horizon)."""
    vintage: Literal["month", "quarter"] = "quarter"
    """How ledger rows are grouped into vintages by as-of date for realised performance."""
    outcome_date_column: str = "outcome_date"
    """The column of an outcomes file holding the date each outcome was observed."""
    landing: str | None = None
    """An outcomes file (CSV or Parquet) the monthly ``backtest-<model>`` deployment reads; relative
    paths are taken from the working folder. None: the deployment needs a ``labels`` parameter."""
