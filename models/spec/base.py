"""Pieces every part of the spec schema uses: the strict base model, safe names, and
catalogue-checked strings."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from models.metrics import METRICS

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
"""Names that become directory names: letters, digits, ``_`` and ``-``; no dots or slashes."""


class Strict(BaseModel):
    """Base of every spec section: unknown keys are rejected, values are frozen, and the
    attribute docstrings become the field descriptions of ``docs/spec-reference.md``."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def safe_name(value: str, what: str) -> str:
    """``value`` if it matches :data:`SAFE_NAME`.

    Raises:
        ValueError: naming ``what`` and the rule.
    """
    if not SAFE_NAME.match(value):
        raise ValueError(
            f"{what} {value!r} is not a safe name: use 1-64 letters, digits, '_' or '-', "
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
            raise ValueError(f"unknown {self.what} {value!r}; choose one of {sorted(self.names)}")
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
