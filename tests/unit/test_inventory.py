"""The model inventory and review dates (issue 18 §3): the ``governance`` spec section, last and
next review from the history, open alarms, pending approvals, the back-test light, ``finml
inventory`` as a table, JSON and CSV, and the ``review-due`` steps and deployment."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import date
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from models.ledger import append_backtest
from models.registry import ModelRegistry
from models.spec import SpecError, find_spec, list_specs, parse_spec
from models.stored_spec import spec_differences
from tasks.inventory import add_months, champion_facts, inventory, review_due
from tests.helpers import BUILTIN_SPECS, ROOT, builtin_spec_dict, spec_error, write_spec

TODAY = date(2027, 1, 1)


def _writer(folder: Path, version: int) -> dict:
    (folder / "model").mkdir()
    (folder / "model" / "weights.bin").write_bytes(b"w" * 64)
    return {"model": "m", "metrics": {"roc_auc": 0.8}}


def _promote(reg: ModelRegistry, ts: str, run_id: str, who: str | None = None) -> int:
    event = {"event": "promoted", "ts": ts, "run_id": run_id, **({"who": who} if who else {})}
    return reg.publish(_writer, promote=True, history_event=event)


def _governed(name: str, owner: str, tier: int, **extra) -> dict:
    data = builtin_spec_dict(name)
    data["governance"] = {"owner": owner, "tier": tier, **extra}
    return data


@pytest.fixture
def estate(finml_env):
    """:func:`build_estate` in the test's folders."""
    build_estate(finml_env["specs"], finml_env["registry"])
    return finml_env


def build_estate(specs: Path, root: Path) -> None:
    """Specs: credit_risk (tier 1, Alice; v1 promoted 2025-01-15, approved 2025-02-01: overdue on
    2027-01-01), loan_evaluation (tier 2, Bob; promoted 2026-06-01: next review 2028-06-01),
    market_direction without a governance section and never trained; registry versions are a
    few bytes each (no training)."""
    write_spec(specs, _governed("credit_risk", "Alice (retail credit)", 1))
    write_spec(specs, _governed("loan_evaluation", "Bob", 2))
    bare = builtin_spec_dict("market_direction")
    bare.pop("governance", None)
    write_spec(specs, bare)

    credit = ModelRegistry(root, "credit_risk")
    _promote(credit, "2025-01-15T10:00:00+00:00", "r1", who="carol")
    credit.append_history({"event": "approved", "version": 1, "run_id": "r1", "who": "dave",
                           "ts": "2025-02-01T09:00:00+00:00"})
    credit.append_history({"event": "pending", "run_id": "r2", "ts": "2026-12-20T03:00:00+00:00"})
    credit.append_history({"event": "pending", "run_id": "r3", "ts": "2026-12-21T03:00:00+00:00"})
    credit.append_history({"event": "rejected", "run_id": "r3", "ts": "2026-12-22T03:00:00+00:00"})
    for ts, verdict in (("2026-11-01T06:00:00+00:00", "drift"), ("2026-11-02T06:00:00+00:00", "stable"),
                        ("2026-12-01T06:00:00+00:00", "drift"), ("2026-12-02T06:00:00+00:00", "data_quality_alarm")):
        credit.append_monitoring({"ts": ts, "model": "credit_risk", "version": 1, "verdict": verdict})
    append_backtest(root, "credit_risk", {"event": "backtest", "ts": "2026-12-01T07:00:00+00:00", "champion": 1,
                                          "versions": [{"version": 1, "auc_test": {"light": "green"},
                                                        "rating": {"grades": [{"jeffreys_light": "amber",
                                                                               "binomial_light": "green"}]}}]})

    loan = ModelRegistry(root, "loan_evaluation")
    _promote(loan, "2026-06-01T03:00:00+00:00", "l1", who="schedule")
    loan.append_monitoring({"ts": "2026-12-03T06:00:00+00:00", "model": "loan_evaluation", "version": 1,
                            "verdict": "stable"})


def test_the_inventory_lists_owner_tier_champion_and_review_dates_and_flags_the_overdue_review(estate):
    rows = {r.model: r for r in inventory(estate["specs"], estate["registry"], TODAY)}
    assert list(rows) == ["credit_risk", "loan_evaluation", "market_direction"]

    credit = rows["credit_risk"]
    assert (credit.owner, credit.tier, credit.approval, credit.champion) == ("Alice (retail credit)", 1, "required", 1)
    assert credit.intended_use.startswith("Rank and price consumer-loan applications")
    assert credit.champion_since == "2025-01-15T10:00:00+00:00"
    assert (credit.approved_by, credit.promoted_by) == ("dave", "carol")  # the approval's who, and the promoter's
    assert credit.last_review == "2025-02-01"  # the approval, later than the promotion
    assert (credit.review_every_months, credit.next_review) == (12, "2026-02-01")
    assert (credit.review_status, credit.days_overdue) == ("overdue", 334)
    assert (credit.monitoring_verdict, credit.last_monitoring) == ("data_quality_alarm", "2026-12-02T06:00:00+00:00")
    assert credit.open_alarms == 2  # the two alarms since the last stable run; the earlier drift was answered
    assert (credit.last_backtest, credit.backtest_light) == ("2026-12-01T07:00:00+00:00", "amber")
    assert credit.pending_approvals == 1  # r3's pending was answered by its rejection
    assert credit.problems == []

    loan = rows["loan_evaluation"]
    assert (loan.owner, loan.tier, loan.approved_by, loan.promoted_by) == ("Bob", 2, None, "schedule")
    assert loan.last_review == "2026-06-01"
    assert (loan.next_review, loan.review_status, loan.days_overdue) == ("2028-06-01", "ok", 0)
    assert (loan.monitoring_verdict, loan.open_alarms, loan.last_backtest, loan.pending_approvals) == ("stable", 0, None, 0)

    bare = rows["market_direction"]
    assert (bare.owner, bare.tier, bare.champion, bare.review_status) == ("unassigned", None, None, "no champion")
    assert bare.review_every_months == 12
    assert bare.problems and "no governance section" in bare.problems[0]


def test_the_overdue_review_is_judged_on_the_injected_day(estate):
    def status(day):
        return {r.model: (r.review_status, r.days_overdue) for r in inventory(estate["specs"], estate["registry"], day)}

    assert status(date(2026, 1, 31))["credit_risk"] == ("ok", 0)
    assert status(date(2026, 2, 1))["credit_risk"] == ("due", 0)
    assert status(date(2026, 2, 2))["credit_risk"] == ("overdue", 1)
    assert status(date(2028, 6, 2))["loan_evaluation"] == ("overdue", 1)


def test_a_review_line_moves_the_next_review_and_a_rollback_does_not(finml_env):
    write_spec(finml_env["specs"], _governed("credit_risk", "Alice", 1, review_every=6))
    reg = ModelRegistry(finml_env["registry"], "credit_risk")
    _promote(reg, "2025-01-10T00:00:00+00:00", "a")
    _promote(reg, "2026-03-10T00:00:00+00:00", "b")
    reg.rollback(1, reason="v2 misbehaves")
    rollback_ts = reg.history()[-1]["ts"]
    [row] = inventory(finml_env["specs"], finml_env["registry"], TODAY)
    assert (row.champion, row.champion_since) == (1, rollback_ts)
    assert (row.last_review, row.next_review, row.review_status) == ("2025-01-10", "2025-07-10", "overdue")
    reg.append_history({"event": "reviewed", "version": 1, "who": "erin", "ts": "2026-12-15T12:00:00+00:00"})
    [row] = inventory(finml_env["specs"], finml_env["registry"], TODAY)
    assert (row.last_review, row.next_review, row.review_status) == ("2026-12-15", "2027-06-15", "ok")


def test_review_due_by_tier_override_and_without_a_section():
    spec = parse_spec(_governed("credit_risk", "A", 1))
    assert [review_due(spec.governance.model_copy(update={"tier": t}), date(2025, 3, 1), TODAY).due
            for t in (1, 2, 3)] == [date(2026, 3, 1), date(2027, 3, 1), date(2028, 3, 1)]
    six = parse_spec(_governed("credit_risk", "A", 3, review_every=6)).governance
    assert review_due(six, date(2026, 6, 30), TODAY).due == date(2026, 12, 30)
    assert review_due(None, date(2025, 12, 31), TODAY).due == date(2026, 12, 31)  # untiered: 12 months
    assert review_due(None, None, TODAY).state == "no champion"
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29) and add_months(date(2025, 1, 31), 13) == date(2026, 2, 28)
    with pytest.raises(ValueError):
        add_months(date(2025, 1, 1), -1)


def test_an_approval_given_before_the_commit_line_counts_by_run_id():
    history = [{"event": "approved", "run_id": "r9", "who": "frank", "ts": "2026-05-02T10:00:00+00:00"},
               {"event": "promoted", "version": 4, "run_id": "r9", "champion_after": 4, "who": "gina",
                "ts": "2026-05-02T10:05:00+00:00"}]
    facts = champion_facts(history, 4)
    assert (facts.approved_by, facts.promoted_by, facts.last_review) == ("frank", "gina", date(2026, 5, 2))


def test_inventory_cli_json_csv_and_table(estate):
    from flows.cli import app

    result = CliRunner().invoke(app, ["inventory", "--json", "--as-of", "2027-01-01"])
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in json.loads(result.stdout)}
    assert rows["credit_risk"]["review_status"] == "overdue" and rows["credit_risk"]["days_overdue"] == 334
    assert rows["credit_risk"]["approved_by"] == "dave" and rows["loan_evaluation"]["next_review"] == "2028-06-01"

    result = CliRunner().invoke(app, ["inventory", "--csv", "--as-of", "2027-01-01"])
    assert result.exit_code == 0, result.output
    table = {r["model"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert set(table) == {"credit_risk", "loan_evaluation", "market_direction"}
    assert (table["credit_risk"]["owner"], table["credit_risk"]["tier"], table["credit_risk"]["open_alarms"]) == (
        "Alice (retail credit)", "1", "2")
    assert table["market_direction"]["champion"] == "" and table["market_direction"]["owner"] == "unassigned"

    result = CliRunner().invoke(app, ["inventory", "--as-of", "2027-01-01"])
    assert result.exit_code == 0, result.output
    assert "OVERDUE" in result.stdout and "review overdue: credit_risk (334 days, due 2026-02-01)\n" in result.stdout
    assert "market_direction: no governance section: owner unassigned" in result.stdout
    assert CliRunner().invoke(app, ["inventory", "--as-of", "1 Jan"]).exit_code == 2


def test_the_builtin_models_are_listed_with_owner_tier_and_review_interval(finml_env, monkeypatch):
    monkeypatch.setenv("FINML_SPECS_DIR", str(BUILTIN_SPECS))
    rows = {r.model: r for r in inventory(BUILTIN_SPECS, finml_env["registry"], TODAY)}
    assert {m: (r.owner, r.tier, r.review_every_months) for m, r in rows.items()} == {
        "credit_risk": ("Retail credit risk modelling", 1, 12),
        "loan_evaluation": ("Retail credit risk modelling", 2, 24),
        "market_direction": ("Market risk analytics", 3, 36),
        "market_forecast": ("Market risk analytics", 2, 24),
        "mortgage_approval": ("Mortgage credit risk modelling", 1, 12)}
    assert all(r.problems == [] and r.intended_use for r in rows.values())


def test_a_damaged_history_is_a_problem_of_its_row_and_exits_1(estate):
    from flows.cli import app

    path = estate["registry"] / "loan_evaluation" / "history.jsonl"
    path.write_text("not json\n" + path.read_text())
    result = CliRunner().invoke(app, ["inventory", "--json", "--as-of", "2027-01-01"])
    assert result.exit_code == 1
    rows = {r["model"]: r for r in json.loads(result.stdout)}
    assert rows["loan_evaluation"]["problems"][0].startswith("registry: ")
    assert rows["credit_risk"]["review_status"] == "overdue"  # the others are still judged


# --------------------------------------------------------------------------- the spec section


def test_governance_is_stored_with_the_spec_but_not_hashed():
    for spec in list_specs(BUILTIN_SPECS):
        data = builtin_spec_dict(spec.name)
        assert spec.model_dump(mode="json")["governance"]["owner"] == data["governance"]["owner"]
        assert "governance" not in spec.canonical_form()
        assert parse_spec(spec.model_dump(mode="json")) == spec  # the stored dump reads back whole
        del data["governance"]
        without = parse_spec(data)
        assert without.content_hash() == spec.content_hash()  # the built-in hashes are those before the section
        assert "governance" not in without.model_dump(mode="json")  # no section: no key, as before
    other = parse_spec(_governed("credit_risk", "someone else", 3, approvers=["x", "y"]))
    builtin = find_spec("credit_risk", BUILTIN_SPECS)
    assert other.content_hash() == builtin.content_hash()
    assert spec_differences(builtin, other) == []  # monitoring reports no difference for a new owner


def test_a_tier_one_spec_without_intended_use_is_refused_naming_the_field():
    data = _governed("credit_risk", "Alice", 1)
    del data["intended_use"]
    message = spec_error(data)
    assert "field 'intended_use': required field is missing" in message and "governance" not in message
    data["intended_use"] = "   "
    assert "field 'intended_use': is blank" in spec_error(data)


@pytest.mark.parametrize("governance,expected", [
    ({"tier": 1}, "field 'governance.owner': required field is missing"),
    ({"owner": "  ", "tier": 1}, "field 'governance.owner': is blank"),
    ({"owner": "A"}, "field 'governance.tier': required field is missing"),
    ({"owner": "A", "tier": 4}, "field 'governance.tier'"),
    ({"owner": "A", "tier": True}, "field 'governance.tier': must be the integer 1, 2 or 3, got True"),
    ({"owner": "A", "tier": "1"}, "field 'governance.tier': must be the integer 1, 2 or 3, got '1'"),
    ({"owner": "A", "tier": 1, "review_every": 0}, "field 'governance.review_every'"),
    ({"owner": "A", "tier": 1, "approval": "maybe"}, "field 'governance.approval'"),
    ({"owner": "A", "tier": 1, "approvers": ["x", "x"]}, "field 'governance.approvers': ['x'] listed more than once"),
    ({"owner": "A", "tier": 1, "reviewer": "x"}, "field 'governance.reviewer': unknown key"),
])
def test_bad_governance_is_refused_naming_the_field(governance, expected):
    data = builtin_spec_dict("credit_risk")
    data["governance"] = governance
    assert expected in spec_error(data)


def test_approval_rule_and_review_interval_follow_the_tier_unless_given():
    def gov(**kw):
        return parse_spec(_governed("credit_risk", "A", **kw)).governance

    assert [(gov(tier=t).approval_rule, gov(tier=t).review_months) for t in (1, 2, 3)] == [
        ("required", 12), ("required", 24), ("none", 36)]
    assert (gov(tier=1, approval="none").approval_rule, gov(tier=3, review_every=18).review_months) == ("none", 18)


def test_an_invalid_spec_is_listed_with_its_error(finml_env):
    data = _governed("credit_risk", "Alice", 1)
    data["governance"]["tier"] = 5
    write_spec(finml_env["specs"], data)
    [row] = inventory(finml_env["specs"], finml_env["registry"], TODAY)
    assert row.owner == "unassigned" and row.problems[0].startswith("spec: ") and "governance.tier" in row.problems[0]
    with pytest.raises(SpecError):
        inventory(finml_env["root"] / "no-such-folder", finml_env["registry"], TODAY)


# --------------------------------------------------------------------------- the review-due steps and deployment


def test_review_due_steps_emit_one_event_per_model_due(estate, monkeypatch):
    import prefect.events

    from tasks.review import emit_review_due, find_due_reviews

    seen = []
    monkeypatch.setattr(prefect.events, "emit_event",
                        lambda event, resource, payload=None, **kw: seen.append((event, resource, payload)))
    due = find_due_reviews.fn(estate["specs"], estate["registry"], TODAY)
    assert [p["model"] for p in due] == ["credit_risk"]
    assert emit_review_due.fn(due) == 1
    [(event, resource, payload)] = seen
    assert event == "finml.review.due"
    assert resource == {"prefect.resource.id": "finml.model.credit_risk", "prefect.resource.name": "credit_risk",
                        "finml.tier": "1", "finml.review": "overdue"}
    assert (payload["next_review"], payload["days_overdue"], payload["owner"]) == ("2026-02-01", 334, "Alice (retail credit)")
    assert payload["reason"].startswith("periodic review of credit_risk v1 overdue by 334 day(s): last review 2025-02-01")
    later = find_due_reviews.fn(estate["specs"], estate["registry"], date(2028, 6, 1))
    assert [(p["model"], p["status"]) for p in later] == [("credit_risk", "overdue"), ("loan_evaluation", "due")]


def test_the_review_due_deployment_is_generated_and_its_flow_loads(monkeypatch):
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.flows import load_flow_from_entrypoint

    sys.path.insert(0, str(ROOT / "scripts"))
    import prefect_yaml

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    [review] = [d for d in config["deployments"] if d["name"] == "review-due"]
    assert review == prefect_yaml.review_deployment() | {"work_pool": {"name": "finml-pool"}}
    assert CronSchedule(cron=review["schedules"][0]["cron"], timezone="UTC").cron == "0 8 * * 1"
    monkeypatch.chdir(ROOT)
    flow = load_flow_from_entrypoint(review["entrypoint"])
    assert flow.name == "review-due" and set(flow.parameters.properties) == {"as_of"}
    assert not flow.parameters.required


def test_finml_review_records_a_review_that_dates_the_next_one(estate, monkeypatch):
    from flows.cli import app

    monkeypatch.setenv("FINML_USER", "erin")
    result = CliRunner().invoke(app, ["review", "credit_risk", "--reason", "annual review: no findings"])
    assert result.exit_code == 0, result.output
    line = ModelRegistry(estate["registry"], "credit_risk").history()[-1]
    assert (line["event"], line["version"], line["who"], line["reason"]) == ("reviewed", 1, "erin",
                                                                             "annual review: no findings")
    day = date.fromisoformat(line["ts"][:10])
    [row] = [r for r in inventory(estate["specs"], estate["registry"], day) if r.model == "credit_risk"]
    assert (row.last_review, row.next_review, row.review_status) == (day.isoformat(), add_months(day, 12).isoformat(), "ok")
    assert CliRunner().invoke(app, ["review", "credit_risk", "--reason", "  "]).exit_code == 2
    write_spec(estate["specs"], builtin_spec_dict("market_forecast"))
    ModelRegistry(estate["registry"], "market_forecast").publish(_writer, promote=False,
                                                                history_event={"event": "registered"})
    result = CliRunner().invoke(app, ["review", "market_forecast", "--reason", "x"])
    assert result.exit_code == 1 and "has no champion" in result.output


def test_a_review_line_reads_back_as_its_own_event_type():
    from models.records.registry import Reviewed, parse_event

    event = parse_event({"event": "reviewed", "version": 3, "who": "erin", "reason": "annual review: no findings",
                         "ts": "2026-12-15T12:00:00+00:00"})
    assert isinstance(event, Reviewed) and (event.version, event.who) == (3, "erin")
