"""Who acts on the registry: the one rule that names the person (or the machinery) behind every
history line. See ``docs/governance.md`` (People).

The rule, first match wins:

1. a deployment run's starter, as Prefect records it (:func:`deployment_starter`, which the
   flows pass in; nothing here imports Prefect): the user who started the run when the server
   knows one (Prefect Cloud), ``automation`` for a run an automation created (a deployment
   trigger such as the drift event), ``schedule`` for a run the scheduler created;
2. ``FINML_USER`` (:attr:`models.settings.Settings.user`), when set and not blank;
3. the operating-system user (:func:`getpass.getuser`: ``LOGNAME``, ``USER``, ``LNAME``,
   ``USERNAME``, then the password database); ``unknown`` when none names one.

Self-hosted Prefect has no user accounts: a deployment run started by hand there (``prefect
deployment run``, the UI, ``finml train --deployment``) carries no starter, so step 2 or 3 names
the worker's user.
"""

from __future__ import annotations

import getpass

SCHEDULE = "schedule"
"""``who`` of a run that a deployment's schedule created."""
AUTOMATION = "automation"
"""``who`` of a run that a Prefect automation (a deployment trigger) created."""
UNKNOWN = "unknown"
"""``who`` when neither ``FINML_USER`` nor the operating system names a user."""


def os_user() -> str:
    """The operating-system user's name (:func:`getpass.getuser`), or :data:`UNKNOWN` when
    there is none (a container's uid without a password entry raises ``KeyError``/``OSError``)."""
    try:
        return getpass.getuser().strip() or UNKNOWN
    except (KeyError, OSError, ImportError):
        return UNKNOWN


def deployment_starter(created_by_type: str | None, created_by_name: str | None,
                       auto_scheduled: bool) -> str | None:
    """Who started a deployment run, from what Prefect stores on the flow run.

    Args:
        created_by_type: ``flow_run.created_by.type``: ``"USER"`` (Prefect Cloud), ``"AUTOMATION"``
            (the server sets it from the automation's request headers), or None (self-hosted
            Prefect records no creator for a run started by hand or by the scheduler).
        created_by_name: ``flow_run.created_by.display_value`` (the user's or automation's name).
        auto_scheduled: ``flow_run.auto_scheduled``: the scheduler created the run.

    Returns:
        The user's name, :data:`AUTOMATION`, :data:`SCHEDULE`, or None when Prefect does not know
        (the caller falls back to :func:`current_user`'s other steps).
    """
    kind = (created_by_type or "").strip().upper()
    name = (created_by_name or "").strip()
    if kind == "USER" and name:
        return name
    if kind == "AUTOMATION":
        return AUTOMATION
    if auto_scheduled:
        return SCHEDULE
    return None


def current_user(starter: str | None = None) -> str:
    """The ``who`` to record (the module's rule): ``starter`` (a deployment run's, from
    :func:`deployment_starter`) when given, else ``FINML_USER``, else the operating-system user.

    Returns:
        A non-empty name.
    """
    if starter and starter.strip():
        return starter.strip()
    from models.settings import get_settings

    configured = (get_settings().user or "").strip()
    return configured or os_user()
