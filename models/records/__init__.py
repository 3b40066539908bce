"""Typed records that cross task boundaries and are written as JSON (registry metadata, history
events, monitoring records, gate results, champion scores, the Evidently summary).

Each record is a pydantic model; the JSON a record writes is its ``model_dump(mode="json")``, and a
file written by an earlier version of the code reads back into the same type (see
``docs/registry.md``). Import a record from its module (``models.records.gate`` ...).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    """Base of the typed records: unknown keys are kept (a file written by a newer or older
    version of the code round-trips without loss), values are validated on construction."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)
