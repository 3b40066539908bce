"""The errors of reading a source: a source that cannot be read (or is too large to load), one
that could not be reached, and values that cannot be interpreted as the spec declares."""

from __future__ import annotations

from models.errors import DataError, short_examples


class DataSourceError(DataError, RuntimeError):
    """The source cannot be read: missing file, unknown data set, failing query, a batch over
    its limits (``FINML_MAX_BATCH_ROWS``, memory) ..."""


class DataPreparationError(DataError):
    """Values cannot be interpreted as the spec declares (for example unparseable dates).

    Attributes:
        column: the offending column.
        examples: a few offending raw values, each long one shortened
            (:func:`models.errors.short_examples`).
    """

    def __init__(self, message: str, column: str | None = None, examples: list | None = None):
        super().__init__(message)
        self.column = column
        self.examples = short_examples(examples or [])


class TransientSourceError(DataSourceError):
    """The source could not be reached (a refused or lost database connection): worth a retry,
    unlike a bad query or a missing file."""
