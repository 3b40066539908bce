"""The ``var`` section of a spec: the Value-at-Risk use of a volatility forecast, back-tested on the
holdout and on every monitored batch with returns. Formulas and sources: docs/gates.md ("Market
models: VaR back-test, model confidence set, Pesaran-Timmermann")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from models.spec.base import Strict


class VarSpec(Strict):
    """A daily Value-at-Risk from the forecast volatility, and its back-test.

    The volatility builder's target is an annualised ``h``-day volatility
    ``sqrt(A / h * sum r^2)`` (``features_from.params``: ``horizon`` ``h``, ``trading_days`` ``A``),
    so its forecast over ``sqrt(A)`` is the forecast daily standard deviation of the next ``h``
    days' log returns, taken as the next day's (``sigma = forecast / sqrt(A)``, a mean return of 0,
    as the realised-volatility proxy assumes). The VaR of day ``t + 1`` is ``q * sigma_t`` with
    ``q`` the ``level`` quantile of the ``distribution`` (unit variance), and an exception is a
    next-day log return below ``-VaR``. Back-tests: the exception count, Kupiec's proportion of
    failures (1995), Christoffersen's independence and conditional coverage (1998), and the Basel
    traffic light over the last 250 days (BCBS 1996). Only ``task: regression`` with
    ``features_from.name: realised_volatility`` has a volatility forecast.
    """

    level: float = Field(default=0.99, gt=0.5, lt=1.0)
    """Confidence level of the VaR (0.99: an exception expected on 1 day in 100). The Basel traffic
    light's table is for 0.99; at another level its zones are rebuilt from the binomial
    probabilities the table uses, and the back-test says so."""
    horizon_days: Literal[1] = 1
    """Days of the VaR: 1 only. The Basel back-test compares the one-day VaR with the next day's
    return; a longer horizon's overlapping windows would make the exceptions dependent, which the
    Kupiec and Christoffersen tests assume away."""
    distribution: Literal["normal", "t"] = "normal"
    """Distribution of the standardised return: ``normal``, or ``t`` (Student's t scaled to unit
    variance, fatter tails: a larger VaR at 0.99)."""
    dof: float | None = Field(default=None, gt=2.0, le=1000.0)
    """Degrees of freedom of ``distribution: t`` (above 2, so the variance exists; 4 to 8 is usual for
    daily equity returns); only with ``t``."""

    @model_validator(mode="after")
    def _dof(self) -> "VarSpec":
        if self.distribution == "t" and self.dof is None:
            raise ValueError("distribution 't' needs dof (degrees of freedom above 2)")
        if self.distribution == "normal" and self.dof is not None:
            raise ValueError("dof applies to distribution 't' only")
        return self
