"""The promotion gate of a spec: threshold rules, comparisons with the champion and with naive
baselines, and the primary metric."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from models.metrics import METRICS, ROW_COMPARABLE
from models.spec.base import MetricName, Strict


class ThresholdRule(Strict):
    """An absolute bound on a holdout metric: ``min <= value <= max``."""

    kind: Literal["threshold"]
    metric: MetricName
    """A metric that applies to the spec's task."""
    min: float | None = None
    """Lowest accepted holdout value."""
    max: float | None = None
    """Highest accepted holdout value."""

    @model_validator(mode="after")
    def _check(self) -> "ThresholdRule":
        if self.min is None and self.max is None:
            raise ValueError("a threshold rule needs 'min' or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


class _ComparisonRule(Strict):
    """Compare the challenger with another model on the same holdout rows.

    ``diff`` is the challenger's advantage in the metric's better direction: for
    ``change: absolute`` ``challenger - other`` (``other - challenger`` when lower is better),
    for ``change: relative`` that difference divided by the other's value. The rule asks for
    ``diff >= margin``; a negative ``margin`` lets the challenger be worse by at most
    ``|margin|``. How that is judged:

    - ``test: none``: on the point estimate;
    - ``test: superior``: the lower bound of the ``confidence`` interval of ``diff`` must be
      *above* ``margin`` — a challenger better only by noise is not promoted (an identical
      model never passes);
    - ``test: not_worse``: the *upper* bound must reach ``margin`` — the challenger fails only
      when it is significantly worse, so noise cannot block an equal-or-better model.

    Intervals (``method``): ``bootstrap``, a paired bootstrap of the holdout rows (circular
    blocks of consecutive rows for time-ordered holdouts); ``delong``, the DeLong variance of a
    difference of paired ROC AUCs; ``diebold_mariano``, the mean per-row loss differential with
    the Harvey-Leybourne-Newbold small-sample correction. Their definitions and sources are in
    docs/gates.md (methods).
    """

    metric: MetricName
    """A metric with a better direction that two models' scores can be compared on row by row."""
    change: Literal["absolute", "relative"] = "absolute"
    """``diff`` as a difference of the two values, or that difference over the other's value."""
    margin: float = 0.0
    """The advantage asked for, in the metric's units (a share for ``relative``); negative allows a loss."""
    test: Literal["none", "superior", "not_worse"] = "none"
    """How ``diff`` is judged against ``margin``: point estimate, or a bound of its interval."""
    method: Literal["bootstrap", "delong", "diebold_mariano"] = "bootstrap"
    """How the interval of ``diff`` is computed (with ``test`` other than ``none``)."""
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Two-sided confidence level of the interval."""
    n_boot: int = Field(default=1000, ge=100, le=20000)
    """Bootstrap resamples (method ``bootstrap``)."""
    seed: int = 0
    """Seed of the bootstrap resampling."""

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if METRICS[v].higher_is_better is None:
            raise ValueError(f"metric {v!r} has no better direction; use it in a threshold rule")
        if v not in ROW_COMPARABLE:
            raise ValueError(f"metric {v!r} cannot be compared row by row on two models' scores (it needs a baseline, "
                             f"groups or an interval of its own); use it in a threshold rule. Comparable: "
                             f"{sorted(ROW_COMPARABLE)}")
        return v

    @model_validator(mode="after")
    def _check(self) -> "_ComparisonRule":
        if self.method == "delong" and (not METRICS[self.metric].delong or self.change != "absolute"):
            raise ValueError("method 'delong' applies to an absolute change of "
                             f"{' or '.join(m for m, i in METRICS.items() if i.delong)} only")
        if self.method == "diebold_mariano":
            if not METRICS[self.metric].per_row_loss or self.change != "absolute":
                losses = sorted(m for m, i in METRICS.items() if i.per_row_loss)
                raise ValueError(
                    f"method 'diebold_mariano' tests a per-row loss: metric {', '.join(losses[:-1])} or "
                    f"{losses[-1]}, with change 'absolute'"
                )
            if self.margin != 0.0:
                raise ValueError("method 'diebold_mariano' tests equal accuracy: margin must be 0")
        return self


class ChampionRule(_ComparisonRule):
    """The challenger against the current champion, re-scored on the same holdout."""

    kind: Literal["champion"]


class BaselineRule(_ComparisonRule):
    """The challenger against a naive baseline forecast of the spec's feature builder
    (``persistence``; for direction models also ``majority``)."""

    kind: Literal["baseline"]
    baseline: str
    """A baseline of the spec's feature builder."""


class MonotonicRule(Strict):
    """The declared directions of ``columns.<name>.monotone`` hold: the selected candidate's
    partial dependence along each declared feature never moves against its direction by more
    than ``tolerance``, and no linear candidate's coefficient has the opposite sign (the data's
    own partial association then contradicts the declaration). Method: docs/interpretability.md."""

    kind: Literal["monotonic"]
    tolerance: float = Field(default=0.005, ge=0.0, le=0.5)
    """Largest reversal accepted, in score units (probability for classifiers, the target's units
    for regression): the biggest fall of the average score between two grid points in the
    declared increasing direction (rise, for decreasing)."""


class McsRule(Strict):
    """The selected candidate is in the model confidence set (Hansen, Lunde & Nason 2011) of every
    evaluated candidate and naive baseline, on the per-row losses of ``metric`` over the holdout
    (``arch.bootstrap.MCS``, stationary bootstrap). Method: docs/gates.md (model confidence set)."""

    kind: Literal["mcs"]
    metric: MetricName = "rmse"
    """A metric with a per-row loss (``rmse``: squared errors; ``mae``: absolute errors)."""
    size: float = Field(default=0.10, gt=0.0, lt=0.5)
    """Test size: the set holds the best models with probability ``1 - size`` (0.10: a 90 % set)."""
    reps: int = Field(default=1000, ge=100, le=20000)
    """Bootstrap replications."""
    seed: int = 0
    """Seed of the bootstrap."""

    @field_validator("metric")
    @classmethod
    def _loss(cls, v: str) -> str:
        if not METRICS[v].per_row_loss:
            losses = sorted(m for m, i in METRICS.items() if i.per_row_loss)
            raise ValueError(f"the model confidence set compares per-row losses: metric one of {losses}")
        return v


GateRule = Annotated[Union[ThresholdRule, ChampionRule, BaselineRule, MonotonicRule, McsRule],
                     Field(discriminator="kind")]


class GateSpec(Strict):
    """How a challenger is judged. Without a threshold rule a spec is rejected: never promote by default.

    Besides ``rules``, every challenger meets the platform's sanity rules, which a spec cannot
    remove: a classifier's holdout ROC AUC above 0.5 beyond noise and its average precision above
    the base rate, a regression model beating the mean forecast (``docs/gates.md``, sanity rules).
    """

    primary_metric: MetricName
    """The metric candidates are ranked by (it needs a better direction)."""
    rules: list[GateRule]
    """Every rule must pass for a challenger to be promoted."""
    min_events: int = Field(default=30, ge=10)
    """Fewest events (and non-events) a classifier's holdout must hold; with fewer the run stops,
    naming the count, before any candidate is fitted (no verdict on a handful of events). At
    least 10."""

    @model_validator(mode="after")
    def _check(self) -> "GateSpec":
        if not any(isinstance(r, ThresholdRule) for r in self.rules):
            raise ValueError(
                "the gate needs at least one 'threshold' rule: the platform never promotes by default"
            )
        return self

