"""Four-eyes promotion on a real Prefect server (issue 18 §2): a training deployment run of a spec
with ``approval: required`` writes its version pending and suspends with the approval form; the
run's own user's answer is refused (recorded) and the run suspends again; a listed approver's
answer, given through the API (``resume_flow_run(run_input=...)``, what the UI's form sends),
resumes it without training again and moves the champion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.registry import ModelRegistry
from tests.helpers import builtin_spec_dict, write_spec
from tests.integration.conftest import client, wait_for

RUN_TIMEOUT = 420


def _suspended(c, run_id, key: str):
    def check():
        run = c.read_flow_run(run_id)
        state = run.state
        if state is not None and state.is_final():
            pytest.fail(f"the run ended instead of suspending: {state.name} {state.message}")
        ok = state is not None and state.is_paused() and state.state_details.pause_key == key
        return run if ok else None

    return wait_for(check, RUN_TIMEOUT, 2, f"flow run {run_id} to suspend with the key {key}")


def _four_eyes(tmp_path: Path) -> dict[str, str]:
    """A four-eyes mortgage spec (bob approves) in its own specs folder and registry; the env of a run."""
    specs, registry = tmp_path / "specs", tmp_path / "registry"
    specs.mkdir()
    spec = builtin_spec_dict("mortgage_approval")
    spec["candidates"] = [c for c in spec["candidates"] if c["estimator"] != "keras_mlp"]
    spec["governance"] = {"owner": "Mortgage credit risk modelling", "tier": 1, "approval": "required",
                          "approvers": ["bob"]}
    write_spec(specs, spec)
    return {"FINML_SPECS_DIR": str(specs), "FINML_REGISTRY_DIR": str(registry), "FINML_USER": "alice"}


def _start(c, env: dict[str, str]):
    deployment = c.read_deployment_by_name("train-model/train-mortgage_approval")
    return c.create_flow_run_from_deployment(deployment.id, job_variables={"env": env})


def _final(c, run_id):
    def final():
        r = c.read_flow_run(run_id)
        return r if r.state and r.state.is_final() else None

    return wait_for(final, RUN_TIMEOUT, 2, "the resumed run to finish")


def test_a_training_deployment_run_suspends_and_resumes_from_the_approval_form(prefect_server, tmp_path):
    env = _four_eyes(tmp_path)
    reg = ModelRegistry(env["FINML_REGISTRY_DIR"], "mortgage_approval")
    with client(prefect_server["api_url"]) as c:
        run = _start(c, env)
        first = _suspended(c, run.id, "approval-v1-0")
        assert first.state.name == "Suspended"
        from flows.lifetime import ZOMBIE_AUTOMATION

        [zombie] = c.read_automations_by_name(ZOMBIE_AUTOMATION)  # a suspended run sends no heartbeat: not a zombie
        assert {"prefect.flow-run.Suspended", "prefect.flow-run.Paused"} <= set(zombie.trigger.expect)
        assert [(e["event"], e["who"], e["run_id"]) for e in reg.history()] == [("pending", "alice", str(run.id))]
        assert reg.champion() is None
        keyset = first.state.state_details.run_input_keyset
        description = json.loads(c.read_flow_run_input(run.id, keyset["description"]))
        assert "## Approve mortgage_approval version 1?" in description
        assert "| threshold | roc_auc |" in description and "model_card.md" in description
        schema = json.loads(c.read_flow_run_input(run.id, keyset["schema"]))
        assert set(schema["properties"]) >= {"decision", "approver", "comment"}

        c.resume_flow_run(run.id, run_input={"decision": "approve", "approver": "alice", "comment": "mine"})
        _suspended(c, run.id, "approval-v1-1")  # refused, recorded, and waiting again
        assert [e["event"] for e in reg.history()] == ["pending", "approval_refused"]
        assert reg.history()[-1]["who"] == "alice" and reg.champion() is None

        c.resume_flow_run(run.id, run_input={"decision": "approve", "approver": "bob", "comment": "fair lending ok"})
        done = _final(c, run.id)
    assert done.state.is_completed(), done.state.message
    assert reg.champion() == 1 and reg.list_versions() == [1]  # resumed without training again
    approved = reg.history()[-1]
    assert (approved["event"], approved["who"], approved["comment"], approved["run_id"]) == (
        "approved", "bob", "fair lending ok", str(run.id))


def test_finml_approve_decides_a_suspended_run_and_resumes_it(prefect_server, tmp_path):
    env = _four_eyes(tmp_path)
    reg = ModelRegistry(env["FINML_REGISTRY_DIR"], "mortgage_approval")
    with client(prefect_server["api_url"]) as c:
        run = _start(c, env)
        _suspended(c, run.id, "approval-v1-0")
        cli = {**prefect_server["env"], **env, "FINML_USER": "bob", "COLUMNS": "250"}
        done = subprocess.run([sys.executable, "-m", "flows.cli", "reject", "mortgage_approval", "--version", "1",
                               "--comment", "the 1990 data is too old"], env=cli, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "v1 rejected by bob" in done.stdout and "resumes with this decision" in done.stdout
        finished = _final(c, run.id)
    assert finished.state.is_completed(), finished.state.message
    assert [(e["event"], e["who"]) for e in reg.history()] == [("pending", "alice"), ("rejected", "bob")]
    assert reg.champion() is None and reg.list_versions() == [1]  # the resumed run did not train again
