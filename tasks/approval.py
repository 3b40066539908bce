"""The training run's wait for a four-eyes decision on a Prefect server (issue 18 §2): a
deployment run whose version is left ``pending`` (:func:`tasks.promote.leave_pending`) suspends
with :func:`prefect.flow_runs.suspend_flow_run` (no time limit of its own, unlike
``pause_flow_run``; its ``timeout`` is the request's expiry) and a typed input form
(:class:`ApprovalInput`) whose description shows the gate table and a link to the version's card.
The Prefect UI shows the form; the API resumes it (``resume_flow_run(id, run_input={...})``).

A resumed run starts its flow again from the top (Prefect re-runs a resumed flow): the flow asks
:func:`waiting_request` first and, when its own request is still open, comes straight here
without training again; ``suspend_flow_run`` with the same ``key`` then returns the input given.
Outside a deployment run (``finml train``, an embedded run) nothing suspends: the version stays
pending for ``finml approve`` / ``finml reject``. The rules themselves are :mod:`models.approvals`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from prefect.input import RunInput

from models.approvals import (
    ApprovalRefusedError,
    Request,
    decide_approval,
    open_requests,
    parse_time,
    requests,
    utc_now,
)
from models.registry import ModelRegistry

log = logging.getLogger(__name__)


class ApprovalInput(RunInput):
    """The form of a suspended training run: approve or reject, the approver's name (recorded as
    the decision's ``who``: self-hosted Prefect has no user accounts, so the name is declared, as
    ``FINML_USER`` is), and a comment (required)."""

    decision: Literal["approve", "reject"]
    approver: str
    comment: str


def in_deployment_run() -> bool:
    """True inside a flow run that a deployment created itself (the only kind ``suspend_flow_run``
    accepts); False outside Prefect, for a local run, and for a subflow (``train_all``'s children:
    ``prefect.runtime.deployment.id`` would give the parent's deployment, so the current run's own
    ``deployment_id`` is read)."""
    try:
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
        return bool(ctx is not None and ctx.flow_run is not None and ctx.flow_run.deployment_id)
    except Exception:  # noqa: BLE001 - no runtime context: not a deployment run
        return False


def waiting_request(registry_root: Path, model: str, run_id: str | None) -> Request | None:
    """The approval request this run made (its ``pending`` line's ``run_id``), in whatever state
    (decided meanwhile by ``finml approve`` too), or None: how a resumed run knows that it
    already trained."""
    if not run_id:
        return None
    registry = ModelRegistry(registry_root, model)
    if not registry.exists():
        return None
    return next((r for r in reversed(requests(registry.history()).values()) if r.run_id == run_id), None)


def outcome_of(request: Request, refusals: list[str] | None = None) -> dict[str, Any]:
    """The decision of a request as the flow's summary gives it (``approval``)."""
    return {"state": request.state, "by": request.decided_by, "comment": request.comment, "refusals": refusals or []}


def approval_description(model: str, version: int, metadata: dict[str, Any], request: Request,
                         card: Path) -> str:
    """The markdown shown above the form: what is asked, who may decide, the gate table (rule,
    metric, value, bound, verdict) and a link to the version's model card."""
    rows = ["| rule | metric | value | bound | verdict |", "|---|---|---|---|---|"]
    for v in (metadata.get("gate") or {}).get("verdicts", []):
        value = v.get("value")
        shown = f"{value:.4g}" if isinstance(value, int | float) else "-"
        rows.append(f"| {v.get('rule')} | {v.get('metric')} | {shown} | {v.get('bound')} | "
                    f"{'pass' if v.get('passed') else 'FAIL'} |")
    approvers = ", ".join(request.approvers) or "anyone"
    return "\n".join([
        f"## Approve {model} version {version}?",
        "",
        f"Requested by **{request.requested_by}** at {request.requested_at}; expires {request.expires_at}. "
        f"May decide: {approvers}, never the requester. Champion now: "
        f"{'none' if request.champion_before is None else f'v{request.champion_before}'}.",
        "",
        *rows,
        "",
        f"Model card: [{card.name}]({card.resolve().as_uri()})",
    ])


def wait_for_approval(registry_root: Path, model: str, request: Request) -> dict[str, Any]:
    """Suspend this deployment run until the form is answered, then decide (approve moves the
    champion). A refused decision (the requester, an unlisted name: recorded by
    :func:`models.approvals.decide_approval`) suspends again with a new key, as many times as it
    takes; an expired request ends the wait.

    Returns:
        ``{"state": approved|rejected|expired, "by": who, "comment": ..., "refusals": [...]}``.
    """
    from prefect.flow_runs import suspend_flow_run

    registry = ModelRegistry(registry_root, model)
    version = request.version
    metadata = registry.verify(version)
    card = registry.version_dir(version) / "model_card.md"
    refusals: list[str] = []
    while True:
        attempt = len(request.refusals)  # the same key on the re-run that resumes this wait
        remaining = _seconds_left(request)
        answer = suspend_flow_run(
            wait_for_input=ApprovalInput.with_initial_data(
                description=approval_description(model, version, metadata, request, card), decision="approve"),
            key=f"approval-v{version}-{attempt}", timeout=remaining)
        current = requests(registry.history()).get(version)
        if current is not None and current.state != "pending":  # decided meanwhile (finml approve, expiry)
            return outcome_of(current, refusals)
        try:
            decided = decide_approval(registry, version, approve=answer.decision == "approve",
                                      comment=answer.comment, who=answer.approver)
            return outcome_of(decided, refusals)
        except ApprovalRefusedError as err:
            log.warning("%s", err)
            refusals.append(str(err))
            now = next((r for r in open_requests(registry.history()) if r.version == version), None)
            if now is None:  # expired meanwhile
                return {"state": "expired", "by": None, "comment": None, "refusals": refusals}
            request = now


def _seconds_left(request: Request) -> int | None:
    when = parse_time(request.expires_at)
    return None if when is None else max(1, int((when - utc_now()).total_seconds()))


def resume_suspended_run(run_id: str | None, decision: str, approver: str, comment: str) -> bool:
    """After ``finml approve``/``reject`` decided a request whose training run is suspended on the
    server (``PREFECT_API_URL``), resume that run with the same answer, so that it ends with the
    decision already recorded instead of waiting until its expiry. Best effort: False when there is
    no server, no such run, or it is not suspended."""
    import os

    if not run_id or not os.environ.get("PREFECT_API_URL"):
        return False
    try:
        from uuid import UUID

        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(run_id))
            if run.state is None or not run.state.is_paused():
                return False
            client.resume_flow_run(run.id, run_input={"decision": decision, "approver": approver, "comment": comment})
            return True
    except Exception:  # noqa: BLE001 - the decision is recorded; the run expires at its timeout otherwise
        log.debug("could not resume the suspended run %s", run_id, exc_info=True)
        return False
