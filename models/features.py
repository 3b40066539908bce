"""Built-in feature builders: derive model features and the label from raw inputs.

A builder turns raw, time-ordered rows (a price index, say) into a modelling table whose
features at row ``t`` use data of rows ``<= t`` only, and whose label looks ``horizon`` rows
ahead. Each output row carries ``label_end``: the time of the last raw row its label uses, so
a split can prove that no training label reaches into a test period.

A spec selects a builder by name in ``features_from`` and sets its parameters; no Python
change is needed for a new model that uses a built-in builder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:
    from models.spec import ModelSpec

LABEL_END = "label_end"
"""Column of the modelling table: time of the last raw row used by the row's label."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RealisedVolatilityParams(_Params):
    """Parameters of :class:`RealisedVolatilityBuilder`."""

    price_column: str
    volume_column: str | None = None
    horizon: int = Field(default=5, ge=1, le=60)
    """Trading days ahead whose realised volatility is the label."""
    return_lags: int = Field(default=5, ge=1, le=60)
    """Number of lagged absolute log returns used as features (lag 0 = the forecast day)."""
    windows: list[int] = Field(default_factory=lambda: [5, 22])
    """Trailing windows (trading days) of realised-volatility features."""
    trading_days: int = Field(default=252, ge=1)
    """Annualisation factor: trading days per year."""

    @model_validator(mode="after")
    def _check(self) -> "RealisedVolatilityParams":
        if not self.windows or any(w < 2 for w in self.windows):
            raise ValueError("windows must list trailing windows of at least 2 days")
        if self.horizon not in self.windows:
            raise ValueError(
                f"windows {self.windows} must include the horizon ({self.horizon}): the "
                f"persistence forecast is the trailing {self.horizon}-day realised volatility"
            )
        return self


class RealisedVolatilityBuilder:
    """Forecast the annualised realised volatility of the next ``horizon`` trading days.

    With daily log returns ``r_t = ln(P_t / P_{t-1})`` and ``A`` trading days per year:

    - label: ``sqrt(A / h * sum_{i=1..h} r_{t+i}^2)`` (annualised, a fraction: 0.15 = 15 %);
    - features at ``t``: ``|r_{t-k}|`` for ``k < return_lags``; ``rv_{w}d = sqrt(A / w *
      sum_{i=0..w-1} r_{t-i}^2)`` per window ``w``; with a volume column, the one-day log
      volume change and the log ratio of volume to its trailing 22-day mean. Price and volume
      levels are never features (they trend over decades).
    - persistence (naive) forecast: ``rv_{h}d``, the trailing ``h``-day volatility.

    This is the heterogeneous autoregressive (HAR-RV) set-up of Corsi, "A Simple Approximate
    Long-Memory Model of Realized Volatility", J. Financial Econometrics 7(2), 2009, with daily
    squared returns standing in for intraday realised variance.
    """

    name = "realised_volatility"
    params_model = RealisedVolatilityParams

    def __init__(self, params: RealisedVolatilityParams, time_column: str):
        self.params = params
        self.time_column = time_column

    @property
    def input_columns(self) -> list[str]:
        cols = [self.params.price_column]
        if self.params.volume_column:
            cols.append(self.params.volume_column)
        return cols

    @property
    def feature_names(self) -> list[str]:
        p = self.params
        names = [f"abs_return_lag{k}" for k in range(p.return_lags)]
        names += [f"rv_{w}d" for w in p.windows]
        if p.volume_column:
            names += ["log_volume_change_1d", "log_volume_vs_22d"]
        return names

    @property
    def target_name(self) -> str:
        return f"rv_next_{self.params.horizon}d"

    @property
    def baseline_column(self) -> str:
        """Feature column holding the naive persistence forecast."""
        return f"rv_{self.params.horizon}d"

    @property
    def horizon(self) -> int:
        return self.params.horizon

    def build(self, raw: pd.DataFrame, require_target: bool = True) -> pd.DataFrame:
        """Build the modelling table from raw rows.

        Args:
            raw: rows with the time column (datetime64), the price column (> 0) and, if
                configured, the volume column (> 0). Any order; sorted by time here.
            require_target: drop the last ``horizon`` rows, whose label is not yet known.
                Serving and monitoring pass False and keep them with a NaN label.

        Returns:
            DataFrame with the time column, the features, the label and ``label_end``; the
            first ``max(windows, return_lags, 22)`` rows (incomplete history) are dropped.

        Raises:
            ValueError: a non-positive price or volume (its log is undefined), naming the column.
        """
        p = self.params
        df = raw.sort_values(self.time_column, kind="stable").reset_index(drop=True)
        price = df[p.price_column].astype(float)
        if (price <= 0).any():
            raise ValueError(f"column {p.price_column!r}: prices must be positive to take log returns")
        r = np.log(price).diff()
        r2 = r**2
        out = pd.DataFrame({self.time_column: df[self.time_column]})
        for k in range(p.return_lags):
            out[f"abs_return_lag{k}"] = r.abs().shift(k)
        for w in p.windows:
            out[f"rv_{w}d"] = np.sqrt(p.trading_days * r2.rolling(w).mean())
        history = max(max(p.windows), p.return_lags)
        if p.volume_column:
            vol = df[p.volume_column].astype(float)
            if (vol <= 0).any():
                raise ValueError(f"column {p.volume_column!r}: volumes must be positive to take logs")
            lv = np.log(vol)
            out["log_volume_change_1d"] = lv.diff()
            out["log_volume_vs_22d"] = lv - lv.rolling(22).mean()
            history = max(history, 22)
        h = p.horizon
        future_r2 = r2.rolling(h).sum().shift(-h)  # sum of r^2 over t+1 .. t+h
        out[self.target_name] = np.sqrt(p.trading_days / h * future_r2)
        out[LABEL_END] = df[self.time_column].shift(-h)
        out = out.iloc[history:]
        if require_target:
            out = out[out[self.target_name].notna()]
        return out.reset_index(drop=True)


BUILDERS: dict[str, type] = {RealisedVolatilityBuilder.name: RealisedVolatilityBuilder}
"""Feature builders a spec may name in ``features_from.name``."""


def _params(spec: "ModelSpec") -> Any:
    cls = BUILDERS[spec.features_from.name]
    return cls.params_model.model_validate(spec.features_from.params)


def make_builder(spec: "ModelSpec"):
    """Instantiate the spec's builder (the spec has already been validated)."""
    cls = BUILDERS[spec.features_from.name]
    return cls(_params(spec), spec.time_column)


def check_builder(spec: "ModelSpec") -> str | None:
    """Return a message describing what is wrong with the spec's builder settings, or None."""
    fb = spec.features_from
    if fb.name not in BUILDERS:
        return f"unknown builder {fb.name!r}; choose one of {sorted(BUILDERS)}"
    try:
        params = _params(spec)
    except ValidationError as err:
        return "params: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
            for e in err.errors()
        )
    if spec.time_column is None:
        return "a feature builder needs the spec's time_column"
    builder = BUILDERS[fb.name](params, spec.time_column)
    for col in builder.input_columns:
        cs = spec.columns.get(col)
        if cs is None or cs.role != "input":
            return f"input column {col!r} must be declared under columns with role 'input'"
    if spec.target.column != builder.target_name:
        return f"target.column must be {builder.target_name!r}, the label this builder derives"
    split = spec.split
    gap = getattr(split, "gap", None)
    if gap is not None and gap < builder.horizon:
        return (
            f"split.gap ({gap}) must be at least the label horizon ({builder.horizon} rows), "
            "or training labels would overlap the test period"
        )
    return None
