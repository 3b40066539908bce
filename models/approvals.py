"""Four-eyes promotion (issue 18 §2): a passing run of a model whose spec requires an approval
leaves its version ``pending`` (the version's commit line), and only an ``approved`` line by a
listed approver other than the requester makes it the champion. Every decision, refusal and
expiry is a typed history line (:mod:`models.records.registry`), in the hash chain that
``finml registry verify`` checks (:func:`approval_problems`). The rules: docs/governance.md
(Four-eyes promotion).

The functions take a :class:`models.registry.ModelRegistry` and write under its lock. Nothing
here imports Prefect: the training flow's suspension is in :mod:`tasks.approval`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from models.errors import RegistryError
from models.identity import current_user
from models.records.registry import ApprovalRefused, Approved, Expired, Rejected
from models.registry_tree import CHAMPION, champion_statement
from models.spec.governance import APPROVAL_BY_TIER, APPROVAL_EXPIRY_DAYS

Registry = Any
"""A :class:`models.registry.ModelRegistry` (not imported here: it would be a cycle)."""

DECISIONS = ("approved", "rejected", "expired")
"""History events that close a ``pending`` request (``approval_refused`` does not)."""

State = Literal["pending", "approved", "rejected", "expired"]


class ApprovalRefusedError(RegistryError):
    """A decision that the four-eyes rule refuses; its ``approval_refused`` line is written."""


class ChampionMovedError(RegistryError):
    """The champion moved after the pending version was judged against the previous one."""


class AwaitingApprovalError(RegistryError):
    """A champion move (rollback, roll forward) to a version that needs an approval it lacks."""


def utc_now() -> datetime:
    """Now, timezone-aware UTC (the default clock of every function here)."""
    return datetime.now(timezone.utc)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def parse_time(ts: str | None) -> datetime | None:
    """An ISO-8601 time stamp as an aware UTC datetime (naive: UTC); None when it is not one."""
    if not isinstance(ts, str):
        return None
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def governance_rule(spec: Mapping[str, Any] | None) -> tuple[bool, list[str], int]:
    """``(approval required, approvers, expiry days)`` of a spec as stored (a version's
    ``metadata["spec"]`` or ``ModelSpec.model_dump(mode="json")``): ``governance.approval``, else
    by tier (:data:`models.spec.governance.APPROVAL_BY_TIER`); a spec without a ``governance``
    section requires none."""
    gov = (spec or {}).get("governance") or {}
    if not gov:
        return False, [], APPROVAL_EXPIRY_DAYS
    rule = gov.get("approval") or APPROVAL_BY_TIER.get(gov.get("tier"), "none")
    return rule == "required", list(gov.get("approvers") or []), int(gov.get("expires_after") or APPROVAL_EXPIRY_DAYS)


def expiry_time(requested: datetime, days: int) -> str:
    """When a request made at ``requested`` expires: ``days`` later (ISO-8601 UTC, seconds)."""
    return _iso(requested + timedelta(days=days))


@dataclass
class Request:
    """One ``pending`` line and what became of it.

    ``state``: ``pending`` (open, even past ``expires_at`` until an ``expired`` line is written),
    ``approved``, ``rejected`` or ``expired``; ``decided_by`` / ``comment`` of the closing line;
    ``refusals``: the ``approval_refused`` lines about it."""

    version: int
    run_id: str | None
    requested_by: str | None
    requested_at: str | None
    expires_at: str | None
    approvers: list[str]
    champion_before: int | None
    state: State = "pending"
    decided_by: str | None = None
    decided_at: str | None = None
    comment: str | None = None
    refusals: list[dict[str, Any]] = field(default_factory=list)

    def overdue(self, now: datetime) -> bool:
        """Open and past ``expires_at`` on ``now``."""
        when = parse_time(self.expires_at)
        return self.state == "pending" and when is not None and now >= when


def _take(out: dict[int, Request], line: Mapping[str, Any]) -> None:
    """Fold one history line into the requests ``out`` (see :func:`requests`)."""
    kind, version = line.get("event"), line.get("version")
    if version is None:
        return
    version = int(version)
    if kind == "pending":
        out[version] = Request(version, line.get("run_id"), line.get("who"), line.get("ts"), line.get("expires_at"),
                               list(line.get("approvers") or []), line.get("champion_before"))
        return
    req = out.get(version)
    if req is None or req.state != "pending":
        return
    if kind in DECISIONS:
        req.state, req.decided_by, req.decided_at = kind, line.get("who"), line.get("ts")
        req.comment = line.get("comment")
    elif kind == "approval_refused":
        req.refusals.append(dict(line))


def requests(history: Iterable[Mapping[str, Any]]) -> dict[int, Request]:
    """Every approval request of the history by version (the latest ``pending`` line of a version),
    with its state from the later lines about that version."""
    out: dict[int, Request] = {}
    for line in history:
        _take(out, line)
    return out


def open_requests(history: Iterable[Mapping[str, Any]]) -> list[Request]:
    """The requests still ``pending``, oldest version first."""
    return [r for _, r in sorted(requests(history).items()) if r.state == "pending"]


def _expire_unlocked(registry: Registry, now: datetime) -> list[int]:
    done = []
    for req in open_requests(registry.history()):
        if req.overdue(now):
            registry._append_history_unlocked(Expired(
                version=req.version, run_id=req.run_id, expires_at=req.expires_at, requested_by=req.requested_by,
                reason=f"no decision by {req.expires_at}: rejected by expiry"))
            done.append(req.version)
    return done


def expire_overdue(registry: Registry, now: datetime | None = None) -> list[int]:
    """Write an ``expired`` line, under the lock, for every open request past its ``expires_at``
    on ``now`` (default: the clock). Called by every decision, ``finml approve``/``reject``/``pending``
    and ``finml inventory``.

    Returns:
        The versions that expired now (empty: none; also for a model not in the registry)."""
    now = now or utc_now()
    if not registry.exists() or not any(r.overdue(now) for r in open_requests(registry.history())):
        return []
    with registry._lock():
        return _expire_unlocked(registry, now)


def refusal_of(req: Request, who: str) -> str | None:
    """Why ``who`` may not decide ``req`` (None: they may): the requester never decides their own
    request (four eyes), and a non-empty ``approvers`` list names everyone who may."""
    if req.requested_by is not None and who == req.requested_by:
        return (f"{who} started the run that asked for this approval (the pending line's who): four eyes need "
                "someone else")
    if req.approvers and who not in req.approvers:
        return f"{who} is not on the spec's approvers list ({', '.join(req.approvers)})"
    return None


def decide_approval(registry: Registry, version: int, *, approve: bool, comment: str,
                    who: str | None = None, now: datetime | None = None) -> Request:
    """Approve (the version becomes the champion) or reject a pending version.

    Under the lock: overdue requests expire first (:func:`expire_overdue`); then a decision by the
    requester or by someone not on the request's ``approvers`` writes an ``approval_refused`` line
    and raises. An approval writes one ``approved`` line (also the champion's move), then
    ``aliases.json``; a rejection one ``rejected`` line (``comment``, ``requested_by``).

    Args:
        version: the pending version. comment: the approver's words (required).
        who: the decider (default :func:`models.identity.current_user`). now: the clock (tests).

    Returns:
        The request as decided.

    Raises:
        RegistryError: an empty comment, no model, no request for ``version``, or one decided
            already (nothing written). ApprovalRefusedError: refused (its line written), or
            expired (its ``expired`` line written). ChampionMovedError: another run moved the
            champion since the version was judged (nothing written: reject it and train again).
            IntegrityError: the version fails its hash check.
    """
    comment = (comment or "").strip()
    attempted = "approve" if approve else "reject"
    if not comment:
        raise RegistryError(f"to {attempted} a version needs a --comment: it is recorded in the history")
    if not registry.exists():
        raise RegistryError(f"no model named {registry.model!r} in the registry at {registry.root.resolve()}")
    version, who, now = int(version), current_user(who), now or utc_now()
    with registry._lock():
        expired = _expire_unlocked(registry, now)
        req = requests(registry.history()).get(version)
        if req is None:
            waiting = [r.version for r in open_requests(registry.history())]
            raise RegistryError(f"{registry.model}: version {version} awaits no approval (pending: "
                                f"{waiting or 'none'})")
        if version in expired:
            raise ApprovalRefusedError(f"{registry.model}: the request for version {version} expired at "
                                       f"{req.expires_at} (rejected by expiry; train again)")
        if req.state != "pending":
            raise RegistryError(f"{registry.model}: version {version} was {req.state} already by {req.decided_by} "
                                f"at {req.decided_at}")
        refusal = refusal_of(req, who)
        if refusal:
            registry._append_history_unlocked(ApprovalRefused(
                version=version, attempted=attempted, comment=comment, refusal=refusal, who=who,
                requested_by=req.requested_by, reason=f"{attempted} refused"))
            raise ApprovalRefusedError(f"{registry.model} version {version}: refused: {refusal} (recorded)")
        if not approve:
            registry._append_history_unlocked(Rejected(version=version, run_id=req.run_id, comment=comment, who=who,
                                                       requested_by=req.requested_by, reason="rejected by approver"))
            req.state, req.decided_by, req.comment = "rejected", who, comment
            return req
        registry.verify(version)
        aliases = registry._reconcile_unlocked()
        if aliases.get(CHAMPION) != req.champion_before:
            raise ChampionMovedError(
                f"{registry.model}: version {version} was judged against "
                f"{'no champion' if req.champion_before is None else f'version {req.champion_before}'}, but the "
                f"champion is now {aliases.get(CHAMPION)}; nothing was approved (reject it and train again)")
        registry._append_history_unlocked(Approved(
            version=version, run_id=req.run_id, comment=comment, who=who, requested_by=req.requested_by,
            champion_before=req.champion_before, champion_after=version, reason="approved"))
        aliases[CHAMPION] = version
        registry._write_aliases_committed(aliases, f"the approval of version {version}", version)
        req.state, req.decided_by, req.comment = "approved", who, comment
        return req


def check_may_become_champion(registry: Registry, version: int, metadata: Mapping[str, Any],
                              history: list[Mapping[str, Any]] | None = None) -> None:
    """Refuse a champion move (rollback, a challenger rolled forward) that would skip an approval:
    a version whose request is pending, rejected or expired, or one whose stored spec requires an
    approval and that was never approved nor the champion.

    Raises:
        AwaitingApprovalError: naming the version's state and ``finml approve``.
    """
    history = registry.history() if history is None else history
    req = requests(history).get(int(version))
    if req is not None and req.state != "approved":
        hint = (f"finml approve {registry.model} --version {version} --comment TEXT (by a listed approver other "
                f"than {req.requested_by})" if req.state == "pending" else "train again")
        raise AwaitingApprovalError(f"{registry.model}: version {version} is {req.state} (its promotion needs an "
                                    f"approval): it cannot become the champion without one; {hint}")
    required, _, _ = governance_rule(metadata.get("spec"))
    if required and req is None and not any(champion_statement(line) == (True, int(version)) for line in history):
        raise AwaitingApprovalError(
            f"{registry.model}: version {version} was never approved and its spec requires an approval "
            "(governance.approval): it cannot become the champion by a rollback; train a run that leaves it pending")


def approval_problems(records: list[Mapping[str, Any]]) -> list[str]:
    """History lines that break the four-eyes rule, one sentence each (for ``finml registry
    verify``; line numbers count records from 1): an ``approved`` line without an open request for
    its version before it, by the requester, by a name not on the request's ``approvers``, or not
    naming its version as ``champion_after``; and any other line that makes a version the champion
    while its request is pending, rejected or expired. Catches an edited approval line even where
    the hash chain cannot (the last line, unsigned)."""
    problems: list[str] = []
    seen: dict[int, Request] = {}
    champion: int | None = None
    for n, line in enumerate(records, 1):
        kind, version = line.get("event"), line.get("version")
        where = f"history.jsonl record {n} ({kind})"
        if kind == "approved" and version is not None:
            req = seen.get(int(version))
            if req is None or req.state != "pending":
                problems.append(f"{where}: version {version} had no open approval request")
            elif refusal_of(req, line.get("who") or ""):
                problems.append(f"{where}: {refusal_of(req, line.get('who') or '')}")
            elif line.get("champion_after") != int(version):
                problems.append(f"{where}: champion_after is not version {version}")
        says, after = champion_statement(line)
        if says and after is not None and after != champion and kind != "approved":
            req = seen.get(int(after))
            if req is not None and req.state != "approved":
                problems.append(f"{where}: makes version {after} the champion, but its approval request is {req.state}")
        if says:
            champion = after
        _take(seen, line)
    return problems


__all__ = ["ApprovalRefusedError", "AwaitingApprovalError", "ChampionMovedError", "Request", "approval_problems", "check_may_become_champion",
           "decide_approval", "expire_overdue", "expiry_time", "governance_rule", "open_requests", "refusal_of",
           "requests"]
