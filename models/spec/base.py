"""Pieces every part of the spec schema uses: the strict base model, safe names, and
catalogue-checked strings."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

from models.errors import shorten
from models.metrics import METRICS

SAFE_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
"""Names that become directory names: letters, digits, ``_`` and ``-``; no dots or slashes, no
trailing newline (``\\Z``, not ``$``, which also matches before a final newline)."""


class Strict(BaseModel):
    """Base of every spec section: unknown keys are rejected, values are frozen, and the
    attribute docstrings become the field descriptions of ``docs/spec-reference.md``."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


STORED = "finml.stored_spec"
"""Validation context key (``model_validate(data, context={STORED: True})``) marking the dump of a
spec kept in a registry version, read back by :func:`models.spec.stored.stored_spec`: the rules added
since such versions were written (``intended_use`` and ``limitations`` required) do not apply to it."""


def is_stored(info: Any) -> bool:
    """True when a validator's ``ValidationInfo`` carries the :data:`STORED` context."""
    context = getattr(info, "context", None)
    return bool(context and context.get(STORED))


CLOSE_MATCH_CUTOFF = 0.6
"""Similarity (:class:`difflib.SequenceMatcher` ratio) from which a misspelt name is said to mean a
known one: ``rol`` → ``role``, ``Hom`` → ``Home``."""


def close_match(word: str, choices: Collection[str]) -> str | None:
    """The one of ``choices`` closest to ``word`` (:func:`difflib.get_close_matches`, cutoff
    :data:`CLOSE_MATCH_CUTOFF`), None when none is close: the spec's "did you mean" hints (a
    misspelt key, a tag, a column name)."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=CLOSE_MATCH_CUTOFF)
    return close[0] if close else None


def did_you_mean(word: str, choices: Collection[str]) -> str:
    """``", did you mean 'Home'"`` for the close match of ``word`` among ``choices`` (:func:`close_match`),
    ``""`` when there is none."""
    close = close_match(word, choices)
    return f", did you mean {close!r}" if close else ""


def safe_name(value: str, what: str) -> str:
    """``value`` if it matches :data:`SAFE_NAME`.

    Raises:
        ValueError: naming ``what`` and the rule.
    """
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        raise ValueError(
            f"{what} {shorten(repr(value))} is not a safe name: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit (it becomes a directory name)"
        )
    return value


@dataclass(frozen=True)
class OneOf:
    """Marks a string field whose value must be a key of a catalogue (``names``); the spec
    reference lists the keys. Use through :func:`one_of`."""

    what: str
    names: Collection[str]

    def __call__(self, value: str) -> str:
        if value not in self.names:
            raise ValueError(f"unknown {self.what} {shorten(repr(value))}; choose one of {sorted(self.names)}")
        return value


def one_of(what: str, names: Collection[str]):
    """A ``str`` type that must be one of ``names`` ("unknown metric 'x'; choose one of [...]")."""
    check = OneOf(what, names)
    return Annotated[str, AfterValidator(check), check]


def check_metric(name: str) -> str:
    """``name`` if it is a metric of :data:`models.metrics.METRICS`.

    Raises:
        ValueError: "unknown metric ...; choose one of [...]".
    """
    return OneOf("metric", METRICS)(name)


MetricName = one_of("metric", METRICS)
"""A metric of the catalogue (``models/metrics.py``)."""


FREE_FORM_DEPTH = 5
"""Levels a free-form value (a candidate's ``params``) may nest: ``{hidden_units: [64, 32]}`` is 2."""
FREE_FORM_ITEMS = 1_000
"""Values (keys, items and scalars together) a free-form value may hold."""
FREE_FORM_CHARS = 1_000
"""Characters of one string (or key) inside a free-form value."""


def bounded_free_form(value: Any) -> Any:
    """``value`` if it is small: at most :data:`FREE_FORM_DEPTH` levels of mappings and lists,
    :data:`FREE_FORM_ITEMS` values in all, strings of at most :data:`FREE_FORM_CHARS` characters.
    The walk stops at the first excess, so a value whose parts are shared many times (a YAML
    alias bomb, or one built in Python) is refused without being expanded.

    Raises:
        ValueError: naming the path inside the value and the bound it exceeds.
    """
    seen = 1
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, where, depth = stack.pop()
        at = f" (at {shorten(where)})" if where else ""
        if isinstance(node, str) and len(node) > FREE_FORM_CHARS:
            raise ValueError(f"a string of {len(node):,} characters{at}: at most {FREE_FORM_CHARS:,} allowed")
        if not isinstance(node, (Mapping, list, tuple, set, frozenset)):
            continue
        if depth >= FREE_FORM_DEPTH:
            raise ValueError(f"nested deeper than {FREE_FORM_DEPTH} levels{at}")
        seen += len(node) * (2 if isinstance(node, Mapping) else 1)
        if seen > FREE_FORM_ITEMS:
            raise ValueError(f"holds more than {FREE_FORM_ITEMS:,} values (keys, items and numbers together); "
                             "hyperparameters are numbers, strings or short lists of them")
        if isinstance(node, Mapping):
            for key, item in node.items():
                stack.append((key, where, depth + 1))
                stack.append((item, f"{where}.{key}" if where else str(key), depth + 1))
        else:
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(node))
    return value
