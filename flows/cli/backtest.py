"""``finml ledger`` (what was scored, when, by which version), ``finml outcomes`` (join late
outcomes and back-test) and ``finml backtest`` (back-test the outcomes joined so far)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from flows.cli.common import cli_table, console, _existing_model, _fail, _fmt, _registry_errors
from flows.cli.runs import _check_configured_api, _model_tags


def ledger_cmd(
    model: str = typer.Argument(..., help="Model name."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summarise the scoring ledger: rows per as-of month and version."""
    from models.ledger import ledger_store, ledger_summary, read_ledger

    reg = _existing_model(model)
    with _registry_errors():
        rows = ledger_summary(read_ledger(reg.root, model))
        problems = ledger_store(reg.root, model).verify()
    if as_json:
        console.print_json(json.dumps({"model": model, "months": rows, "problems": problems}))
        return
    if not rows:
        console.print(f"The ledger of {model} is empty: `finml score` records every scored row there "
                      "(a batch needs an id column).", highlight=False)
    else:
        table = cli_table(f"Scoring ledger of {model}", ("month", "version", "rows", "ids", "runs", "first as-of", "last as-of", "mean score"))
        for r in rows:
            table.add_row(r["month"], str(r["model_version"]), str(r["rows"]), str(r["ids"]), str(r["runs"]),
                          r["first_as_of"][:10], r["last_as_of"][:10], _fmt(r["mean_score"]))
        console.print(table)
    for p in problems:
        console.print(f"problem: {p}", highlight=False, markup=False)
    if problems:
        raise typer.Exit(1)


def print_backtest(result: dict[str, Any]) -> None:
    """What ``finml outcomes`` and ``finml backtest`` print: the join's counts, the vintages
    beside the estimate, the AUC test and the grade p-values per version, and the report's path."""
    join = result.get("join")
    if join:
        console.print(f"{join['received']} outcome(s) received, {join['joined']} joined to the ledger, "
                      f"{sum(join['left_out'].values())} left out", highlight=False)
        for s in join["sentences"]:
            console.print(f"  left out: {s}", highlight=False, markup=False, soft_wrap=True)
    bt = result["backtest"]
    console.print(f"{bt['scored']} scored row(s), {bt['matured']} matured; p-values: {bt['policy']['text']}",
                  highlight=False)
    rows = bt["vintages"]["rows"]
    if rows:
        table = cli_table("Vintages: realised (matured outcomes) beside the estimate from the scores",
                          ("vintage", "version", "rows", "matured", "event rate", "mean PD", "AUC [95 %]",
                           "expected event rate [band]", "expected AUC [band]", "Jeffreys p"))
        for r in rows:
            table.add_row(r["vintage"], str(r["model_version"]), str(r["rows"]), str(r["matured"]),
                          _fmt(r["event_rate"]), _fmt(r["mean_pd"]),
                          f"{_fmt(r['auc'])} [{_fmt(r['auc_low'])}, {_fmt(r['auc_high'])}]",
                          f"{_fmt(r['expected_event_rate'])} [{_fmt(r['expected_event_rate_low'])}, "
                          f"{_fmt(r['expected_event_rate_high'])}]",
                          f"{_fmt(r['expected_auc'])} [{_fmt(r['expected_auc_low'])}, {_fmt(r['expected_auc_high'])}]",
                          f"{_fmt(r['jeffreys_p'])} {r['jeffreys_light'] or ''}")
        console.print(table)
        console.print(f"estimate: {bt['vintages']['estimate']['warning']}", highlight=False, soft_wrap=True)
    for v in bt["versions"]:
        t = v["auc_test"]
        if t.get("status") == "computed":
            console.print(f"v{v['version']}: AUC {t['auc_current']:.4f} now against {t['auc_initial']:.4f} at validation, "
                          f"S = {t['statistic']:.3f}, p = {t['p_value']:.4f} ({t['light']})", highlight=False)
        else:
            console.print(f"v{v['version']}: AUC test {t['status']}", highlight=False)
        if v["rating"]:
            reds = [g["grade"] for g in v["rating"]["grades"] if g["jeffreys_light"] == "red"]
            console.print(f"v{v['version']}: Jeffreys red in grade(s) {', '.join(reds)}" if reds else
                          f"v{v['version']}: no grade red by the Jeffreys test", highlight=False)
    if bt.get("migration"):
        m = bt["migration"]
        console.print(f"migration {m['first_date']} -> {m['second_date']}: {m['obligors']} ids, upper MWB "
                      f"{_fmt(m['upper_mwb'])}, lower MWB {_fmt(m['lower_mwb'])}", highlight=False)
    console.print(f"report: {result['report']}", highlight=False)


def _run_backtest(model: str, labels: str | None, as_json: bool = False) -> None:
    _existing_model(model)
    _check_configured_api()
    from flows.backtest import backtest_model
    from flows.cli.common import _error_message

    try:
        with _model_tags(model, "backtest"):
            result = backtest_model(model, labels=labels)
    except Exception as err:
        _fail(_error_message(err))
    if as_json:  # the flow's whole result: the join, the back-test record, what changed, the report
        console.print_json(json.dumps(result, default=str))
    else:
        print_backtest(result)


def outcomes_cmd(
    model: str = typer.Argument(..., help="Model name."),
    labels: str = typer.Option(..., "--labels", help="CSV or Parquet file of matured outcomes: id, outcome "
                               "(0/1 or the target's classes), outcome date (backtest.outcome_date_column)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole result (join, back-test, changes) as JSON."),
) -> None:
    """Join late outcomes to the scoring ledger, then back-test the model and write the report."""
    if not Path(labels).is_file():
        _fail(f"--labels {labels!r}: no such file", code=2)
    _run_backtest(model, labels, as_json)


def backtest_cmd(
    model: str = typer.Argument(..., help="Model name."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole result (back-test, changes) as JSON."),
) -> None:
    """Back-test the model on the outcomes joined so far (or the spec's backtest.landing file)."""
    _run_backtest(model, None, as_json)


def register(app: typer.Typer) -> None:
    """Add the commands to the ``finml`` app."""
    app.command("ledger")(ledger_cmd)
    app.command("outcomes")(outcomes_cmd)
    app.command("backtest")(backtest_cmd)


__all__ = ["register", "print_backtest"]
