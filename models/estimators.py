"""Candidate factories and pipeline persistence.

Every candidate is a scikit-learn ``Pipeline`` whose preprocessing is fitted inside the
pipeline, so it only ever sees the rows it is fitted on. Its first step,
:class:`TrainingRangeGuard`, leaves out the features constant on those rows (they are held at
their training value, so they cannot move a score) and keeps each numeric feature's training
range; then:

- ``logistic_regression`` / ``linear_regression`` and ``keras_mlp``: numeric columns are
  median-imputed with missing-value indicators and standardised; categorical columns are
  imputed with a ``"missing"`` level and one-hot encoded, ignoring categories unseen in
  training;
- ``hist_gradient_boosting``: numeric columns pass through (the trees handle missing values);
  categorical columns are ordinal-encoded and declared categorical, with unseen categories
  and missing values both treated as missing.
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from models.keras_net import KERAS_FILE, KerasMLP

PIPELINE_FILE = "pipeline.joblib"

_DEFAULTS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"max_iter": 5000},
    "linear_regression": {},
    "hist_gradient_boosting": {"random_state": 0},
    "keras_mlp": {},
}


def _estimator_class(estimator: str, task: str):
    classify = task == "binary_classification"
    return {
        "logistic_regression": LogisticRegression,
        "linear_regression": LinearRegression,
        "hist_gradient_boosting": HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor,
        "keras_mlp": KerasMLP,
    }[estimator]


def check_candidate_params(estimator: str, task: str, params: dict[str, Any]) -> str | None:
    """Return a message naming unknown or invalid hyperparameters, or None when they are fine."""
    cls = _estimator_class(estimator, task)
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "task", "categorical_features"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        return f"unknown hyperparameter(s) {unknown} for {estimator}; allowed: {sorted(allowed)}"
    if estimator == "keras_mlp":
        try:
            KerasMLP(task=task, **params)._check_params()
        except (ValueError, TypeError) as err:
            return str(err)
    return None


def missing_as_nan(X: Any) -> np.ndarray:
    """Categorical inputs as an object array whose every missing marker is ``np.nan``.

    Files spell a missing category differently: CSV readers give ``NaN``, Parquet gives
    ``None``, nullable dtypes give ``pd.NA``. scikit-learn's ``SimpleImputer`` only sees
    ``NaN`` in object arrays, so without this step a ``None`` would skip imputation and be
    one-hot encoded as an unknown category: the same applicant scored differently by file
    format. Category dtypes become plain objects too.
    """
    values = np.array(X, dtype=object)
    values[pd.isna(values)] = np.nan
    return values


class TrainingRangeGuard(TransformerMixin, BaseEstimator):
    """First step of every candidate: leaves out the features constant on the training rows and
    keeps the training range of every numeric feature.

    A feature with one value on the training rows (missing counted as a value) carries no
    information the fit could use, yet a network's input weights for it are never trained: a
    constant that took another value at scoring swung a Keras network's scores from 0.19 to
    0.41. Such a feature is replaced, on every row transformed, by its training value, so the
    fitted model never sees it vary (the column is kept so that the later steps and the
    scoring frame keep their shape). Why, and how out-of-range values are reported:
    docs/data-quality.md (features constant in training, values outside the training range).

    Args:
        numeric: the numeric feature columns (their min and max are kept).

    Attributes (after ``fit``):
        n_training_rows_: rows it was fitted on.
        constant_features_: the columns constant on the training rows, in input order.
        constant_values_: column → its training value (``None`` for an all-missing column).
        training_range_: numeric column → ``(min, max)`` over its non-missing training values
            (columns with no such value are left out).
    """

    def __init__(self, numeric: list[str] | None = None):
        self.numeric = numeric

    def fit(self, X: pd.DataFrame, y=None) -> TrainingRangeGuard:
        """Find the constant columns and the numeric ranges of ``X`` (rows × feature columns)."""
        self.n_training_rows_ = int(len(X))
        self.constant_features_ = [c for c in X.columns if X[c].nunique(dropna=False) <= 1]
        self.constant_values_ = {}
        for c in self.constant_features_:
            present = X[c].dropna()
            self.constant_values_[c] = present.iloc[0] if len(present) else None
        self.training_range_ = {}
        for c in self.numeric or []:
            if c in X.columns:
                values = pd.to_numeric(X[c], errors="coerce")
                if values.notna().any():
                    self.training_range_[c] = (float(values.min()), float(values.max()))
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` with every constant column set to its training value on every row."""
        if not self.constant_features_:
            return X
        X = X.copy()
        numeric = set(self.numeric or [])
        for c in self.constant_features_:
            value = self.constant_values_[c]
            if c in numeric:
                X[c] = np.full(len(X), np.nan if value is None else float(value))
            else:
                X[c] = pd.Series([value] * len(X), index=X.index, dtype=object)
        return X

    def out_of_range_counts(self, X: pd.DataFrame) -> dict[str, int]:
        """Per numeric feature of ``X``, the rows whose non-missing value lies outside the
        training range (strictly below its min or above its max); every ranged column is listed."""
        out = {}
        for c, (low, high) in self.training_range_.items():
            if c in X.columns:
                values = pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=float)
                out[c] = int(np.count_nonzero((values < low) | (values > high)))
        return out


def range_guard(pipeline: Pipeline) -> TrainingRangeGuard | None:
    """The pipeline's :class:`TrainingRangeGuard`, or None (pipelines saved before it existed)."""
    step = dict(pipeline.steps).get("training_range")
    return step if isinstance(step, TrainingRangeGuard) else None


def training_categories(pipeline) -> dict[str, list]:
    """The categories each categorical feature took on the pipeline's training rows, from its
    fitted encoder (one-hot or ordinal, :func:`build_candidate`): feature → the known levels
    (``"missing"``, the one-hot imputation's level, included when training had missing values).
    Empty for a pipeline without a categorical encoder (or not a :class:`Pipeline`)."""
    out: dict[str, list] = {}
    steps = getattr(pipeline, "steps", None) or []
    for _, prep in steps:
        for _, trans, cols in getattr(prep, "transformers_", []):
            encoders = dict(getattr(trans, "steps", []))
            encoder = encoders.get("onehot", encoders.get("ordinal"))
            if encoder is not None and hasattr(encoder, "categories_"):
                out.update({c: list(levels) for c, levels in zip(list(cols), encoder.categories_)})
    return out


def unseen_category_mask(pipeline, X: pd.DataFrame, categorical: list[str]) -> dict[str, np.ndarray]:
    """Per categorical feature of ``X``, the rows whose present value the pipeline never saw in
    training (:func:`training_categories`): the one-hot encoder scores such a value as all-zero
    indicators and the ordinal one as missing, so the model did not score the value itself.
    Missing values are not counted (the pipeline imputes them as it learned to).

    Returns:
        feature → boolean array of shape (len(X),), only features with a known category list.
    """
    known = training_categories(pipeline)
    out = {}
    for feature in categorical:
        if feature not in known or feature not in X.columns:
            continue
        values = pd.Series(missing_as_nan(X[feature].to_numpy()), index=X.index)
        levels = pd.Index([lv for lv in known[feature] if not (isinstance(lv, float) and np.isnan(lv))], dtype=object)
        present = values.notna().to_numpy()
        out[feature] = present & ~values.astype(object).isin(levels).to_numpy()
    return out


def _dense_preprocessor(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    parts = []
    if numeric:
        parts.append((
            "numeric",
            Pipeline([
                ("impute", SimpleImputer(strategy="median", add_indicator=True)),
                ("scale", StandardScaler()),
            ]),
            numeric,
        ))
    if categorical:
        parts.append((
            "categorical",
            Pipeline([
                ("missing_as_nan", FunctionTransformer(missing_as_nan, feature_names_out="one-to-one")),
                ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]),
            categorical,
        ))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def _tree_preprocessor(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    parts = []
    if numeric:
        parts.append(("numeric", "passthrough", numeric))
    if categorical:
        parts.append((
            "categorical",
            Pipeline([
                ("missing_as_nan", FunctionTransformer(missing_as_nan, feature_names_out="one-to-one")),
                ("ordinal", OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
                )),
            ]),
            categorical,
        ))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def build_candidate(
    estimator: str, task: str, params: dict[str, Any], numeric: list[str], categorical: list[str],
    monotone: dict[str, int] | None = None,
) -> Pipeline:
    """Build an unfitted candidate pipeline.

    Args:
        estimator: a key of ``models.spec.ESTIMATORS``.
        task: ``"binary_classification"`` or ``"regression"``.
        params: hyperparameters of the final estimator (validated by the spec).
        numeric, categorical: feature column names, as in the input DataFrame.
        monotone: declared directions (column → +1 or -1, :attr:`ModelSpec.monotone_features`):
            the gradient-boosting candidate is constrained by them (``monotonic_cst``, positive
            class probability or forecast), unless its ``params`` set ``monotonic_cst`` themselves;
            the other estimators are checked, not constrained.

    Returns:
        ``Pipeline([("training_range", TrainingRangeGuard), ("preprocess", ColumnTransformer),
        ("model", estimator)])``; it takes a
        DataFrame with (at least) these columns, in any order.
    """
    cls = _estimator_class(estimator, task)
    kwargs = {**_DEFAULTS[estimator], **params}
    if estimator == "hist_gradient_boosting":
        mask = [False] * len(numeric) + [True] * len(categorical)
        if monotone and "monotonic_cst" not in kwargs:
            kwargs["monotonic_cst"] = [monotone.get(c, 0) for c in numeric] + [0] * len(categorical)
        model = cls(categorical_features=mask if categorical else None, **kwargs)
        prep = _tree_preprocessor(numeric, categorical)
    elif estimator == "keras_mlp":
        model = cls(task=task, **kwargs)
        prep = _dense_preprocessor(numeric, categorical)
    else:
        model = cls(**kwargs)
        prep = _dense_preprocessor(numeric, categorical)
    return Pipeline([("training_range", TrainingRangeGuard(list(numeric))), ("preprocess", prep), ("model", model)])


def save_pipeline(pipeline: Pipeline, folder: str | Path) -> list[Path]:
    """Write a fitted pipeline to ``folder`` (which must exist); return the files written.

    scikit-learn parts go to ``pipeline.joblib``; a Keras network goes to ``network.keras``
    in Keras's own format.
    """
    folder = Path(folder)
    written = []
    final = pipeline.steps[-1][1]
    if isinstance(final, KerasMLP):
        written.append(final.save_network(folder))
    path = folder / PIPELINE_FILE
    joblib.dump(pipeline, path)
    written.append(path)
    return written


def load_pipeline(folder: str | Path) -> Pipeline:
    """Load a pipeline written by :func:`save_pipeline` from a folder (for tools and tests: the
    registry loads the bytes it checked, :func:`load_pipeline_bytes`).

    Unpickling runs code: load only files whose SHA-256 (or signature) you have checked.
    """
    folder = Path(folder)
    return load_pipeline_bytes({name: (folder / name).read_bytes() for name in (PIPELINE_FILE, KERAS_FILE)
                                if (folder / name).is_file()})


def load_pipeline_bytes(files: Mapping[str, bytes]) -> Pipeline:
    """Load a pipeline written by :func:`save_pipeline` from its files' bytes (file name in the
    model folder → bytes), already checked: what is unpickled is exactly what was hashed, so a
    file swapped on disk after the check is never read (``models.registry`` passes the bytes
    it verified).

    Raises:
        FileNotFoundError: ``pipeline.joblib`` is missing, or the Keras network of a pipeline
            that needs one.
    """
    if PIPELINE_FILE not in files:
        raise FileNotFoundError(f"the version's model folder has no {PIPELINE_FILE}")
    pipeline = joblib.load(io.BytesIO(files[PIPELINE_FILE]))
    final = pipeline.steps[-1][1]
    if isinstance(final, KerasMLP):
        if KERAS_FILE not in files:
            raise FileNotFoundError(f"the pipeline's Keras network ({KERAS_FILE}) is missing")
        final.load_network_bytes(files[KERAS_FILE])
    return pipeline


def predict_scores(pipeline: Pipeline, X, task: str) -> np.ndarray:
    """The model's score per row: P(positive) for classifiers, the forecast for regression."""
    if task == "binary_classification":
        return np.asarray(pipeline.predict_proba(X))[:, 1]
    return np.asarray(pipeline.predict(X), dtype=float)


def logistic_parts(pipeline):
    """``(preprocess, model)`` of a fitted pipeline whose final step is a binary
    ``LogisticRegression`` on a ``ColumnTransformer``; None for any other model."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression

    steps = getattr(pipeline, "steps", None)
    if not steps or len(steps) < 2:
        return None
    model, prep = steps[-1][1], steps[-2][1]
    if not isinstance(model, LogisticRegression) or not isinstance(prep, ColumnTransformer):
        return None
    if np.asarray(model.coef_).shape[0] != 1:
        return None
    return prep, model


def input_features(prep) -> list[str]:
    """The source feature of each output column of a fitted preprocessing ``ColumnTransformer``
    (:func:`build_candidate`'s): a numeric column and its ``missingindicator_<col>`` belong to
    ``col``; each one-hot indicator to its categorical column. Shape: one name per model input.

    Raises:
        ValueError: an output column whose feature cannot be told.
    """
    owners: list[str | None] = [None] * sum(s.stop - s.start for s in prep.output_indices_.values())
    for name, trans, cols in prep.transformers_:
        if name == "remainder" or isinstance(trans, str) and trans == "drop":
            continue
        cols = list(cols)
        block = prep.output_indices_[name]
        steps = dict(getattr(trans, "steps", []))
        onehot = steps.get("onehot")
        if onehot is not None:
            owned = [c for c, cats in zip(cols, onehot.categories_) for _ in cats]
        else:
            out = cols if isinstance(trans, str) else [str(o) for o in trans.get_feature_names_out(cols)]
            owned = [o.removeprefix("missingindicator_") for o in out]
        if len(owned) != block.stop - block.start or not set(owned) <= set(cols):
            raise ValueError(f"cannot tell which feature each input of transformer {name!r} comes from")
        owners[block] = owned
    if any(o is None for o in owners):
        raise ValueError("the preprocessing has outputs no transformer accounts for")
    return owners
