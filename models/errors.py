"""One base for the errors a user can act on. The CLI catches :class:`FinmlError` alone and prints
its message once, as one line, without the class name; anything else is a bug and keeps its type.

Each subclass also derives from the built-in exception it replaced (``ValueError`` or
``RuntimeError``), so ``except ValueError`` in callers keeps working.
"""

from __future__ import annotations

SHOWN_BY_CALLER = "finml_shown_by_caller"
"""Name of the log-record attribute (``extra={SHOWN_BY_CALLER: True}``) marking a record whose
message the caller shows itself (a training summary's reason): a ``finml`` command's console skips
it, Prefect's API log keeps it (``flows.cli.common.ShowErrorsOnce``)."""


class FinmlError(Exception):
    """A problem with the user's input, files or environment, told in words that name the file,
    column, field or parameter to fix."""


class SpecError(FinmlError, ValueError):
    """A spec file is missing, unreadable, or invalid. The message names the file and field."""


class DataError(FinmlError, ValueError):
    """Data that cannot be used as it is: a source that cannot be read, a column that fails its
    expectations, a table too small to split, a batch that does not fit the model."""


class LeakageError(DataError):
    """Probable target leakage stopped a training run before any candidate was fitted.

    Attributes:
        columns: the features named in the message.
        setting: the dotted spec setting whose limit the features exceeded
            (``leakage.max_single_feature_auc``, ``leakage.max_abs_correlation``,
            ``leakage.max_missingness_auc``, ``leakage.point_in_time_check``), or None when no
            setting controls the stop (an id-like feature: its column's ``role`` does).
    """

    def __init__(self, message: str, columns: list[str], setting: str | None = None):
        super().__init__(message)
        self.columns = columns
        self.setting = setting

    def __reduce__(self):  # Prefect may pickle a failed run's exception: keep columns and setting
        return type(self), (str(self), self.columns, self.setting)


class MarketDataError(DataError):
    """Rows a market feature builder cannot turn into returns: a repeated time value, a price or
    volume that is not positive, a simple return of -1 or below. The message names the column.

    Attributes:
        column: the offending column.
        examples: a few offending values (:func:`short_examples`).
        count: how many rows offend.
    """

    def __init__(self, message: str, column: str | None = None, examples: list | None = None, count: int = 0):
        super().__init__(message)
        self.column = column
        self.examples = short_examples(examples or [])
        self.count = count


class UsageError(FinmlError, ValueError):
    """A command-line argument or output path that cannot be used."""


class RegistryError(FinmlError, RuntimeError):
    """A registry operation was refused (missing model or version, bad reference, no champion)."""


class OrchestrationError(FinmlError, RuntimeError):
    """Prefect cannot run what was asked: no API for Dask or deployments, a server that does not
    start, a deployment run that cannot be reached."""


EXAMPLE_CHARS = 80
"""Characters of one offending value an error message quotes; the rest is cut (a 1 MB cell must
not make a 1 MB message)."""
MAX_EXAMPLES = 5
"""Offending values an error message quotes at most."""


def shorten(text: str, limit: int = EXAMPLE_CHARS) -> str:
    """``text`` itself, or its first ``limit`` characters followed by ``…(N chars)`` (N: its length).
    A text this function already shortened is returned as it is."""
    if len(text) <= limit:
        return text
    head, mark, tail = text.rpartition("…(")
    if mark and len(head) <= limit and tail.endswith(" chars)") and tail[:-7].replace(",", "").isdecimal():
        return text
    return f"{text[:limit]}…({len(text):,} chars)"


def short_examples(values, count: int = MAX_EXAMPLES, limit: int = EXAMPLE_CHARS) -> list:
    """At most ``count`` of ``values`` (any iterable, read no further), each string cut by
    :func:`shorten`; a value of another type whose ``repr`` is longer than ``limit`` becomes its
    shortened ``repr``. Numbers and short values are kept as they are."""
    import itertools

    out = []
    for value in itertools.islice(values, count):
        if isinstance(value, str):
            value = shorten(value, limit)
        elif not isinstance(value, (int, float, bool)) and value is not None:
            text = repr(value)
            if len(text) > limit:
                value = shorten(text, limit)
        out.append(value)
    return out
