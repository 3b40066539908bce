"""``finml approve``, ``finml reject`` and ``finml pending``: four-eyes decisions on versions that
a training run left ``pending`` (docs/governance.md, Four-eyes promotion; the rules are
:mod:`models.approvals`). The decider is :func:`models.identity.current_user` (``FINML_USER``, else
the login name); every decision, refusal and expiry is a history line."""

from __future__ import annotations

from typing import Optional

import typer

from flows.cli.common import _existing_model, _fail, _registry_errors, console


def _decide(model: str, version: int, comment: str, approve: bool) -> None:
    from models.approvals import decide_approval

    if not comment.strip():
        _fail("--comment is blank: say why (it is recorded in the history)", code=2)
    with _registry_errors():
        registry = _existing_model(model)
        req = decide_approval(registry, version, approve=approve, comment=comment)
    from tasks.approval import resume_suspended_run

    if resume_suspended_run(req.run_id, "approve" if approve else "reject", req.decided_by, comment):
        console.print(f"{model}: its suspended training run {req.run_id} resumes with this decision", highlight=False)
    if approve:
        console.print(f"{model}: v{version} approved by {req.decided_by}; it is the champion "
                      f"(was {'none' if req.champion_before is None else f'v{req.champion_before}'})", highlight=False)
    else:
        console.print(f"{model}: v{version} rejected by {req.decided_by}; the champion is unchanged", highlight=False)


def approve_cmd(
    model: str = typer.Argument(..., help="Model name."),
    version: int = typer.Option(..., "--version", help="The pending version to approve."),
    comment: str = typer.Option(..., "--comment", help="Why (recorded in the history; required)."),
) -> None:
    """Approve a pending version: it becomes the champion. Refused (and recorded) when you started
    the run that asked, or are not on the spec's approvers list; exit 1 then."""
    _decide(model, version, comment, approve=True)


def reject_cmd(
    model: str = typer.Argument(..., help="Model name."),
    version: int = typer.Option(..., "--version", help="The pending version to reject."),
    comment: str = typer.Option(..., "--comment", help="Why (recorded in the history; required)."),
) -> None:
    """Reject a pending version: it never becomes the champion. The same four-eyes rule as approve."""
    _decide(model, version, comment, approve=False)


def pending_cmd(model: Optional[str] = typer.Argument(None, help="Model name (default: every model).")) -> None:
    """The versions waiting for an approval (requests past their expiry are closed first: an
    `expired` line each)."""
    from models.approvals import expire_overdue, open_requests
    from models.registry import ModelRegistry, list_models
    from models.settings import get_settings

    root = get_settings().registry_dir
    names = [model] if model else list_models(root)
    shown = 0
    with _registry_errors():
        for name in names:
            registry = _existing_model(name) if model else ModelRegistry(root, name)
            for version in expire_overdue(registry):
                console.print(f"{name}: v{version} expired undecided (rejected by expiry)", highlight=False)
            for r in open_requests(registry.history()):
                shown += 1
                console.print(f"{name}: v{r.version} pending since {r.requested_at}, requested by {r.requested_by}; "
                              f"approvers {', '.join(r.approvers) or 'anyone but the requester'}; expires "
                              f"{r.expires_at}", highlight=False, markup=False)
    if not shown:
        console.print("no version is waiting for an approval", highlight=False)


def expire_all_quietly(root) -> None:
    """Close every overdue request of the registry at ``root`` (an ``expired`` line each), for
    readers such as ``finml inventory``; a registry that cannot be written is left as it is."""
    from models.approvals import expire_overdue
    from models.errors import FinmlError
    from models.registry import ModelRegistry, list_models

    try:
        for name in list_models(root):
            expire_overdue(ModelRegistry(root, name))
    except (FinmlError, OSError):
        pass


__all__ = ["approve_cmd", "expire_all_quietly", "pending_cmd", "reject_cmd"]
