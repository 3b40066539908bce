"""The ``review-due`` flow: once a week (the ``review-due`` deployment of prefect.yaml) every model
whose periodic review is due or overdue raises ``finml.review.due`` (docs/inventory.md)."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger

from models.errors import UsageError
from models.settings import get_settings
from tasks.report import publish_table
from tasks.review import emit_review_due, find_due_reviews


@flow(name="review-due", log_prints=True)
def review_due_flow(as_of: str | None = None) -> dict[str, Any]:
    """Emit ``finml.review.due`` for every model of the spec folder and registry whose review is
    due on ``as_of`` (YYYY-MM-DD; None: today, UTC), and publish them as a table artifact.

    Returns:
        ``{as_of, due: [tasks.review.review_payload], emitted}``.

    Raises:
        UsageError: ``as_of`` is not a date. SpecError: no spec folder, or no spec in it.
    """
    logger = get_run_logger()
    try:
        today = None if as_of is None else date.fromisoformat(as_of)
    except ValueError:
        raise UsageError(f"as_of {as_of!r}: not a date (YYYY-MM-DD)") from None
    settings = get_settings()
    due = find_due_reviews(settings.specs_dir, settings.registry_dir, today)
    emitted = emit_review_due(due)
    if due:
        publish_table("review-due", [{k: p[k] for k in ("model", "owner", "tier", "champion", "last_review",
                                                      "next_review", "status", "days_overdue")} for p in due],
                      "Models whose periodic review is due or overdue")
    for p in due:
        logger.warning("%s", p["reason"])
    logger.info("%d model(s) due for review", emitted)
    return {"as_of": None if today is None else today.isoformat(), "due": due, "emitted": emitted}


__all__ = ["review_due_flow"]
