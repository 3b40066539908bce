"""The steps of the ``review-due`` flow: find the models whose periodic review is due
(:func:`tasks.inventory.inventory`, :func:`tasks.inventory.review_due`) and emit one
``finml.review.due`` event for each (docs/inventory.md)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from tasks.inventory import InventoryRow, inventory
from tasks.report import emit
from tasks.step import step

REVIEW_EVENT = "finml.review.due"
"""The event a model whose review is due (or overdue) raises; resource ``finml.model.<name>``."""


def review_payload(row: InventoryRow) -> dict[str, Any]:
    """The event payload of a model due for review: ``model, owner, tier, champion, last_review,
    next_review (the due date), review_every_months, status (due / overdue), days_overdue,
    open_alarms, reason`` (a sentence)."""
    late = f"overdue by {row.days_overdue} day(s)" if row.review_status == "overdue" else "due today"
    reason = (f"periodic review of {row.model} v{row.champion} {late}: last review {row.last_review}, every "
              f"{row.review_every_months} months (tier {row.tier or 'none'}, owner {row.owner})")
    return {"model": row.model, "owner": row.owner, "tier": row.tier, "champion": row.champion,
            "last_review": row.last_review, "next_review": row.next_review,
            "review_every_months": row.review_every_months, "status": row.review_status,
            "days_overdue": row.days_overdue, "open_alarms": row.open_alarms, "reason": reason}


@step("find-due-reviews")
def find_due_reviews(specs_dir: str | Path, registry_root: str | Path, today: date | None) -> list[dict[str, Any]]:
    """The :func:`review_payload` of every model whose review is due or overdue on ``today``
    (default: today, UTC), sorted by name. Raises SpecError: no spec folder, or no spec in it."""
    return [review_payload(r) for r in inventory(specs_dir, registry_root, today) if r.review_status in ("due", "overdue")]


@step("emit-review-due")
def emit_review_due(payloads: list[dict[str, Any]]) -> int:
    """Emit ``finml.review.due`` for each payload (resource ``finml.model.<model>``, labels
    ``finml.tier`` and ``finml.review`` = due / overdue); returns how many were emitted. An event
    that cannot be sent is logged, not raised (:func:`tasks.report.emit`)."""
    for p in payloads:
        emit(REVIEW_EVENT, p["model"], p, labels={"finml.tier": str(p["tier"] or "none"), "finml.review": p["status"]})
    return len(payloads)


__all__ = ["REVIEW_EVENT", "emit_review_due", "find_due_reviews", "review_payload"]
