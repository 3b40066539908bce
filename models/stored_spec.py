"""The spec a registry version was trained with, rebuilt from its metadata, and how the current
spec file differs from it. Monitoring and scoring judge a version with this spec; the rules (what
comes from the stored spec, what from the current file, and why) are in ``docs/drift.md``, "Which
spec judges a version".
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError, model_validator

from models.errors import SpecError, shorten
from models.records.monitoring import SpecComparison
from models.spec import FileSource, ModelSpec, find_spec, spec_problems
from models.spec import stored_spec as read_stored_dump
from models.spec.base import STORED
from models.spec.stored import LENIENT_DEFAULTS

FROM_CURRENT = ("drift.on_drift", "drift.on_feature_drift")
"""Settings of the stored spec replaced by the current file's: what to do on an alarm (retrain or
alert) is an operational decision, not a judgement of the version."""


class StoredSpecError(SpecError):
    """Neither the spec stored with a version nor the current spec file can judge it."""


class _AsTrained(ModelSpec):
    """A stored spec validated field by field but without today's cross-field checks: it passed
    the checks of the code that trained it, and checks added since must not make an existing
    version impossible to monitor (what they say is kept in ``SpecComparison.stored_problem``)."""

    @model_validator(mode="after")
    def _consistency(self) -> "_AsTrained":
        return self


def _field(metadata: Any, key: str, default: Any = None) -> Any:
    """A key of ``metadata.json`` read as a mapping, or an attribute of a ``VersionMetadata``."""
    return metadata.get(key, default) if isinstance(metadata, Mapping) else getattr(metadata, key, default)


def _stored_data(metadata: Mapping[str, Any]) -> dict[str, Any]:
    data = _field(metadata, "spec")
    if not isinstance(data, Mapping):
        raise SpecError(f"{_origin(metadata)}: the metadata holds no stored spec (key 'spec')")
    return copy.deepcopy(dict(data))


def _origin(metadata: Any) -> str:
    return f"{_field(metadata, 'model', '?')} version {_field(metadata, 'version', '?')}"


def stored_spec(metadata: Mapping[str, Any]) -> ModelSpec:
    """The :class:`ModelSpec` a version was trained with, from its metadata's ``spec`` (the dump
    :func:`tasks.promote.build_metadata` wrote).

    The stored spec is read as it is; one written by older code reads too: fields added to the
    schema since take their defaults, and when it does not validate as it is, a missing or empty
    ``intended_use`` / ``limitations`` reads as blank (:func:`models.spec.stored_spec`, which relaxes
    only those rules for stored dumps) and today's cross-field checks
    (:func:`models.spec.spec_problems`) are skipped (it passed those of the code that trained it).
    A stored file source keeps its path as stored (absolute when the spec was read from a file) and
    has no spec folder.

    Args:
        metadata: the version's ``metadata.json`` as a mapping (or a ``VersionMetadata``).

    Raises:
        SpecError: naming the version and the field, when a field no longer validates (a key
            removed from the schema, a value of another type) or there is no stored spec.
    """
    data = _stored_data(metadata)
    origin = f"the spec stored with {_origin(metadata)}"
    try:
        return read_stored_dump(data, origin=origin)
    except SpecError as err:
        try:
            return _AsTrained.model_validate({**LENIENT_DEFAULTS, **data}, context={STORED: True})
        except ValidationError:
            raise err from None


def spec_differences(stored: ModelSpec, current: ModelSpec) -> list[str]:
    """The dotted paths of the fields where ``current`` differs from ``stored``: a changed value
    (``drift.bins``, ``columns.Amount.max``), a key present in one only (``columns.NewColumn``), an
    element of a list of the same length (``candidates.1.params.C``) or a list of another length
    (``limitations``). Stored first order, then the current spec's new keys.

    Both are compared in their canonical JSON form (:meth:`ModelSpec.canonical_form`, as hashed by
    :meth:`ModelSpec.content_hash`; ``governance`` is not in it), so a field added to the schema
    since the version was stored compares at its default on both sides (a stored spec without
    ``intended_use`` or ``limitations`` reads them as blank).
    """
    return _differences(stored.canonical_form(), current.canonical_form(), "")


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _differences(a: Any, b: Any, path: str) -> list[str]:
    if a == b:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in [*a, *(k for k in b if k not in a)]:
            if key in a and key in b:
                out += _differences(a[key], b[key], _join(path, key))
            else:
                out.append(_join(path, key))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a and all(
            isinstance(x, dict) for x in (*a, *b)):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, _join(path, i))]
    return [path or "(the whole spec)"]


def _current(name: str, specs_dir: str | Path) -> tuple[ModelSpec | None, str | None]:
    try:
        return find_spec(name, specs_dir), None
    except SpecError as err:
        return None, _one_line(err)


def _one_line(err: Exception) -> str:
    """An error's message on one line (a YAML error spans several), cut to 400 characters."""
    return shorten(" ".join(str(err).split()), 400)


def judging_spec(
    name: str, metadata: Mapping[str, Any], specs_dir: str | Path, out_of_time: bool = False
) -> tuple[ModelSpec, SpecComparison]:
    """The spec that judges a version (validation, features, drift, performance, calibration),
    and its comparison with the current spec file ``<specs_dir>/<name>.yaml``.

    The stored spec (:func:`stored_spec`) judges, except for the operational settings
    :data:`FROM_CURRENT` and, when ``out_of_time``, the ``source`` (where the data is read today;
    the period is still the stored ``out_of_time``'s), which come from the current file when it
    is valid. A missing or invalid current file is no obstacle: the stored spec judges alone, and
    a stored file source with an absolute path reads with the data roots of ``specs_dir`` (as the
    file there would). Only when this code cannot read the stored spec does the current file judge
    (``judged_with="current"``).

    Args:
        name: the model's (spec's) name; metadata: the version's ``metadata.json``; specs_dir:
            the specs folder (``FINML_SPECS_DIR``); out_of_time: the batch is the spec's
            held-back later period.

    Raises:
        StoredSpecError: the stored spec cannot be read and the current file is missing or
            invalid (both reasons named).
    """
    current, current_problem = _current(name, specs_dir)
    recorded = _field(metadata, "spec_sha256")
    current_hash = None if current is None else current.content_hash()
    try:
        stored = stored_spec(metadata)
    except SpecError as err:
        if current is None:
            raise StoredSpecError(f"{_origin(metadata)} cannot be judged: {err}; and the current spec file cannot be "
                                  f"read either: {current_problem}") from None
        return current, SpecComparison(judged_with="current", stored_sha256=recorded, current_sha256=current_hash,
                                       stored_problem=_one_line(err))
    problems = spec_problems(stored)
    comparison = SpecComparison(stored_sha256=recorded, current_sha256=current_hash, current_problem=current_problem,
                                stored_problem="; ".join(problems) or None)
    if current is None:
        source = stored.source
        if isinstance(source, FileSource) and Path(source.path).is_absolute():
            source = source.read_from(Path(specs_dir) / f"{name}.yaml")  # the data roots of the spec folder today
        return stored.model_copy(update={"source": source}), comparison
    if current_hash != recorded:
        comparison.differences = spec_differences(stored, current)
    taken = [f for f in FROM_CURRENT if f in comparison.differences]
    update: dict[str, Any] = {}
    if taken:
        update["drift"] = stored.drift.model_copy(update={f.split(".", 1)[1]: getattr(current.drift, f.split(".", 1)[1])
                                                          for f in taken})
    if out_of_time:
        update["source"] = current.source  # where the data is today (a moved file, a new database host)
        taken += [d for d in comparison.differences if d == "source" or d.startswith("source.")]
    comparison.from_current = taken
    return stored.model_copy(update=update) if update else stored, comparison


__all__ = ["FROM_CURRENT", "StoredSpecError", "judging_spec", "spec_differences", "stored_spec"]
