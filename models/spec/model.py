""":class:`ModelSpec`: the spec's fields, validated as a whole by the rules of
:mod:`models.spec.checks`."""

from __future__ import annotations

from pydantic import model_validator

from models.spec.checks import spec_problems
from models.spec.fields import SpecFields


class ModelSpec(SpecFields):
    """A financial model: its data, expectations, split, candidates, gate, drift and schedules.

    One YAML file per model (``models/specs/<name>.yaml``); the sections below are its parts.
    Besides each field's own rules, the fields must fit each other (the checks of
    ``models.spec.checks``): a metric fits the task, a baseline exists, a time column exists
    where one is needed, and so on.
    """

    @model_validator(mode="after")
    def _consistency(self) -> "ModelSpec":
        errors = spec_problems(self)
        if errors:
            raise ValueError("; ".join(errors))
        return self
