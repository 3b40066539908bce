"""Readable flow run names and tags, so the Prefect UI shows which model and version a run is about.

A run starts with a name made from its parameters (``train-credit_risk-2026-11-29T1545``); once the
flow knows the outcome it renames itself: ``train-credit_risk-v3-2026-11-29T1545`` (promoted as
version 3), ``train-credit_risk-rejected-…`` or ``train-credit_risk-stopped-…``; ``monitor-credit_risk-v3-stable-…``.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{4}$")


def _stamp(current: str | None) -> str:
    """The time stamp at the end of the run's first name (kept, so a renamed run sorts as before)."""
    match = _STAMP.search(current or "")
    if match:
        return match.group(0)
    from models.registry import now_utc

    return now_utc()[:16].replace(":", "")


def training_run_name(model: str, version: int | None, current: str | None = None, label: str = "rejected") -> str:
    """``train-<model>-v<version>-<stamp>`` when a version was promoted, else ``train-<model>-<label>-<stamp>``
    (``rejected`` by the gate, ``stopped`` by bad data before it)."""
    label = f"v{version}" if version else label
    return f"train-{model}-{label}-{_stamp(current)}"


def monitoring_run_name(model: str, version: int, verdict: str, current: str | None = None) -> str:
    """``monitor-<model>-v<version>-<verdict>-<stamp>``."""
    return f"monitor-{model}-v{version}-{verdict.replace('_', '-')}-{_stamp(current)}"


def run_reason(reason: str) -> str:
    """The reason to record for the current run.

    A training deployment's default parameter is ``reason="schedule"``, true only for runs its
    cron schedule created; a run started by hand from the deployment (``prefect deployment run``,
    the UI's "Quick run") keeps that default. Such a run is recorded as ``"manual deployment
    run"``: the server marks scheduler-made runs ``auto_scheduled``. Any other reason is kept as
    given; so is ``"schedule"`` outside a deployment run or when the API cannot be asked.
    """
    if reason != "schedule":
        return reason
    try:
        from prefect.client.orchestration import get_client
        from prefect.runtime import deployment, flow_run

        if not flow_run.id or not deployment.id:
            return reason
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run.id)
        return reason if run.auto_scheduled else "manual deployment run"
    except Exception:  # noqa: BLE001 - the reason is bookkeeping; never fail a run over it
        log.debug("could not tell how the run was started", exc_info=True)
        return reason


def run_starter() -> str | None:
    """Who started the current deployment run, as Prefect records it
    (:func:`models.identity.deployment_starter` of the flow run's ``created_by`` and
    ``auto_scheduled``): a user's name (Prefect Cloud), ``automation``, ``schedule``; None outside
    a deployment run, when Prefect does not know (a run started by hand on a self-hosted server),
    or when the API cannot be asked (best effort: never fails a run)."""
    try:
        from prefect.client.orchestration import get_client
        from prefect.runtime import deployment, flow_run

        if not flow_run.id or not deployment.id:
            return None
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run.id)
        from models.identity import deployment_starter

        created = run.created_by
        return deployment_starter(getattr(created, "type", None), getattr(created, "display_value", None),
                                  bool(run.auto_scheduled))
    except Exception:  # noqa: BLE001 - who is bookkeeping; the registry's rule names a user anyway
        log.debug("could not tell who started the run", exc_info=True)
        return None


def rename_current_run(make_name) -> str | None:
    """Rename the current flow run to ``make_name(current_name)``; best effort (a failure is logged).

    Returns the new name, or None outside a flow run or when the API refused.
    """
    try:
        from prefect.client.orchestration import get_client
        from prefect.runtime import flow_run

        run_id = flow_run.id
        if not run_id:
            return None
        name = make_name(flow_run.name)
        with get_client(sync_client=True) as client:
            client.update_flow_run(run_id, name=name)
        return name
    except Exception:  # a cosmetic rename must never fail a finished run
        log.warning("could not rename the flow run", exc_info=True)
        return None


def model_tags(model: str, kind: str) -> list[str]:
    """The tags of a run about one model: ``finml``, the model's name, and ``training``/``monitoring``."""
    return ["finml", model, kind]
