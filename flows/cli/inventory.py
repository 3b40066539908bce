"""``finml inventory``: the model inventory (owner, tier, intended use, champion, approval,
monitoring, back-test, alarms, pending approvals, review dates) as a table, JSON or CSV
(docs/inventory.md)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Optional

import typer
from rich.markup import escape

from flows.cli.common import cli_table, console, _fail

_USE_SHOWN = 60
"""Characters of the intended use the table shows (JSON and CSV have it whole)."""


def _day(ts: str | None) -> str:
    return ts[:10] if ts else "-"


def _as_of(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"--as-of {text!r}: not a date (YYYY-MM-DD)", code=2)


def _approver(row) -> str:
    """Who approved the champion; without an approval, who put it in place, in brackets."""
    if row.approved_by:
        return row.approved_by
    return f"- (by {row.promoted_by})" if row.promoted_by else "-"


def _review_cell(row) -> str:
    if row.review_status == "overdue":
        return f"[bold red]OVERDUE[/] {row.days_overdue} d"
    return {"due": "[yellow]due today[/]", "ok": "ok", "no champion": "-"}[row.review_status]


def inventory_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print the inventory as JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the inventory as CSV (one row per model)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Judge review dates on this date (YYYY-MM-DD; "
                                        "default: today, UTC)."),
) -> None:
    """Every model of the spec folder and the registry: owner, tier, intended use, champion and since
    when, who approved it, last monitoring verdict and back-test, open alarms, pending approvals, last
    and next review; overdue reviews flagged. Exit 1 when a model's spec or registry files are damaged."""
    from models.errors import SpecError
    from models.settings import get_settings
    from tasks.inventory import CSV_COLUMNS, inventory

    if as_json and as_csv:
        _fail("give --json or --csv, not both", code=2)
    today = _as_of(as_of)
    settings = get_settings()
    from flows.cli.approval import expire_all_quietly

    expire_all_quietly(settings.registry_dir)  # overdue approval requests expire first (models.approvals)
    try:
        rows = inventory(settings.specs_dir, settings.registry_dir, today)
    except SpecError as err:
        _fail(str(err))
    damaged = [r.model for r in rows if any(p.startswith(("spec:", "registry:")) for p in r.problems)]
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
    elif as_csv:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "; ".join(v) if isinstance(v, list) else ("" if v is None else v)
                             for k, v in r.as_dict().items()})
        typer.echo(out.getvalue(), nl=False)
    else:
        _print_table(rows, as_of)
    if damaged:
        raise typer.Exit(1)


def _print_table(rows, as_of: str | None) -> None:
    table = cli_table(f"Model inventory (reviews judged on {as_of or 'today, UTC'})", ("model", "owner", "tier", "intended use", "champion", "since", "approved by", "monitoring",
                "alarms", "back-test", "pending", "last review", "next review", "review"))
    for r in rows:
        use = r.intended_use or "-"
        use = use if len(use) <= _USE_SHOWN else use[:_USE_SHOWN - 1] + "…"
        monitoring = f"{r.monitoring_verdict} {_day(r.last_monitoring)}" if r.monitoring_verdict else "-"
        backtest = f"{r.backtest_light or 'no light'} {_day(r.last_backtest)}" if r.last_backtest else "-"
        tier = f"{r.tier or '-'} ({r.review_every_months} mo)"  # the review interval beside the tier
        table.add_row(escape(r.model), escape(r.owner), tier, escape(use),
                      f"v{r.champion}" if r.champion else "-", _day(r.champion_since), escape(_approver(r)),
                      monitoring, str(r.open_alarms), backtest, str(r.pending_approvals), r.last_review or "-",
                      r.next_review or "-", _review_cell(r))
    console.print(table)
    for r in rows:
        for problem in r.problems:
            console.print(f"{r.model}: {problem}", highlight=False, markup=False, soft_wrap=True)
    overdue = [f"{r.model} ({r.days_overdue} days, due {r.next_review})" for r in rows if r.review_status == "overdue"]
    if overdue:
        console.print(f"[bold red]review overdue:[/] {escape(', '.join(overdue))}", highlight=False, soft_wrap=True)


def review_cmd(
    model: str = typer.Argument(..., help="Model name."),
    reason: str = typer.Option(..., "--reason", help="What the review found (recorded in the history; required)."),
    who: Optional[str] = typer.Option(None, "--who", help="The reviewer (default: FINML_USER, else the login name)."),
) -> None:
    """Record a periodic review of the champion: a `reviewed` history line (version, who, reason)
    from which the next review is dated (docs/inventory.md, "Review dates")."""
    from flows.cli.common import _existing_model, _registry_errors
    from models.identity import current_user

    reviewer = (who if who is not None else current_user()).strip()
    if not reason.strip():
        _fail("--reason is blank: say what the review found (it is recorded in the history)", code=2)
    if not reviewer:
        _fail("--who is blank: name the reviewer", code=2)
    with _registry_errors():
        registry = _existing_model(model)
        champion = registry.resolve(None)
        registry.append_history({"event": "reviewed", "version": champion, "who": reviewer, "reason": reason.strip()})
    console.print(f"{model}: review of v{champion} by {reviewer} recorded; `finml inventory` dates the next one "
                  "from it", highlight=False, markup=False)


__all__ = ["inventory_cmd", "review_cmd"]
