"""Start deployments on a Prefect server and wait for them: ``finml train/monitor --deployment``.

The deployments are the ones ``prefect.yaml`` declares (``train-model/train-<model>`` and
``monitor-model/monitor-<model>``). A run started here is the same as
``prefect deployment run 'train-model/train-credit_risk'``: a worker of the deployment's work pool
picks it up; this module waits, then reads the run's state and artifacts through the API.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from models.errors import OrchestrationError

TRAINING_FLOW = "train-model"
MONITORING_FLOW = "monitor-model"


class DeploymentRunError(OrchestrationError):
    """No Prefect API, an unreachable server, or no such deployment (the message says which)."""


def deployment_name(kind: str, model: str) -> str:
    """``train-model/train-<model>`` (kind ``train``) or ``monitor-model/monitor-<model>`` (``monitor``)."""
    flow = {"train": TRAINING_FLOW, "monitor": MONITORING_FLOW}[kind]
    return f"{flow}/{kind}-{model}"


@dataclass
class RunOutcome:
    """A deployment's flow run as the API reports it after the wait."""

    deployment: str
    flow_run_id: str
    name: str
    state: str
    state_name: str
    message: str | None
    ui_url: str | None
    tags: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    summary: str | None = None

    @property
    def completed(self) -> bool:
        return self.state == "COMPLETED"

    @property
    def suspended(self) -> bool:
        """Suspended for a person's input: a training run waiting for an approval (tasks.approval)."""
        return self.state == "PAUSED" and self.state_name == "Suspended"


def api_url() -> str:
    """The configured ``PREFECT_API_URL``; raises ``DeploymentRunError`` when there is none."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise DeploymentRunError(
            "PREFECT_API_URL is not set: deployments live on a Prefect server. Start one with `make server` "
            "(or `finml server start`) and `export PREFECT_API_URL=http://127.0.0.1:4200/api`, or run "
            "without --deployment to run locally"
        )
    return url


def _ui_url(run_id: UUID) -> str | None:
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{run_id}" if base else None


def start_runs(requests: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, UUID]]:
    """Create a flow run for each ``(deployment, parameters)``; nothing is created if any deployment is missing."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    url = api_url()
    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()
        if problem is not None:
            raise DeploymentRunError(f"cannot reach the Prefect API at {url}: {problem}")
        for name, _ in requests:
            try:
                client.read_deployment_by_name(name)
            except ObjectNotFound:
                raise DeploymentRunError(
                    f"no deployment {name!r} on {url}: deploy prefect.yaml first (`make server`, or "
                    f"`prefect deploy --all` from the project folder)"
                ) from None
    started = []
    for name, params in requests:
        run = run_deployment(name, parameters=params, timeout=0, as_subflow=False)
        started.append((name, run.id))
    return started


def wait_for_runs(started: list[tuple[str, UUID]], timeout: float, poll: float = 2.0) -> list[RunOutcome]:
    """Wait until every run is in a final state or suspended for an approval (or ``timeout``
    seconds pass) and describe each."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        pending = {run_id for _, run_id in started}
        while pending and time.monotonic() < deadline:
            for run_id in list(pending):
                state = client.read_flow_run(run_id).state
                if state is not None and (state.is_final() or (state.is_paused() and state.name == "Suspended")):
                    pending.discard(run_id)
            if pending:
                time.sleep(poll)
        return [describe_run(client, name, run_id) for name, run_id in started]


def describe_run(client, deployment: str, run_id: UUID) -> RunOutcome:
    """The run's name, state, tags, parameters and artifacts, and a one-line summary from its artifacts."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    run = client.read_flow_run(run_id)
    artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    rows = [{"key": a.key, "type": a.type, "description": a.description,
             "data": a.data if isinstance(a.data, str) else None} for a in artifacts]
    summary = None
    for a in rows:
        if a["type"] == "markdown" and a["key"] and a["key"].endswith(("-training-summary", "-monitoring-verdict")):
            first = next((line for line in (a["data"] or "").splitlines() if line.strip()), "")
            summary = first.lstrip("# ").replace("**", "")
            break
    return RunOutcome(
        deployment=deployment, flow_run_id=str(run.id), name=run.name,
        state=run.state.type.value if run.state else "UNKNOWN", state_name=run.state.name if run.state else "?",
        message=run.state.message if run.state else None, ui_url=_ui_url(run.id), tags=sorted(run.tags),
        parameters=dict(run.parameters), artifacts=rows, summary=summary,
    )


def run_and_wait(requests: list[tuple[str, dict[str, Any]]], timeout: float) -> list[RunOutcome]:
    """Start each deployment run, wait for all of them, and describe them."""
    return wait_for_runs(start_runs(requests), timeout)
