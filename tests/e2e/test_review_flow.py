"""The ``review-due`` flow through Prefect: one ``finml.review.due`` event per model whose periodic
review is due, with its payload, and the table artifact (docs/inventory.md)."""

from __future__ import annotations

import pytest

from tests.unit.test_inventory import build_estate

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_the_review_due_flow_emits_one_event_per_model_due(finml_env, captured_events):
    from prefect import get_client

    from flows.review import review_due_flow

    build_estate(finml_env["specs"], finml_env["registry"])
    result = review_due_flow(as_of="2027-01-01")
    assert (result["as_of"], result["emitted"]) == ("2027-01-01", 1)
    [event] = [e for e in captured_events if e["event"] == "finml.review.due"]
    assert event["resource"]["prefect.resource.id"] == "finml.model.credit_risk"
    assert (event["resource"]["finml.tier"], event["resource"]["finml.review"]) == ("1", "overdue")
    assert event["payload"] == result["due"][0]
    assert (event["payload"]["last_review"], event["payload"]["next_review"], event["payload"]["days_overdue"]) == (
        "2025-02-01", "2026-02-01", 334)

    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()  # the flow's table of models due
    tables = [a for a in artifact if a.key == "review-due"]
    assert tables and "credit_risk" in str(tables[0].data) and "loan_evaluation" not in str(tables[0].data)

    captured_events.clear()
    later = review_due_flow(as_of="2028-06-01")  # loan_evaluation's 24 months are up that day
    assert [(p["model"], p["status"]) for p in later["due"]] == [("credit_risk", "overdue"), ("loan_evaluation", "due")]
    assert [e["resource"]["prefect.resource.id"] for e in captured_events if e["event"] == "finml.review.due"] == [
        "finml.model.credit_risk", "finml.model.loan_evaluation"]
    with pytest.raises(Exception, match="not a date"):
        review_due_flow(as_of="June")
