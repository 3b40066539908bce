"""Against a real Prefect server (PostgreSQL in CI) with a process worker and every deployment:
schedules, a deployment run with its artifacts, drift-triggered retraining, the CLI's
``--deployment``, the Dask runner, and the UI in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from models.spec import list_specs
from tests.helpers import BUILTIN_SPECS, ROOT, builtin_spec_dict, write_spec
from tests.integration.browser import Browser, find_chromium
from tests.integration.conftest import IN_CI, client, wait_for

BIN = Path(sys.executable).parent
RUN_TIMEOUT = 420  # seconds for one training run on a busy 2-core machine


def _run(cmd: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env={**env, "COLUMNS": "250"}, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    print(f"$ {' '.join(cmd)}  -> {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def _deployment(c, name: str):
    return c.read_deployment_by_name(name)


def _runs_due_now(c):
    """Flow runs meant to start by now (the scheduler's future runs of the cron schedules left out)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterExpectedStartTime

    soon = datetime.now(timezone.utc) + timedelta(minutes=10)
    runs = c.read_flow_runs(flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(before_=soon)),
                            limit=200)
    return [r for r in runs if not r.auto_scheduled]


def _wait_final(c, run_id, timeout: float = RUN_TIMEOUT):
    def final():
        run = c.read_flow_run(run_id)
        return run if run.state and run.state.is_final() else None

    return wait_for(final, timeout, 2, f"flow run {run_id} to finish")


@pytest.fixture(scope="module")
def credit_risk_run(prefect_server):
    """The credit_risk training deployment, started by `prefect deployment run`, finished."""
    started = time.monotonic()
    done = _run([str(BIN / "prefect"), "deployment", "run", "train-model/train-credit_risk"], prefect_server["env"], 120)
    assert done.returncode == 0, done.stderr
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", done.stdout)
    assert match, f"no flow run id in the output of prefect deployment run:\n{done.stdout}"
    with client(prefect_server["api_url"]) as c:
        run = _wait_final(c, match.group(1))
    print(f"credit_risk deployment run finished in {time.monotonic() - started:.1f} s: {run.name} {run.state.name}")
    return run


def test_every_spec_has_a_scheduled_training_and_monitoring_deployment(prefect_server):
    specs = list_specs(BUILTIN_SPECS)
    with client(prefect_server["api_url"]) as c:
        for spec in specs:
            train = _deployment(c, f"train-model/train-{spec.name}")
            monitor = _deployment(c, f"monitor-model/monitor-{spec.name}")
            assert [s.schedule.cron for s in train.schedules] == [spec.schedules.train]
            assert [s.schedule.cron for s in monitor.schedules] == [spec.schedules.monitor]
            assert train.work_pool_name == monitor.work_pool_name == "finml-pool"
            assert spec.name in train.tags and spec.name in monitor.tags
            assert monitor.parameters == {"model_name": spec.name, "batch": "out_of_time"}
            if spec.task == "binary_classification":
                backtest = _deployment(c, f"backtest-model/backtest-{spec.name}")
                assert [s.schedule.cron for s in backtest.schedules] == [spec.schedules.backtest] == ["0 7 1 * *"]
                assert backtest.parameters == {"model_name": spec.name, "labels": spec.backtest.landing}
                assert backtest.work_pool_name == "finml-pool" and "backtest" in backtest.tags
        automations = c.read_automations()
    from flows.server import ZOMBIE_AUTOMATION, zombie_window_seconds

    triggered = sorted(str(a.trigger.match.root.get("prefect.resource.id")) for a in automations
                       if a.name != ZOMBIE_AUTOMATION)
    assert triggered == sorted(f"finml.model.{s.name}" for s in specs if s.drift.on_drift == "retrain")
    zombie = [a for a in automations if a.name == ZOMBIE_AUTOMATION]
    assert len(zombie) == 1 and zombie[0].trigger.within.total_seconds() == zombie_window_seconds() == 540
    assert zombie[0].actions[0].state.value == "CRASHED"
    # what an engineer sees: `prefect deployment ls` (names), and with -o json the schedules too
    import yaml

    [review] = [d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"] if d["name"] == "review-due"]
    review_cron = review["schedules"][0]["cron"]
    listing = _run([str(BIN / "prefect"), "deployment", "ls"], prefect_server["env"], 120)
    assert listing.returncode == 0
    for spec in specs:
        assert f"train-model/train-{spec.name}" in listing.stdout
        assert f"monitor-model/monitor-{spec.name}" in listing.stdout
    as_json = _run([str(BIN / "prefect"), "deployment", "ls", "-o", "json"], prefect_server["env"], 120)
    crons = {d["name"]: [s["schedule"]["cron"] for s in d["schedules"]] for d in json.loads(as_json.stdout)}
    assert crons == {**{f"train-{s.name}": [s.schedules.train] for s in specs},
                     **{f"monitor-{s.name}": [s.schedules.monitor] for s in specs},
                     **{f"backtest-{s.name}": [s.schedules.backtest] for s in specs
                        if s.task == "binary_classification"},
                     "review-due": [review_cron]}


def test_training_deployment_runs_and_publishes_its_artifacts(prefect_server, credit_risk_run):
    run = credit_risk_run
    assert run.state.is_completed(), run.state.message
    assert re.fullmatch(r"train-credit_risk-v1-\d{4}-\d{2}-\d{2}T\d{4}", run.name), run.name
    assert {"finml", "credit_risk", "training"} <= set(run.tags)
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with client(prefect_server["api_url"]) as c:
        artifacts = c.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    by_key = {a.key: a for a in artifacts}
    assert {"credit-risk-training-summary", "credit-risk-candidates"} <= set(by_key), sorted(by_key)
    assert by_key["credit-risk-training-summary"].data.startswith("# Training credit_risk: promoted as version **1**")
    assert by_key["credit-risk-candidates"].type == "table"
    # the worker wrote to the isolated registry, from the project folder the pull step set
    assert (prefect_server["registry"] / "credit_risk" / "versions" / "1" / "metadata.json").exists()
    # started by hand with the deployment's default reason "schedule": recorded as what it was
    from models.registry import ModelRegistry

    promoted = [e for e in ModelRegistry(prefect_server["registry"], "credit_risk").history()
                if e.get("event") == "promoted" and e.get("version") == 1]
    assert promoted and promoted[0]["reason"] == "manual deployment run", promoted


def test_drift_event_starts_retraining_of_that_model_and_no_other(prefect_server, credit_risk_run):
    token, alert_token = secrets.token_hex(6), secrets.token_hex(6)

    def payload(action: str, tok: str) -> dict:
        return {"model": "credit_risk", "version": 1, "verdict": "drift", "severity": "critical", "action": action,
                "drift_share": 0.5, "drifted_features": ["Income"], "top_features": ["Income"], "score_psi": 0.3,
                "breached_metrics": [], "batch": "integration-test", "run_id": None,
                "reason": f"drift: integration test {tok}"}

    # the labels tasks.report.emit gives the event: the trigger matches finml.action = retrain only
    code = ("import json, sys\nfrom prefect.events import emit_event\nfrom tasks.report import model_resource\n"
            "emit_event(event='finml.drift.detected', resource=model_resource('credit_risk', "
            "{'finml.action': sys.argv[2]}), payload=json.loads(sys.argv[1]))\n")
    with client(prefect_server["api_url"]) as c:
        deployments = {d.id: d.name for d in c.read_deployments()}
        before = {r.id for r in _runs_due_now(c)}
        for action, tok in (("alert", alert_token), ("retrain", token)):
            done = _run([sys.executable, "-c", code, json.dumps(payload(action, tok)), action],
                        prefect_server["env"], 120)
            assert done.returncode == 0, done.stderr

        def triggered():
            return [r for r in _runs_due_now(c) if r.id not in before and token in str(r.parameters.get("reason", ""))]

        runs = wait_for(triggered, 120, 1, "the drift trigger to create a flow run")
        time.sleep(5)  # give any wrongly matching trigger time to fire too
        runs = triggered()
        assert len(runs) == 1, [(deployments.get(r.deployment_id), r.parameters) for r in runs]
        run = runs[0]
        assert deployments[run.deployment_id] == "train-credit_risk"
        assert run.parameters == {"model_name": "credit_risk", "reason": f"drift alarm: drift: integration test {token}"}
        # no other deployment got a run to start now (the scheduler's cron runs aside)
        others = [(deployments.get(r.deployment_id), r.name, r.parameters) for r in _runs_due_now(c)
                  if r.id not in before and r.id != run.id]
        assert others == [], others  # the finml.action = alert event among them: it never retrains
        assert not any(alert_token in str(r.parameters.get("reason", "")) for r in _runs_due_now(c))
        finished = _wait_final(c, run.id)
    assert finished.state.is_completed(), finished.state.message
    assert finished.name.startswith("train-credit_risk-")
    history = (prefect_server["registry"] / "credit_risk" / "history.jsonl").read_text()
    assert token in history, "the drift alarm's reason should reach the registry history"


def test_monitoring_deployment_from_the_cli(prefect_server, credit_risk_run):
    done = _run([str(BIN / "finml"), "monitor", "credit_risk", "--demo-period", "--deployment", "--timeout",
                 str(RUN_TIMEOUT)], prefect_server["env"], RUN_TIMEOUT + 60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "monitor-model/monitor-credit_risk" in done.stdout and "Completed" in done.stdout
    assert re.search(r"monitor-credit_risk-v1-[a-z-]+-\d{4}-\d{2}-\d{2}T\d{4}", done.stdout), done.stdout
    assert "credit-risk-monitoring-verdict" in done.stdout
    assert "/runs/flow-run/" in done.stdout


def test_backtest_deployment_joins_a_landing_file_of_outcomes(prefect_server, credit_risk_run, tmp_path):
    """The monthly backtest-credit_risk deployment, run by `prefect deployment run` with a landing
    file: the out-of-time rows scored (ledgered) through the CLI against the server, their outcomes
    joined by the worker's run, the back-test record, report and artifacts written."""
    from models.spec import find_spec
    from tasks.load import load_source, split_out_of_time

    spec = find_spec("credit_risk", BUILTIN_SPECS)
    _, oot = split_out_of_time(load_source(spec), spec)
    batch = tmp_path / "oot.csv"
    oot.drop(columns=[spec.target.column]).to_csv(batch, index=False)
    # no PREFECT_API_URL: the CLI finds the server recorded under PREFECT_HOME (flows/server_address.py)
    env = {k: v for k, v in prefect_server["env"].items() if k != "PREFECT_API_URL"}
    done = _run([str(BIN / "finml"), "score", "credit_risk", "--batch", str(batch), "--out",
                 str(tmp_path / "scored.parquet"), "--as-of", "2025-01-31"], env, RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"using the Prefect server started by `finml server start` at {prefect_server['api_url']}" in done.stderr
    with client(prefect_server["api_url"]) as c:
        names = [r.name for r in c.read_flow_runs(limit=200)]
    assert any(n.startswith("score-credit_risk-") for n in names), names
    landing = tmp_path / "landing.csv"
    oot[["rownames", spec.target.column]].assign(outcome_date="2025-12-31").to_csv(landing, index=False)
    started = _run([str(BIN / "prefect"), "deployment", "run", "backtest-model/backtest-credit_risk",
                    "--param", f"labels={landing}"], prefect_server["env"], 120)
    assert started.returncode == 0, started.stderr
    run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", started.stdout).group(1)
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with client(prefect_server["api_url"]) as c:
        run = _wait_final(c, run_id)
        assert run.state.is_completed(), run.state.message
        keys = {a.key for a in c.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))}
    assert run.name.startswith("backtest-credit_risk-") and run.parameters["labels"] == str(landing)
    assert {"credit-risk-backtest", "credit-risk-backtest-report"} <= keys, keys
    lines = (prefect_server["registry"] / "credit_risk" / "backtests.jsonl").read_text().splitlines()
    record = json.loads(lines[-1])
    assert record["run_id"] == str(run.id) and record["join"]["joined"] == len(oot) == record["matured"]
    assert sum(record["join"]["left_out"].values()) == 0
    assert Path(record["report"]).is_file() and (Path(record["report"]).parent / "grades.csv").is_file()


def test_cli_deployment_run_fails_clearly_for_a_missing_deployment(prefect_server, tmp_path):
    spec = (BUILTIN_SPECS / "credit_risk.yaml").read_text().replace("name: credit_risk", "name: not_deployed", 1)
    (tmp_path / "not_deployed.yaml").write_text(spec)
    env = {**prefect_server["env"], "FINML_SPECS_DIR": str(tmp_path)}
    done = _run([str(BIN / "finml"), "train", "not_deployed", "--deployment"], env, 120)
    assert done.returncode == 1
    assert "no deployment 'train-model/train-not_deployed'" in " ".join(done.stderr.split())


def test_train_all_on_a_local_dask_cluster_against_the_server(prefect_server, tmp_path):
    code = (
        "from flows.runners import make_task_runner\n"
        "from flows.training import train_all\n"
        "from prefect_dask import DaskTaskRunner\n"
        "runner = make_task_runner()\n"
        "assert isinstance(runner, DaskTaskRunner), runner\n"
        "rows = train_all.with_options(task_runner=runner)(reason='dask test', models=['credit_risk', 'loan_evaluation'])\n"
        "print('RESULT', [(r['model'], r['gate'], r['version']) for r in rows])\n"
    )
    specs = tmp_path / "specs"  # the two specs with their logistic candidate only: Dask is tested, not the models
    specs.mkdir()
    for name in ("credit_risk", "loan_evaluation"):
        spec = builtin_spec_dict(name)
        spec["candidates"] = [c for c in spec["candidates"] if c["name"] == "logistic"]
        write_spec(specs, spec)
    env = {**prefect_server["env"], "FINML_TASK_RUNNER": "dask", "FINML_REGISTRY_DIR": str(tmp_path / "registry"),
           "FINML_REPORTS_DIR": str(tmp_path / "reports"), "FINML_SPECS_DIR": str(specs)}
    started = time.monotonic()
    done = _run([sys.executable, "-c", code], env, RUN_TIMEOUT)
    print(f"train_all on Dask: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RESULT [('credit_risk', 'passed', 1), ('loan_evaluation', 'passed', 1)]" in done.stdout
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with client(prefect_server["api_url"]) as c:
        parent = c.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="train-all-credit_risk-loan_evaluation")))
        assert parent and parent[0].state.is_completed()
        subflows = c.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="-v1-")))
        tagged = {t for r in subflows if r.parameters.get("reason") == "dask test" for t in r.tags}
    assert {"credit_risk", "loan_evaluation", "training"} <= tagged


def test_prefect_ui_shows_the_run_and_its_summary_artifact(prefect_server, credit_risk_run, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        if IN_CI:
            pytest.fail("CI must run the browser check: chromium is missing (.ci/run installs Debian's chromium)")
        pytest.skip("headless Chromium is not installed (apt-get install chromium); CI runs this check")
    run = credit_risk_run
    shot = tmp_path / "prefect-ui-flow-run.png"
    with Browser(chromium, width=1400, height=1000, timeout=90) as browser:
        browser.goto(f"{prefect_server['ui_url']}/runs/flow-run/{run.id}")
        browser.wait_for_text(run.name)
        browser.click("li#artifacts")
        browser.wait_for_text("credit-risk-training-summary")
        # the cards fill in one by one: under load a card's key shows before its description
        text = browser.wait_for_text("Training summary of credit_risk")
        assert "Training summary of credit_risk" in text
        assert "credit-risk-candidates" in text
        time.sleep(1.0)  # let the tab's cards finish their transition before the picture
        browser.screenshot(shot)
    assert shot.stat().st_size > 10_000
    target = os.environ.get("FINML_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / shot.name)
    print(f"screenshot: {shot}")


def test_a_flow_run_whose_heartbeats_stop_is_marked_crashed(prefect_server):
    """The zombie-run automation, with a 10 s window and watching only a run made for this test:
    a Running flow run that sent one heartbeat and then nothing is marked Crashed by the server."""
    import asyncio
    from uuid import UUID

    from prefect import flow
    from prefect.client.schemas.objects import StateType
    from prefect.events import Event
    from prefect.events.clients import PrefectEventsClient
    from prefect.states import Running

    from flows.server import ensure_zombie_automation

    @flow(name="zombie-probe")
    def probe() -> None:
        return None

    api = prefect_server["api_url"]
    with client(api) as c:
        run = c.create_flow_run(probe, name="zombie-probe")
        c.set_flow_run_state(run.id, Running(), force=True)
        automation_id = ensure_zombie_automation(api, within_seconds=10, runs=f"prefect.flow-run.{run.id}",
                                                 name=f"zombie-probe-{run.id}")
        try:
            async def heartbeat() -> None:
                async with PrefectEventsClient(api) as events:
                    await events.emit(Event(event="prefect.flow-run.heartbeat",
                                            resource={"prefect.resource.id": f"prefect.flow-run.{run.id}"}))

            asyncio.run(heartbeat())
            crashed = wait_for(lambda: (r := c.read_flow_run(run.id)).state.type == StateType.CRASHED and r, 90, 2,
                               "the silent flow run to be marked Crashed")
            assert "no heartbeat for 10 s" in (crashed.state.message or "")
        finally:
            c.delete_automation(UUID(automation_id))
