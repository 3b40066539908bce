"""The spec a registry version keeps (``metadata.json`` → ``spec``), read back into a :class:`ModelSpec`.

A version's dump was written by the code of its day. Rules added since then for the specs people
write must not make it unreadable: a version written before ``intended_use`` and ``limitations``
were required holds ``""`` and ``[]`` (or neither key), and still reads back. Everything else is
validated as for a spec file.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from models.errors import SpecError
from models.spec.base import STORED
from models.spec.loading import _format_validation_error
from models.spec.model import ModelSpec

LENIENT_DEFAULTS: dict[str, Any] = {"intended_use": "", "limitations": []}
"""Fields a stored dump may lack (written before they existed or were required), with the values
the code of that day gave them."""


def stored_spec(data: Any, origin: str = "stored spec") -> ModelSpec:
    """The :class:`ModelSpec` of a version's stored spec dump.

    Args:
        data: the ``spec`` mapping of a version's ``metadata.json`` (``ModelSpec.model_dump(mode="json")``
            as written by ``tasks.promote``).
        origin: names the version in errors (such as ``"credit_risk v3 (metadata.json)"``).

    Returns:
        The spec; ``intended_use`` / ``limitations`` blank or absent are accepted as ``""`` / ``[]``
        (:data:`LENIENT_DEFAULTS`), the only rules relaxed. A dump with both fields set hashes
        (:meth:`ModelSpec.content_hash`) as it did when written, provided the schema has not gained
        fields since.

    Raises:
        SpecError: naming ``origin`` and every offending field path, when the dump is not a mapping
            or breaks another rule of today's schema.
    """
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: a stored spec must be a mapping, got {type(data).__name__}")
    filled = {**LENIENT_DEFAULTS, **data}
    try:
        return ModelSpec.model_validate(filled, context={STORED: True})
    except ValidationError as err:
        raise SpecError(f"{origin}: invalid stored spec: {_format_validation_error(err)}") from None
