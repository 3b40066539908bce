"""The model inventory: per model its owner, tier and intended use (the spec's ``governance``),
its champion and since when, who approved it, the last monitoring verdict and back-test, open
alarms, pending approvals, and when its next periodic review is due. Plain functions, no Prefect:
``finml inventory`` prints them and the ``review-due`` flow emits ``finml.review.due`` from them.
The definitions (last review, open alarm, pending approval) are in docs/inventory.md.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Literal

from models.approvals import parse_time
from models.errors import RegistryError, SpecError
from models.records.monitoring import ALARM_VERDICTS
from models.spec.governance import UNTIERED_REVIEW_MONTHS, GovernanceSpec

UNASSIGNED = "unassigned"
"""The owner shown for a model whose spec has no ``governance`` section (or no readable spec)."""

OPEN_ALARM_VERDICTS = (*ALARM_VERDICTS, "data_quality_alarm")
"""Monitoring verdicts that raise an event (``finml.drift.detected`` or ``finml.data-quality.alarm``)."""

LIGHT_ORDER = ("red", "amber", "green")
"""Back-test traffic lights, the worst first."""

ReviewState = Literal["overdue", "due", "ok", "no champion"]


# --------------------------------------------------------------------------- review dates


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, the day of the month clamped to the month's last
    (31 January + 1 month = 28 or 29 February). Raises ValueError for a negative ``months``."""
    if months < 0:
        raise ValueError(f"months must be >= 0, got {months}")
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class ReviewDue:
    """When a model's next periodic review is due, judged on ``today``.

    ``months``: the interval used (``governance.review_months``, or 12 without a section);
    ``due``: ``last_review`` + ``months`` (None without a last review: no champion);
    ``state``: ``overdue`` (today is after ``due``), ``due`` (today is ``due``), ``ok`` or
    ``no champion``; ``days_overdue``: days past ``due`` (0 unless overdue)."""

    last_review: date | None
    due: date | None
    months: int
    state: ReviewState
    days_overdue: int = 0

    @property
    def needs_review(self) -> bool:
        """True when the review is due today or overdue: the ``finml.review.due`` event."""
        return self.state in ("due", "overdue")


def review_due(section: GovernanceSpec | None, last_review: date | None, today: date) -> ReviewDue:
    """The next review of a model from its ``governance`` section and its last review.

    Args:
        section: the spec's ``governance`` (None: no section, reviewed every
            :data:`models.spec.governance.UNTIERED_REVIEW_MONTHS` months).
        last_review: the date of the champion's last review (:func:`last_review_date`); None
            when there is no champion (nothing in use, nothing to review).
        today: the date the review is judged on (UTC).

    Returns:
        :class:`ReviewDue`; due on ``last_review`` + the interval in calendar months
        (:func:`add_months`), overdue from the day after.
    """
    months = section.review_months if section is not None else UNTIERED_REVIEW_MONTHS
    if last_review is None:
        return ReviewDue(None, None, months, "no champion")
    due = add_months(last_review, months)
    if today > due:
        return ReviewDue(last_review, due, months, "overdue", (today - due).days)
    return ReviewDue(last_review, due, months, "due" if today == due else "ok")


# --------------------------------------------------------------------------- what the registry says


def _day(ts: Any) -> date | None:
    """The UTC date of an ISO-8601 time stamp (naive: UTC); None when it is not one."""
    when = parse_time(ts)
    return None if when is None else when.date()



@dataclass(frozen=True)
class ChampionFacts:
    """What ``history.jsonl`` says about the champion (docs/inventory.md, "Review dates").

    ``since``: time of the line that made it the champion (``promoted``, ``rolled_back``);
    ``promoted_at``: the last ``promoted`` line of its version (None for a version made champion
    by a rollback only);
    ``approved_at`` / ``approved_by``: the last ``approved`` line for it (naming its version, or the
    run id of the line that made it champion: an approval given while the training run waited,
    before the version existed) and its ``who`` (else an ``approved_by`` key of the line that made it
    champion; None when nothing says); ``promoted_by``: the ``who`` of the line that made it champion;
    ``reviewed_at``: the last ``reviewed`` line of its version; ``pending``: ``pending`` lines
    of any version not followed by another line of the same run (or, without a run id, of the
    same version)."""

    since: str | None = None
    promoted_at: str | None = None
    promoted_by: str | None = None
    approved_by: str | None = None
    approved_at: str | None = None
    reviewed_at: str | None = None
    pending: int = 0

    @property
    def last_review(self) -> date | None:
        """The latest of ``promoted_at``, ``approved_at`` and ``reviewed_at`` (as UTC dates); without
        any, ``since`` (the day it went into use). A rollback is not a review: a version rolled back
        to keeps the review dates of its own promotion, approval and reviews."""
        days = [d for d in (_day(self.promoted_at), _day(self.approved_at), _day(self.reviewed_at)) if d is not None]
        return max(days, default=_day(self.since))


def champion_facts(history: Iterable[Mapping[str, Any]], champion: int | None) -> ChampionFacts:
    """:class:`ChampionFacts` of ``champion`` from the history lines (oldest first, as stored)."""
    lines = list(history)
    since_i = None
    current = None
    for i, e in enumerate(lines):
        if "champion_after" in e:
            after = e["champion_after"]
        elif e.get("event") in ("promoted", "rolled_back") and e.get("version") is not None:
            after = int(e["version"])
        else:
            continue
        if after != current:
            current, since_i = after, i
    pending = _open_pending(lines)
    if champion is None or since_i is None or current != champion:
        return ChampionFacts(pending=pending)
    made = lines[since_i]
    run = made.get("run_id")
    approved = [e for e in lines if e.get("event") == "approved"  # before its commit line when the run waited for it
                and (e.get("version") == champion or (run is not None and e.get("run_id") == run))]
    reviewed = [e for e in lines if e.get("event") == "reviewed" and e.get("version") == champion]
    promoted = [e for e in lines if e.get("event") == "promoted" and e.get("version") == champion]
    who = (approved[-1].get("who") if approved else None) or made.get("approved_by")
    return ChampionFacts(since=made.get("ts"), promoted_at=promoted[-1].get("ts") if promoted else None,
                         promoted_by=made.get("who"),
                         approved_by=who, approved_at=approved[-1].get("ts") if approved else None,
                         reviewed_at=reviewed[-1].get("ts") if reviewed else None, pending=pending)


def _open_pending(lines: list[Mapping[str, Any]]) -> int:
    """``pending`` lines that no later line of the same run (or same version, without a run id) answers
    (an ``approval_refused`` line answers nothing)."""
    count = 0
    for i, e in enumerate(lines):
        if e.get("event") != "pending":
            continue
        run, version = e.get("run_id"), e.get("version")
        answered = any((o.get("run_id") == run) if run is not None else (o.get("version") == version)
                       for o in lines[i + 1:] if o.get("event") not in ("pending", "approval_refused"))
        count += not answered
    return count


def monitoring_facts(records: Iterable[Mapping[str, Any]], champion: int | None,
                     since: str | None) -> tuple[str | None, str | None, int]:
    """``(time, verdict, open alarms)`` of the champion's monitoring since it became champion.

    Open alarms: the monitoring runs of the champion since its last run without an alarm (an
    alarm verdict, :data:`OPEN_ALARM_VERDICTS`, stays open until a later run of the same
    champion comes back without one, or another version becomes champion)."""
    start = parse_time(since)
    mine = [r for r in records if champion is not None and r.get("version") == champion
            and (start is None or (parse_time(r.get("ts")) or start) >= start)]
    if not mine:
        return None, None, 0
    open_alarms = 0
    for r in reversed(mine):
        if r.get("verdict") not in OPEN_ALARM_VERDICTS:
            break
        open_alarms += 1
    return mine[-1].get("ts"), mine[-1].get("verdict"), open_alarms


def _lights(obj: Any) -> list[str]:
    """Every traffic light (values of keys ending in ``light``) inside a back-test record."""
    if isinstance(obj, Mapping):
        found = [v for k, v in obj.items() if str(k).endswith("light") and v in LIGHT_ORDER]
        return found + [x for v in obj.values() for x in _lights(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in _lights(v)]
    return []


def backtest_facts(records: list[Mapping[str, Any]], champion: int | None) -> tuple[str | None, str | None]:
    """``(time, worst light)`` of the last back-test (``backtests.jsonl``): the worst of the
    champion's p-value lights in it (red, amber, green; None when it had none)."""
    if not records:
        return None, None
    last = records[-1]
    mine = [v for v in last.get("versions") or [] if isinstance(v, Mapping) and v.get("version") == champion]
    lights = _lights(mine)
    worst = next((light for light in LIGHT_ORDER if light in lights), None)
    return last.get("ts"), worst


# --------------------------------------------------------------------------- the inventory


@dataclass
class InventoryRow:
    """One model of the inventory; the fields are the columns of ``finml inventory --csv``.

    Times are ISO-8601 UTC as stored, dates YYYY-MM-DD; None where there is nothing (no champion,
    never monitored). ``problems``: what is wrong with the model's spec or registry files, or
    with its governance (no section, owner unassigned)."""

    model: str
    owner: str = UNASSIGNED
    tier: int | None = None
    intended_use: str | None = None
    approval: str | None = None
    approvers: list[str] = field(default_factory=list)
    champion: int | None = None
    champion_since: str | None = None
    promoted_by: str | None = None
    approved_by: str | None = None
    last_monitoring: str | None = None
    monitoring_verdict: str | None = None
    open_alarms: int = 0
    last_backtest: str | None = None
    backtest_light: str | None = None
    pending_approvals: int = 0
    last_review: str | None = None
    review_every_months: int = UNTIERED_REVIEW_MONTHS
    next_review: str | None = None
    review_status: ReviewState = "no champion"
    days_overdue: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The row as a JSON-ready dictionary."""
        return asdict(self)


CSV_COLUMNS = [f for f in InventoryRow.__dataclass_fields__]
"""The columns of ``finml inventory --csv``, in order (lists joined with ``"; "``)."""


def inventory_row(name: str, spec: Any | None, spec_problem: str | None, registry_root: str | Path,
                  today: date) -> InventoryRow:
    """The inventory row of one model.

    Args:
        name: the model's name. spec: its current spec (a :class:`models.spec.ModelSpec`), or None
            (no spec file, or an invalid one: ``spec_problem`` says which).
        registry_root: the registry root (``FINML_REGISTRY_DIR``). today: the date reviews are judged on.

    A damaged registry file is a problem of the row, not an exception: one damaged model must not
    hide the others.
    """
    from models.ledger import backtest_history
    from models.registry import ModelRegistry

    row = InventoryRow(model=name)
    gov = getattr(spec, "governance", None)
    if spec_problem:
        row.problems.append(f"spec: {spec_problem}")
    if spec is not None:
        row.intended_use = spec.intended_use
        if gov is None:
            row.problems.append("no governance section: owner unassigned, untiered (reviewed every "
                                f"{UNTIERED_REVIEW_MONTHS} months)")
    if gov is not None:
        row.owner, row.tier, row.approval, row.approvers = gov.owner, gov.tier, gov.approval_rule, list(gov.approvers)
    facts = ChampionFacts()
    registry = ModelRegistry(registry_root, name)
    if registry.exists():
        try:
            champion = registry.champion()
            facts = champion_facts(registry.history(), champion)
            row.champion, row.champion_since = champion, facts.since
            row.promoted_by, row.approved_by = facts.promoted_by, facts.approved_by
            row.pending_approvals = facts.pending
            row.last_monitoring, row.monitoring_verdict, row.open_alarms = monitoring_facts(
                registry.monitoring_history(), champion, facts.since)
            row.last_backtest, row.backtest_light = backtest_facts(backtest_history(registry_root, name), champion)
        except (RegistryError, OSError, ValueError) as err:
            row.problems.append(f"registry: {err}")
    if row.champion is not None and facts.last_review is None:
        row.problems.append(f"registry: the history names no line that made v{row.champion} the champion: "
                            "its review date is unknown")
    review = review_due(gov, facts.last_review if row.champion is not None else None, today)
    row.review_every_months, row.review_status, row.days_overdue = review.months, review.state, review.days_overdue
    row.last_review = None if review.last_review is None else review.last_review.isoformat()
    row.next_review = None if review.due is None else review.due.isoformat()
    return row


def inventory(specs_dir: str | Path, registry_root: str | Path, today: date | None = None) -> list[InventoryRow]:
    """Every model of the spec folder and of the registry, sorted by name (:func:`inventory_row`).

    Args:
        specs_dir: the spec folder (``FINML_SPECS_DIR``); a model in the registry without a spec
            file is listed with that problem. registry_root: ``FINML_REGISTRY_DIR`` (may not exist yet).
        today: the date reviews are judged on (default: today, UTC).

    Raises:
        SpecError: the spec folder does not exist or holds no spec.
    """
    from models.registry import list_models
    from models.spec import scan_specs

    today = today or datetime.now(timezone.utc).date()
    valid, broken = scan_specs(specs_dir)
    specs = {s.name: s for s in valid}
    problems = {Path(file).stem: message for file, message in broken.items()}
    root = Path(registry_root)
    stored = list_models(root) if root.is_dir() else []
    names = sorted(set(specs) | set(problems) | set(stored))
    return [inventory_row(n, specs.get(n), problems.get(n) or (None if n in specs else "no spec file in "
                                                               f"{Path(specs_dir)}"), root, today) for n in names]


__all__ = ["CSV_COLUMNS", "ChampionFacts", "InventoryRow", "ReviewDue", "SpecError", "add_months", "backtest_facts",
           "champion_facts", "inventory", "inventory_row", "monitoring_facts", "review_due"]
