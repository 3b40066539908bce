"""The ``rating_scale`` section of a spec (rating grades of a probability of default) and the
``validation`` section (the traffic-light policy of the supervisors' back-tests). Grades are
assigned by :func:`models.backtest_statistics.assign_grades`; the tests and their sources are in
:mod:`models.backtest_statistics` and docs/backtesting.md."""

from __future__ import annotations

import math
from itertools import pairwise

from pydantic import Field, StrictInt, field_validator, model_validator

from models.spec.base import Strict, safe_name

DEFAULT_FLOOR = 0.0003
"""Upper PD bound of the best grade of a default master scale: 0.03 %, the PD floor of
Regulation (EU) No 575/2013 (CRR) Art. 160(1) for corporate exposures."""
DEFAULT_CAP = 0.20
"""Upper PD bound of the second-worst grade of a default master scale (20 %); the worst grade is
open-ended above it. Our convention, not a regulatory figure."""


class RatingGrade(Strict):
    """One grade of an explicit rating scale: its name and its PD upper bound."""

    name: str
    """The grade's name (a safe name: letters, digits, ``_`` or ``-``; quote a digit: ``"1"``)."""
    max_pd: float | None = Field(default=None, gt=0.0, le=1.0, strict=True)
    """Largest PD of the grade, inclusive (a PD equal to it is in this grade, not the next);
    omitted for the last grade, which is open-ended (up to a PD of 1)."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return safe_name(v, "grade name")


class RatingScaleSpec(Strict):
    """Rating grades of the probability of default (binary classification only).

    Either explicit ``grades: [{name: A, max_pd: 0.005}, ..., {name: E}]``, PD upper bounds
    strictly increasing, the last grade open-ended; or ``grades: 7``, a default master scale of
    that many grades named ``"1"`` (best) to ``"7"``: its ``K − 1`` upper bounds are geometric
    between ``floor`` and ``cap``, ``b_i = floor · (cap / floor)^((i − 1) / (K − 2))`` for
    ``i = 1 .. K − 1``, and grade ``K`` is open-ended above ``cap``. Geometric (log-linear)
    boundaries are our convention, after the shape of agency and bank master scales whose PDs
    grow by a roughly constant factor per grade. A PD on a boundary belongs to the lower (better)
    grade; a PD of 0 is in the first grade, a PD of 1 in the last.
    """

    grades: StrictInt | list[RatingGrade]
    """A list of grades (name and PD upper bound, the last without one), or a number of grades
    (3 to 30) for the default master scale."""
    floor: float = Field(default=DEFAULT_FLOOR, gt=0.0, lt=1.0, strict=True)
    """Default master scale only: the first grade's PD upper bound (0.03 %, the CRR Art. 160(1) floor)."""
    cap: float = Field(default=DEFAULT_CAP, gt=0.0, lt=1.0, strict=True)
    """Default master scale only: the upper PD bound of the second-worst grade (20 %); the worst is above it."""

    @field_validator("grades")
    @classmethod
    def _grades(cls, v: int | list[RatingGrade]) -> int | list[RatingGrade]:
        if isinstance(v, int):
            if not 3 <= v <= 30:
                raise ValueError(f"a default master scale has 3 to 30 grades, got {v}")
            return v
        if len(v) < 2:
            raise ValueError("give at least two grades")
        names = [g.name for g in v]
        if len(set(names)) != len(names):
            raise ValueError(f"grade names must be unique, got {names}")
        if v[-1].max_pd is not None:
            raise ValueError(f"the last grade ({v[-1].name!r}) is open-ended: remove its max_pd")
        missing = [g.name for g in v[:-1] if g.max_pd is None]
        if missing:
            raise ValueError(f"every grade but the last needs max_pd (missing for {missing})")
        bounds = [g.max_pd for g in v[:-1]]
        if any(b <= a for a, b in pairwise(bounds)):
            raise ValueError(f"max_pd must be strictly increasing from grade to grade, got {bounds}")
        if bounds[-1] >= 1.0:
            raise ValueError("max_pd of the grade before the last must be below 1 (the last grade would be empty)")
        return v

    @model_validator(mode="after")
    def _floor_cap(self) -> "RatingScaleSpec":
        if self.floor >= self.cap:
            raise ValueError(f"floor ({self.floor:g}) must be below cap ({self.cap:g})")
        return self

    @property
    def names(self) -> list[str]:
        """The grade names, best (lowest PD) first."""
        if isinstance(self.grades, int):
            return [str(i) for i in range(1, self.grades + 1)]
        return [g.name for g in self.grades]

    @property
    def upper_bounds(self) -> list[float]:
        """The ``K − 1`` inclusive PD upper bounds of every grade but the last, increasing."""
        if isinstance(self.grades, int):
            k = self.grades
            ratio = math.log(self.cap / self.floor) / (k - 2)
            return [self.floor * math.exp(ratio * i) for i in range(k - 1)]
        return [float(g.max_pd) for g in self.grades[:-1]]


class TrafficLightPolicy(Strict):
    """How a back-test p-value is coloured: ``red`` below ``red``, ``amber`` from ``red`` to below
    ``amber``, ``green`` from ``amber``. The ECB sets no pass/fail thresholds for these tests
    (Instructions for reporting the validation results of internal models, 2019); the defaults
    are the usual 5 % and 10 % levels, our convention."""

    red: float = Field(default=0.05, gt=0.0, lt=1.0, strict=True)
    """p-values below this are red."""
    amber: float = Field(default=0.10, gt=0.0, lt=1.0, strict=True)
    """p-values from ``red`` to below this are amber; from it, green."""

    @model_validator(mode="after")
    def _order(self) -> "TrafficLightPolicy":
        if self.red >= self.amber:
            raise ValueError(f"red ({self.red:g}) must be below amber ({self.amber:g})")
        return self

    def colour(self, p_value: float | None) -> str | None:
        """``"red"``, ``"amber"`` or ``"green"`` for a p-value; None for None or NaN."""
        if p_value is None or math.isnan(p_value):
            return None
        return "red" if p_value < self.red else "amber" if p_value < self.amber else "green"

    def text(self) -> str:
        """The policy in words, for reports: ``red p < 0.05, amber 0.05 <= p < 0.1, green p >= 0.1``."""
        return f"red p < {self.red:g}, amber {self.red:g} <= p < {self.amber:g}, green p >= {self.amber:g}"


class ValidationSpec(Strict):
    """Settings of the supervisors' back-tests (Jeffreys, binomial, discriminatory power)."""

    policy: TrafficLightPolicy = Field(default_factory=TrafficLightPolicy)
    """The traffic-light policy colouring their p-values, printed with them."""
