"""The ``segments`` of a spec: declared columns whose values (or bands) split the monitoring and
back-test figures (drift, performance, calibration) by segment. What is measured per segment is
:mod:`tasks.segments`; which columns may be segments is :func:`models.spec.checks.check_segments`;
reading: docs/drift.md, "Segments"."""

from __future__ import annotations

from typing import Any

from pydantic import model_serializer, model_validator

from models.errors import shorten
from models.spec.base import Strict
from models.spec.monitoring import band_labels, band_problem


class SegmentSpec(Strict):
    """One entry of ``segments``: a column name (``Home``), or a numeric feature with its bands
    (``{column: Amount, bands: [1000, 2000, 5000]}`` gives the segments ``< 1000``,
    ``[1000, 2000)``, ``[2000, 5000)``, ``>= 5000``; each band includes its lower edge, as those of
    ``fairness.bands``). A protected numeric column is given by name: its bands are
    ``fairness.bands``. An entry given by name is written back (dump, hash) as the name."""

    column: str
    """A declared column (which ones: ``segments``)."""
    bands: list[float] | None = None
    """Increasing cut points (at least one, finite) of a numeric feature; None: the segments are the
    column's values (or a protected column's ``fairness.bands``)."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, v: Any) -> Any:
        if isinstance(v, str):
            return {"column": v}
        if not isinstance(v, dict):
            raise ValueError(f"an entry of segments is a column name or {{column: <name>, bands: [cut points]}}, "
                             f"got {shorten(repr(v))}")
        return v

    @model_validator(mode="after")
    def _check(self) -> "SegmentSpec":
        problem = None if self.bands is None else band_problem(self.column, self.bands)
        if problem:
            raise ValueError(problem)
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler) -> Any:
        return self.column if self.bands is None else handler(self)

    @property
    def labels(self) -> list[str] | None:
        """The band names, lowest first (:func:`models.spec.monitoring.band_labels`); None without bands."""
        return None if self.bands is None else band_labels(self.bands)


__all__ = ["SegmentSpec"]
