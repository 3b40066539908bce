"""The Keras network candidate, as a scikit-learn estimator that imports TensorFlow lazily.

Importing this module does not import TensorFlow; fitting, predicting or loading a network
does. The network is the one of our founding document: Dense 64 relu → Dense 32 relu →
Dense 1 (sigmoid with binary cross-entropy for classifiers, linear with mean squared error
for regression), trained with Adam, a validation split and early stopping on validation loss
(best weights restored).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

KERAS_FILE = "network.keras"

_FIT_LOCK = threading.Lock()
"""Keras seeds are process-global: fits in parallel threads would draw from each other's
random streams. Fits are serialised within a process (scikit-learn candidates still run in
parallel); separate processes (Dask workers) are independent."""


_DETERMINISTIC = False


def _keras():
    global _DETERMINISTIC
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # oneDNN reorders float sums: not bit-reproducible
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    if not _DETERMINISTIC:
        import tensorflow as tf

        # Seeds fix the random streams; op determinism also fixes the order of parallel float
        # reductions, which otherwise depends on how busy the other threads are (a rerun in a
        # parallel train_all would differ in the 4th decimal of ROC AUC).
        tf.config.experimental.enable_op_determinism()
        _DETERMINISTIC = True
    return keras


class KerasMLP(BaseEstimator):
    """Feed-forward network for binary classification or regression on preprocessed inputs.

    Args:
        task: ``"binary_classification"`` or ``"regression"``.
        hidden_units: widths of the hidden relu layers (default 64, 32).
        epochs: upper bound on training epochs; early stopping usually ends sooner.
        batch_size: mini-batch size.
        learning_rate: Adam step size.
        patience: epochs without validation-loss improvement before stopping.
        validation_fraction: share of the training rows held out for early stopping. For
            classification a stratified random share; for regression the *last* rows, so a
            time-ordered training set never validates on its own past.
        class_weight: ``"balanced"`` weights classes by ``n / (2 * n_class)`` (scikit-learn's
            convention); ``None`` for no weights. Classification only.
        prior_correction: when class weights are used, map the network's output back to the
            training class prior so probabilities stay calibrated: the weighted model's odds
            are multiplied by ``w_neg / w_pos`` (Elkan, "The Foundations of Cost-Sensitive
            Learning", IJCAI 2001, Theorem 1; Saerens et al., Neural Computation 14, 2002).
        seed: seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``) so a rerun
            on the same data gives the same weights.

    Inputs ``X`` are a 2-D float array (n_rows, n_features), already imputed and scaled by
    the pipeline; ``y`` is 0/1 for classification or a float for regression (standardised
    internally and transformed back in :meth:`predict`).
    """

    def __init__(
        self,
        task: str = "binary_classification",
        hidden_units: tuple[int, ...] | list[int] = (64, 32),
        epochs: int = 200,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        patience: int = 10,
        validation_fraction: float = 0.15,
        class_weight: str | None = "balanced",
        prior_correction: bool = True,
        seed: int = 42,
    ):
        self.task = task
        self.hidden_units = hidden_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.prior_correction = prior_correction
        self.seed = seed

    # ---- scikit-learn protocol -------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier" if self.task == "binary_classification" else "regressor"
        return tags

    def _check_params(self) -> None:
        if self.task not in ("binary_classification", "regression"):
            raise ValueError(f"task must be 'binary_classification' or 'regression', got {self.task!r}")
        if not self.hidden_units or any(int(u) < 1 for u in self.hidden_units):
            raise ValueError("hidden_units must list positive layer widths")
        if not 0.0 < self.validation_fraction < 0.5:
            raise ValueError("validation_fraction must be in (0, 0.5)")
        if self.class_weight not in (None, "balanced"):
            raise ValueError("class_weight must be 'balanced' or null")
        for name in ("epochs", "batch_size", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")

    def _validation_split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(y)
        n_val = max(1, int(round(n * self.validation_fraction)))
        if self.task == "regression":
            idx = np.arange(n)
            return idx[: n - n_val], idx[n - n_val :]
        from sklearn.model_selection import train_test_split

        tr, va = train_test_split(
            np.arange(n), test_size=n_val, stratify=y, random_state=self.seed
        )
        return np.sort(tr), np.sort(va)

    def fit(self, X: Any, y: Any) -> "KerasMLP":
        """Train the network. Raises ValueError on bad parameters or a single-class target."""
        with _FIT_LOCK:
            return self._fit(X, y)

    def _fit(self, X: Any, y: Any) -> "KerasMLP":
        self._check_params()
        keras = _keras()
        X = np.asarray(X, dtype="float32")
        y = np.asarray(y, dtype="float64").ravel()
        if not np.isfinite(X).all():
            raise ValueError("KerasMLP needs finite inputs: impute missing values before the network")
        self.n_features_in_ = X.shape[1]
        keras.utils.set_random_seed(int(self.seed))

        weights = None
        self.prior_odds_factor_ = 1.0
        if self.task == "binary_classification":
            self.classes_ = np.array([0, 1])
            n_pos = float(y.sum())
            n_neg = float(len(y) - n_pos)
            if n_pos == 0 or n_neg == 0:
                raise ValueError("the target has a single class; a classifier cannot be trained")
            if self.class_weight == "balanced":
                w_pos, w_neg = len(y) / (2 * n_pos), len(y) / (2 * n_neg)
                weights = {0: w_neg, 1: w_pos}
                if self.prior_correction:
                    self.prior_odds_factor_ = w_neg / w_pos
            target = y.astype("float32")
            self.y_mean_, self.y_scale_ = 0.0, 1.0
        else:
            self.y_mean_ = float(y.mean())
            self.y_scale_ = float(y.std()) or 1.0
            target = ((y - self.y_mean_) / self.y_scale_).astype("float32")

        tr, va = self._validation_split(y)
        layers = [keras.Input(shape=(X.shape[1],))]
        for width in self.hidden_units:
            layers.append(keras.layers.Dense(int(width), activation="relu"))
        out_activation = "sigmoid" if self.task == "binary_classification" else "linear"
        layers.append(keras.layers.Dense(1, activation=out_activation))
        model = keras.Sequential(layers)
        loss = "binary_crossentropy" if self.task == "binary_classification" else "mean_squared_error"
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=self.learning_rate), loss=loss)
        stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=int(self.patience), restore_best_weights=True
        )
        history = model.fit(
            X[tr], target[tr],
            validation_data=(X[va], target[va]),
            epochs=int(self.epochs), batch_size=int(self.batch_size),
            class_weight=weights, callbacks=[stop], verbose=0, shuffle=True,
        )
        self.model_ = model
        self.n_epochs_ = len(history.history["loss"])
        self.best_val_loss_ = float(min(history.history["val_loss"]))
        return self

    def _raw(self, X: Any) -> np.ndarray:
        if getattr(self, "model_", None) is None:
            raise RuntimeError("KerasMLP is not fitted (or its network file was not loaded)")
        X = np.asarray(X, dtype="float32")
        # Call the model directly in chunks: Model.predict retraces its tf.function for every
        # new input shape, which is slow and noisy when scoring many small batches.
        chunks = [
            np.asarray(self.model_(X[i : i + 65536], training=False)).ravel()
            for i in range(0, len(X), 65536)
        ]
        return np.concatenate(chunks).astype("float64") if chunks else np.empty(0)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities, shape (n_rows, 2): column 1 is the positive class."""
        if self.task != "binary_classification":
            raise AttributeError("predict_proba is only available for classification")
        p = np.clip(self._raw(X), 1e-7, 1 - 1e-7)
        if self.prior_odds_factor_ != 1.0:
            odds = p / (1 - p) * self.prior_odds_factor_
            p = odds / (1 + odds)
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (0/1, cut-off 0.5) for classification; the forecast for regression."""
        if self.task == "binary_classification":
            return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
        return self._raw(X) * self.y_scale_ + self.y_mean_

    # ---- persistence ------------------------------------------------------------------

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("model_", None)  # saved beside the pickle in Keras's own format
        return state

    def save_network(self, folder: Path) -> Path:
        """Write the fitted network to ``folder/network.keras``."""
        path = Path(folder) / KERAS_FILE
        self.model_.save(path)
        return path

    def load_network(self, folder: Path) -> None:
        """Load the network from ``folder/network.keras`` (compiled state is not needed)."""
        keras = _keras()
        self.model_ = keras.saving.load_model(Path(folder) / KERAS_FILE, compile=False)

    def load_network_bytes(self, data: bytes) -> None:
        """Load the network from the bytes of a ``network.keras`` file that were checked: they are
        written to a private temporary folder (mode 0700, removed after) for Keras's loader, so
        the file loaded is the one checked, whatever happens to the registry's copy."""
        import tempfile

        keras = _keras()
        with tempfile.TemporaryDirectory(prefix="finml-network-") as tmp:  # created 0700
            path = Path(tmp) / KERAS_FILE
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self.model_ = keras.saving.load_model(path, compile=False)
