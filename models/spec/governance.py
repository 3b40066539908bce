"""The ``governance`` section of a spec: who owns the model, how material it is (its tier), how
often it is reviewed and whether a promotion waits for an approval. Read by ``finml inventory``
and the ``review-due`` deployment (:func:`tasks.inventory.review_due`); reading: docs/inventory.md.

The section is about who answers for the model, not about what a version computes: it is kept
in the spec stored with a version (as it was at training) but is not part of the spec's canonical
form (:data:`models.spec.fields.NOT_HASHED`: hash, and the differences monitoring reports), so an
owner or a tier can change without the model looking changed or needing retraining. The inventory
reads the current spec file: who owns a model today."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from models.spec.base import Strict

REVIEW_MONTHS_BY_TIER = {1: 12, 2: 24, 3: 36}
"""Months between periodic reviews by tier when ``review_every`` is not given. Supervisors set the
frequency by materiality without fixing numbers (SR 26-2 / OCC Bulletin 2026-13, 2026, which
replaced SR 11-7's annual review); 12 months keeps the annual review for material models, 24 and
36 are this project's defaults for the lower tiers (a bank's model-risk policy sets its own)."""

UNTIERED_REVIEW_MONTHS = 12
"""Months between reviews of a model whose spec has no ``governance`` section: a model nobody has
tiered is reviewed as often as a material one."""

APPROVAL_BY_TIER = {1: "required", 2: "required", 3: "none"}
"""Whether a promotion waits for an approval when ``approval`` is not given: four eyes for tiers 1
and 2, the owner's own promotion for tier 3."""


class GovernanceSpec(Strict):
    """The model's owner, tier, review interval and approval rule (docs/inventory.md).

    ``intended_use`` stays a top-level field of the spec, required (not blank) for every tier:
    the inventory shows it beside the owner and tier.
    """

    owner: str
    """The person or team accountable for the model (its owner in the model inventory): required, not blank."""
    tier: Literal[1, 2, 3]
    """Materiality: ``1`` material (decisions or capital depend on it), ``2``, ``3`` least material.
    Sets the default review interval (12 / 24 / 36 months) and approval rule (required for 1 and 2)."""
    review_every: int | None = Field(default=None, ge=1, le=120, strict=True)
    """Months between periodic reviews; None (the default): by tier, 12 / 24 / 36 months. The next
    review is due this many months after the last one (docs/inventory.md, "Review dates")."""
    approval: Literal["required", "none"] | None = None
    """Whether a promotion waits for an approval: ``required`` or ``none``; None (the default): by
    tier, required for tiers 1 and 2, none for tier 3."""
    approvers: list[str] = Field(default_factory=list)
    """Who may approve a promotion of this model (the names recorded as ``who`` in the history);
    empty (the default): not restricted by the spec."""

    @field_validator("owner")
    @classmethod
    def _owner(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("is blank; name the person or team accountable for the model")
        return v.strip()

    @field_validator("tier", mode="before")
    @classmethod
    def _tier(cls, v: object) -> object:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"must be the integer 1, 2 or 3, got {v!r}")
        return v

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, v: list[str]) -> list[str]:
        blank = [i for i, name in enumerate(v) if not name.strip()]
        if blank:
            raise ValueError(f"item(s) {blank} are blank; each item names one approver")
        names = [name.strip() for name in v]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{repeated} listed more than once")
        return names

    @property
    def review_months(self) -> int:
        """``review_every``, else :data:`REVIEW_MONTHS_BY_TIER` of the tier."""
        return self.review_every if self.review_every is not None else REVIEW_MONTHS_BY_TIER[self.tier]

    @property
    def approval_rule(self) -> str:
        """``approval``, else :data:`APPROVAL_BY_TIER` of the tier: ``"required"`` or ``"none"``."""
        return self.approval if self.approval is not None else APPROVAL_BY_TIER[self.tier]


__all__ = ["APPROVAL_BY_TIER", "GovernanceSpec", "REVIEW_MONTHS_BY_TIER", "UNTIERED_REVIEW_MONTHS"]
