"""Built-in feature builders: derive model features and the label from raw inputs.

A builder turns raw, time-ordered rows (a price index or its daily returns, say) into a modelling
table whose features at row ``t`` use data of rows ``<= t`` only, and whose label looks ``horizon``
rows ahead. Each output row carries ``label_end``: the time of the last raw row its label uses, so
a split can prove that no training label reaches into a test period.

A spec selects a builder by name in ``features_from`` and sets its parameters; each builder
owns its parameter model, and ``features_from`` is a union discriminated on ``name``
(:data:`FeaturesFrom`). No Python change is needed for a new model that uses a built-in builder;
the fields are listed in ``docs/spec-reference.md``, the builders' rules in ``docs/features.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, FieldSerializationInfo, field_serializer, model_validator

if TYPE_CHECKING:  # NumPy and pandas are imported where the builders compute: reading a spec needs neither
    import numpy as np
    import pandas as pd

LABEL_END = "label_end"
"""Column of the modelling table: time of the last raw row used by the row's label."""

DAILY_RETURN = "daily_log_return"
"""Column of a realised-volatility modelling table whose spec declares a fitted baseline (EWMA,
GARCH, GJR, HAR): the row's own daily log return ``r_t``, not a feature (the baselines are fitted on it)."""


class MarketParams(BaseModel):
    """Parameters shared by the market builders: the price or return column, the volume column,
    return lags, trailing volatility windows, annualisation, extra columns taken as features."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    price_column: str | None = None
    """Column (role ``input``) of daily closing prices, all positive. Give this or ``return_column``."""
    return_column: str | None = None
    """Column (role ``input``) of daily returns instead of prices: each row's return from the previous
    close to its own (the first row's too). Give this or ``price_column``; features and labels are
    then the same as from the prices the returns came from."""
    return_kind: Literal["log", "simple"] = "log"
    """How ``return_column`` is written: ``log`` (``ln(P_t / P_{t-1})``) or ``simple``
    (``P_t / P_{t-1} - 1``, turned into a log return by ``log1p``; a value of -1 or below is refused)."""
    volume_column: str | None = None
    """Column (role ``input``) of daily volumes, all positive; adds the two volume features."""
    return_lags: int = Field(default=5, ge=1, le=60)
    """Number of lagged daily log returns used as features (lag 0 = the forecast day)."""
    windows: list[int] = Field(default_factory=lambda: [5, 22])
    """Trailing windows (trading days) of realised-volatility features."""
    trading_days: int = Field(default=252, ge=1)
    """Annualisation factor: trading days per year."""
    max_gap_days: int = Field(default=10, ge=1)
    """Largest calendar gap between consecutive rows. Longer gaps are missing trading days:
    returns and trailing windows would silently span them (60 missing days raised the forecast
    volatility of the 22 days after them by about 65 %), so such data is refused. The S&P 500
    1950-2018 series has at most 7 days (the closure after 11 September 2001)."""
    extra_features: list[str] = Field(default_factory=list)
    """Declared columns (role ``numeric`` or ``categorical``) passed through as features, after the
    built ones: taken as they are on the row, not lagged, so each must be known at the forecast time
    (a day of the week, a volume already in the file). With a builder, every numeric or categorical
    column must be listed here."""

    @model_validator(mode="after")
    def _windows(self) -> "MarketParams":
        if not self.windows or any(w < 2 for w in self.windows):
            raise ValueError("windows must list trailing windows of at least 2 days")
        return self

    @model_validator(mode="after")
    def _prices_or_returns(self) -> "MarketParams":
        if self.price_column is not None and self.return_column is not None:
            raise ValueError("give price_column or return_column, not both: the returns are either computed "
                             "from the prices or read as they are")
        if self.price_column is None and self.return_column is None:
            raise ValueError("give price_column (daily closes) or return_column (daily returns)")
        if self.price_column is not None and "return_kind" in self.model_fields_set:
            raise ValueError("return_kind describes return_column; with price_column the log returns are computed")
        repeated = sorted({c for c in self.extra_features if self.extra_features.count(c) > 1})
        if repeated:
            raise ValueError(f"extra_features lists {repeated} more than once")
        return self

    @property
    def series_column(self) -> str:
        """The price or return column the returns come from."""
        return self.price_column if self.price_column is not None else self.return_column  # type: ignore[return-value]


class RealisedVolatilityParams(MarketParams):
    """Parameters of :class:`RealisedVolatilityBuilder`."""

    horizon: int = Field(default=5, ge=1, le=60)
    """Trading days ahead whose realised volatility is the label."""
    signed_returns: int = Field(default=0, ge=0, le=60)
    """Lagged signed daily log returns added as features (``return_lag0`` ..), beside the absolute ones:
    0 adds none, ``true`` one (the day's own return). Their drift is then monitored like any feature's
    (a shift of the mean return is invisible in absolute returns)."""
    baselines: list[Literal["persistence", "ewma", "garch", "gjr", "har", "log_har"]] = Field(
        default_factory=lambda: ["persistence"])
    """The volatility baselines computed beside the candidates, each fitted inside every walk-forward
    fold on its training rows only and forecasting the same target: ``persistence`` (the trailing
    ``horizon``-day volatility, always listed), ``ewma`` (RiskMetrics), ``garch`` (GARCH(1,1)),
    ``gjr`` (GJR-GARCH(1,1,1)), ``har`` (HAR-RV, Corsi 2009) and ``log_har``, by least squares.
    Gate rules may name any listed one (``kind: baseline``); definitions and sources in
    docs/metrics.md (volatility baselines)."""
    ewma_lambda: float = Field(default=0.94, gt=0.0, lt=1.0)
    """Decay of the ``ewma`` baseline: ``v_t = lambda * v_{t-1} + (1 - lambda) * r_t^2``
    (RiskMetrics Technical Document, 1996: 0.94 for daily data)."""
    garch_innovations: Literal["normal", "t"] = "normal"
    """Innovations of the ``garch`` and ``gjr`` baselines' likelihood: ``normal`` or Student ``t``."""

    @model_validator(mode="after")
    def _horizon(self) -> "RealisedVolatilityParams":
        if "persistence" not in self.baselines:
            raise ValueError("baselines must list persistence: it is the yardstick of rmse_ratio_vs_persistence "
                             "and of monitoring")
        if len(set(self.baselines)) != len(self.baselines):
            raise ValueError(f"baselines lists {self.baselines}: each once")
        if DAILY_RETURN in self.extra_features:
            raise ValueError(f"{DAILY_RETURN!r} is the bookkeeping column of the fitted baselines; rename the column")
        if self.horizon not in self.windows:
            raise ValueError(
                f"windows {self.windows} must include the horizon ({self.horizon}): the "
                f"persistence forecast is the trailing {self.horizon}-day realised volatility"
            )
        return self


class DirectionParams(MarketParams):
    """Parameters of :class:`DirectionBuilder`."""


class _MarketBuilder:
    """Features from daily closes or returns (and volumes) known at the close of day ``t``.

    Subclasses give the label and how the lagged returns enter (signed or absolute); every
    built feature at row ``t`` uses raw rows ``<= t`` only, and the ``extra_features`` are the
    row's own values. The row-level rules (time order, one row per time value, the returns) are
    :mod:`models.market_rows`.
    """

    name = ""
    return_feature = "return"
    horizon = 1

    def __init__(self, params: MarketParams, time_column: str):
        self.params = params
        self.time_column = time_column

    @property
    def input_columns(self) -> list[str]:
        """Raw columns the builder reads (role ``input``): the price or return column, the volume column."""
        return [self.params.series_column] + ([self.params.volume_column] if self.params.volume_column else [])

    @property
    def built_feature_names(self) -> list[str]:
        """The features the builder computes from the inputs (every one point in time by construction)."""
        p = self.params
        names = [f"{self.return_feature}_lag{k}" for k in range(p.return_lags)]
        names += [f"return_lag{k}" for k in range(self._signed_lags)]
        names += [f"rv_{w}d" for w in p.windows]
        if p.volume_column:
            names += ["log_volume_change_1d", "log_volume_vs_22d"]
        return names

    @property
    def feature_names(self) -> list[str]:
        """Every feature, in model order: the built ones, then ``extra_features``."""
        return self.built_feature_names + list(self.params.extra_features)

    @property
    def _signed_lags(self) -> int:
        """Signed return lags added beside ``return_feature`` (none when those are the signed returns)."""
        return 0

    def _lagged_return(self, r: pd.Series) -> pd.Series:
        return r

    @property
    def history_rows(self) -> int:
        """Rows of history a row needs before its features are complete: the longest window
        (realised volatility), the return lags, and 22 days for the volume features; one fewer
        with a return column, whose first row already holds a return (from prices the first
        return needs the row before it)."""
        p = self.params
        history = max(max(p.windows), p.return_lags, self._signed_lags)
        history = max(history, 22) if p.volume_column else history
        return history - 1 if p.return_column is not None else history

    def _features(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, int]:
        """``(table with the time column and features, daily log returns, rows of history needed)``.

        Raises:
            MarketDataError: a repeated time value, a non-positive price or volume, a simple return
                of -1 or below (:mod:`models.market_rows`).
        """
        import numpy as np
        import pandas as pd

        from models import market_rows

        p = self.params
        df = market_rows.order_by_time(raw, self.time_column)
        market_rows.refuse_repeated_times(df, self.time_column)
        r = market_rows.daily_log_returns(df, p, self.time_column)
        out = pd.DataFrame({self.time_column: df[self.time_column]})
        lagged = self._lagged_return(r)
        for k in range(p.return_lags):
            out[f"{self.return_feature}_lag{k}"] = lagged.shift(k)
        for k in range(self._signed_lags):
            out[f"return_lag{k}"] = r.shift(k)
        for w in p.windows:
            out[f"rv_{w}d"] = np.sqrt(p.trading_days * (r**2).rolling(w).mean())
        if p.volume_column:
            lv = np.log(market_rows.positive_volumes(df, p))
            out["log_volume_change_1d"] = lv.diff()
            out["log_volume_vs_22d"] = lv - lv.rolling(22).mean()
        for col in p.extra_features:  # as of the row: known at the forecast time (docs/features.md)
            out[col] = df[col]
        return out, r, self.history_rows

    def _finish(self, out: pd.DataFrame, history: int, require_target: bool) -> pd.DataFrame:
        out[LABEL_END] = out[self.time_column].shift(-self.horizon)
        out = out.iloc[history:]
        if require_target:
            out = out[out[self.target_name].notna()]
        return out.reset_index(drop=True)


class RealisedVolatilityBuilder(_MarketBuilder):
    """Forecast the annualised realised volatility of the next ``horizon`` trading days.

    With daily log returns ``r_t = ln(P_t / P_{t-1})`` (from ``price_column``, or read from
    ``return_column``: :func:`models.market_rows.daily_log_returns`) and ``A`` trading days per year:

    - label: ``sqrt(A / h * sum_{i=1..h} r_{t+i}^2)`` (annualised, a fraction: 0.15 = 15 %);
    - features at ``t``: ``|r_{t-k}|`` for ``k < return_lags``; with ``signed_returns: n``, also
      ``r_{t-k}`` for ``k < n`` (``return_lag{k}``); ``rv_{w}d = sqrt(A / w *
      sum_{i=0..w-1} r_{t-i}^2)`` per window ``w``; with a volume column, the one-day log
      volume change and the log ratio of volume to its trailing 22-day mean; then the
      ``extra_features`` as they are on row ``t``. Price and volume levels are never built
      features (they trend over decades).
    - persistence (naive) forecast: ``rv_{h}d``, the trailing ``h``-day volatility.

    This is the heterogeneous autoregressive (HAR-RV) set-up of Corsi, "A Simple Approximate
    Long-Memory Model of Realized Volatility", J. Financial Econometrics 7(2), 2009, with daily
    squared returns standing in for intraday realised variance.
    """

    name = "realised_volatility"
    return_feature = "abs_return"
    baselines = ("persistence", "ewma", "garch", "gjr", "har", "log_har")
    """Baselines a spec may declare (``params.baselines``) and the gate compare with (``BaselineRule.baseline``)."""
    forecasts_volatility = True
    """The label is a volatility: the volatility losses (QLIKE) apply."""

    @property
    def declared_baselines(self) -> tuple[str, ...]:
        """The baselines this spec computes (``params.baselines``)."""
        return tuple(self.params.baselines)

    @property
    def fitted_baselines(self) -> list[str]:
        """The declared baselines fitted in every fold (all but persistence)."""
        return [b for b in self.params.baselines if b != "persistence"]

    @property
    def horizon(self) -> int:  # type: ignore[override]
        return self.params.horizon

    def _lagged_return(self, r: pd.Series) -> pd.Series:
        return r.abs()

    @property
    def _signed_lags(self) -> int:
        return self.params.signed_returns

    @property
    def target_name(self) -> str:
        return f"rv_next_{self.params.horizon}d"

    @property
    def baseline_column(self) -> str:
        """Feature column holding the naive persistence forecast."""
        return f"rv_{self.params.horizon}d"

    def build(self, raw: pd.DataFrame, require_target: bool = True) -> pd.DataFrame:
        """Build the modelling table from raw rows.

        Args:
            raw: rows with the time column (datetime64, or integer), the price column (> 0) or
                the return column (simple returns > -1), the extra feature columns and, if
                configured, the volume column (> 0). Any order: sorted by time here, the rows
                out of order counted (:func:`models.market_rows.order_by_time`); one row per
                time value.
            require_target: drop the last ``horizon`` rows, whose label is not yet known.
                Serving and monitoring pass False and keep them with a NaN label.

        Returns:
            DataFrame with the time column, the features, the label and ``label_end``; the
            first :attr:`history_rows` rows (incomplete history) are dropped.

        Raises:
            MarketDataError (a ValueError): a repeated time value; a non-positive price or
                volume, or a simple return of -1 or below (its log is undefined); naming the column.
        """
        import numpy as np

        out, r, history = self._features(raw)
        h = self.params.horizon
        future_r2 = (r**2).rolling(h).sum().shift(-h)  # sum of r^2 over t+1 .. t+h
        out[self.target_name] = np.sqrt(self.params.trading_days / h * future_r2)
        if self.fitted_baselines:
            out[DAILY_RETURN] = r
        return self._finish(out, history, require_target)

    def baselines_on(self, table: pd.DataFrame, rows: np.ndarray, majority_rate=None) -> dict[str, np.ndarray]:
        """Naive forecasts on ``rows``: persistence = the trailing ``h``-day volatility."""
        return {"persistence": table[self.baseline_column].to_numpy(dtype=float)[rows]}

    def fit_baselines(self, table: pd.DataFrame, plan):
        """The declared baselines on ``plan.holdout`` rows (fold order), the fitted ones fitted on each
        fold's training rows only (:func:`models.vol_baselines.fold_baselines`).

        Returns:
            ``(forecasts, fits)``: baseline name → forecasts, shape (holdout rows,), persistence
            first; ``fits`` the :class:`models.vol_baselines.FoldBaselines` (None when only
            persistence is declared).
        """
        from models.vol_baselines import fold_baselines

        forecasts = self.baselines_on(table, plan.holdout)
        if not self.fitted_baselines:
            return forecasts, None
        p = self.params
        fits = fold_baselines(table[DAILY_RETURN].to_numpy(dtype=float), table[self.target_name].to_numpy(dtype=float),
                              plan.folds, self.fitted_baselines, horizon=p.horizon, trading_days=p.trading_days,
                              ewma_lambda=p.ewma_lambda, dist=p.garch_innovations)
        return {**forecasts, **fits.forecasts}, fits

    def baseline_scores(self, table: pd.DataFrame, plan, fitted: bool = True) -> dict[str, np.ndarray]:
        """The declared baselines' forecasts on ``plan.holdout`` rows (:meth:`fit_baselines`);
        persistence only with ``fitted=False``."""
        if not fitted:
            return self.baselines_on(table, plan.holdout)
        return self.fit_baselines(table, plan)[0]


class DirectionBuilder(_MarketBuilder):
    """Forecast whether the next trading day's close is above today's (1 = up, 0 = not up).

    Features at ``t`` (data of rows ``<= t`` only): signed log returns ``r_{t-k}`` for
    ``k < return_lags``; trailing realised volatilities ``rv_{w}d``; with a volume column, the
    one-day log volume change and the log ratio of volume to its 22-day mean; the
    ``extra_features`` as they are on row ``t``. Label: ``1[r_{t+1} > 0]``. The returns come
    from ``price_column`` or ``return_column`` as for :class:`RealisedVolatilityBuilder`.

    Naive baselines, the honest yardsticks of a direction model (the efficient-market null
    says none should be beaten out of sample; Fama 1970): ``majority`` — always predict the
    training window's more frequent direction (its event rate as the probability);
    ``persistence`` — tomorrow's direction is today's (probability 1 if ``r_t > 0``, else 0).
    """

    name = "daily_direction"
    horizon = 1
    baselines = ("majority", "persistence")
    declared_baselines = baselines
    """Computed for every direction spec."""

    @property
    def target_name(self) -> str:
        return "up_next_1d"

    def build(self, raw: pd.DataFrame, require_target: bool = True) -> pd.DataFrame:
        """Build the modelling table; see :meth:`RealisedVolatilityBuilder.build` for the contract."""
        import numpy as np

        out, r, history = self._features(raw)
        nxt = r.shift(-1)
        out[self.target_name] = np.where(nxt.isna(), np.nan, (nxt > 0).astype(float))
        out = self._finish(out, history, require_target)
        if require_target:
            out[self.target_name] = out[self.target_name].astype(int)
        return out

    def baselines_on(self, table: pd.DataFrame, rows: np.ndarray, majority_rate=None) -> dict[str, np.ndarray]:
        """Naive probabilities of "up" on ``rows``: persistence from today's return; majority
        as ``majority_rate`` (the training event rate, a number or one per row), when given."""
        import numpy as np

        out = {"persistence": (table["return_lag0"].to_numpy(dtype=float)[rows] > 0).astype(float)}
        if majority_rate is not None:
            out["majority"] = np.broadcast_to(np.asarray(majority_rate, dtype=float), (len(rows),)).copy()
        return out

    def baseline_scores(self, table: pd.DataFrame, plan, fitted: bool = True) -> dict[str, np.ndarray]:
        """Naive probabilities of "up" on ``plan.holdout`` rows, in fold order (majority: each
        fold's own training event rate)."""
        import numpy as np

        y = table[self.target_name].to_numpy(dtype=float)
        majority = np.concatenate([np.full(len(f.test), y[f.train].mean()) for f in plan.folds])
        return self.baselines_on(table, plan.holdout, majority)


class FeatureBuilderSpec(BaseModel):
    """``features_from``: a built-in feature builder, chosen by ``name``, and its ``params``.

    Each builder has its own parameter model (the sections below); an unknown parameter or a
    bad value is reported with its path (``features_from.params.horizon``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    builder_class: ClassVar[type[_MarketBuilder]]

    name: str
    """The builder."""
    params: MarketParams
    """The builder's parameters."""

    @field_serializer("params")
    def _given_params(self, params: MarketParams, info: FieldSerializationInfo) -> dict:
        # The parameters as the spec gives them, without the defaults filled in: the spec's
        # dump (and its content hash, recorded with every version) stays what it was when the
        # parameters were a plain mapping.
        return params.model_dump(mode=info.mode, exclude_unset=True)

    def make(self, time_column: str | None) -> "_MarketBuilder":
        """A builder for rows ordered by ``time_column``."""
        return self.builder_class(self.params, time_column)


class RealisedVolatilityFeatures(FeatureBuilderSpec):
    """``features_from`` with ``name: realised_volatility`` (:class:`RealisedVolatilityBuilder`)."""

    builder_class = RealisedVolatilityBuilder
    name: Literal["realised_volatility"]
    """Next-days realised volatility from daily closes or returns (HAR-RV features)."""
    params: RealisedVolatilityParams
    """The builder's parameters."""


class DailyDirectionFeatures(FeatureBuilderSpec):
    """``features_from`` with ``name: daily_direction`` (:class:`DirectionBuilder`)."""

    builder_class = DirectionBuilder
    name: Literal["daily_direction"]
    """Next day's direction (up or not) from daily closes or returns."""
    params: DirectionParams
    """The builder's parameters."""


FeaturesFrom = Annotated[Union[RealisedVolatilityFeatures, DailyDirectionFeatures], Field(discriminator="name")]
"""The ``features_from`` section: one member per builder, told apart by ``name``."""

BUILDERS: dict[str, type[_MarketBuilder]] = {b.name: b for b in (RealisedVolatilityBuilder, DirectionBuilder)}
"""Feature builders a spec may name in ``features_from.name``."""
