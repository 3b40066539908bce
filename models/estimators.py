"""Candidate factories and pipeline persistence.

Every candidate is a scikit-learn ``Pipeline`` whose preprocessing is fitted inside the
pipeline, so it only ever sees the rows it is fitted on:

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
    estimator: str, task: str, params: dict[str, Any], numeric: list[str], categorical: list[str]
) -> Pipeline:
    """Build an unfitted candidate pipeline.

    Args:
        estimator: a key of ``models.spec.ESTIMATORS``.
        task: ``"binary_classification"`` or ``"regression"``.
        params: hyperparameters of the final estimator (validated by the spec).
        numeric, categorical: feature column names, as in the input DataFrame.

    Returns:
        ``Pipeline([("preprocess", ColumnTransformer), ("model", estimator)])``; it takes a
        DataFrame with (at least) these columns, in any order.
    """
    cls = _estimator_class(estimator, task)
    kwargs = {**_DEFAULTS[estimator], **params}
    if estimator == "hist_gradient_boosting":
        mask = [False] * len(numeric) + [True] * len(categorical)
        model = cls(categorical_features=mask if categorical else None, **kwargs)
        prep = _tree_preprocessor(numeric, categorical)
    elif estimator == "keras_mlp":
        model = cls(task=task, **kwargs)
        prep = _dense_preprocessor(numeric, categorical)
    else:
        model = cls(**kwargs)
        prep = _dense_preprocessor(numeric, categorical)
    return Pipeline([("preprocess", prep), ("model", model)])


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
