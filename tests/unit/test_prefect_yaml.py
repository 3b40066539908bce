"""prefect.yaml and the specs agree: two deployments per spec, entrypoints that import, crons that
Prefect accepts and that equal the spec's, and one drift trigger per retraining model, matching
that model only and passing the alarm's reason."""

from __future__ import annotations

import sys

import pytest
import yaml

from models.spec import list_specs
from tests.helpers import BUILTIN_SPECS, ROOT, builtin_spec_dict, write_spec

sys.path.insert(0, str(ROOT / "scripts"))
import prefect_yaml  # noqa: E402  (scripts/prefect_yaml.py)

CONFIG = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in CONFIG["deployments"]}
SPECS = list_specs(BUILTIN_SPECS)
DRIFT_EVENT = "finml.drift.detected"
PAYLOAD_KEYS = ("model", "version", "verdict", "drift_share", "drifted_features", "top_features", "score_psi",
                "breached_metrics", "batch", "run_id", "reason")


def test_names_are_unique_and_every_deployment_belongs_to_a_spec():
    names = [d["name"] for d in CONFIG["deployments"]]
    assert len(names) == len(set(names))
    expected = {f"{kind}-{s.name}" for s in SPECS for kind in ("train", "monitor")}
    expected |= {f"backtest-{s.name}" for s in SPECS if s.task == "binary_classification"}
    expected.add("review-due")  # one for every model (tests/unit/test_inventory.py)
    assert set(names) == expected
    assert {"backtest-credit_risk", "backtest-loan_evaluation", "backtest-mortgage_approval"} <= set(names)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.task == "binary_classification"], ids=lambda s: s.name)
def test_each_credit_model_has_a_monthly_backtest_reading_its_landing_file(spec):
    backtest = DEPLOYMENTS[f"backtest-{spec.name}"]
    assert backtest["entrypoint"] == "flows/backtest.py:backtest_model"
    assert backtest["parameters"] == {"model_name": spec.name, "labels": spec.backtest.landing}
    assert backtest["schedules"] == [{"cron": "0 7 1 * *", "timezone": "UTC"}]
    assert set(backtest["tags"]) == {"finml", spec.name, "backtest"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_each_spec_has_a_training_and_a_monitoring_deployment(spec):
    train, monitor = DEPLOYMENTS[f"train-{spec.name}"], DEPLOYMENTS[f"monitor-{spec.name}"]
    assert train["entrypoint"] == "flows/training.py:train_model"
    assert monitor["entrypoint"] == "flows/monitoring.py:monitor_model"
    assert train["parameters"] == {"model_name": spec.name, "reason": "schedule"}
    assert monitor["parameters"] == {"model_name": spec.name, "batch": "out_of_time"}
    for dep, kind in ((train, "training"), (monitor, "monitoring")):
        assert set(dep["tags"]) == {"finml", spec.name, kind}
        assert dep["work_pool"]["name"] == "finml-pool"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_crons_are_valid_for_prefect_and_equal_the_spec(spec):
    from prefect.client.schemas.schedules import CronSchedule

    for dep, cron in ((DEPLOYMENTS[f"train-{spec.name}"], spec.schedules.train),
                      (DEPLOYMENTS[f"monitor-{spec.name}"], spec.schedules.monitor)):
        assert len(dep["schedules"]) == 1
        entry = dep["schedules"][0]
        schedule = CronSchedule(cron=entry["cron"], timezone=entry.get("timezone"))  # raises on a bad cron
        assert schedule.cron == cron
        assert schedule.timezone == "UTC"


def test_prefect_rejects_a_bad_cron():
    from prefect.client.schemas.schedules import CronSchedule

    with pytest.raises(ValueError):
        CronSchedule(cron="0 3 * * 8")


@pytest.mark.parametrize("entrypoint,flow_name,params", [
    ("flows/training.py:train_model", "train-model", {"model_name", "reason", "register_as"}),
    ("flows/monitoring.py:monitor_model", "monitor-model", {"model_name", "batch", "version"}),
])
def test_entrypoints_import_and_take_the_parameters(entrypoint, flow_name, params, monkeypatch):
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.chdir(ROOT)
    flow = load_flow_from_entrypoint(entrypoint)
    assert flow.name == flow_name
    assert set(flow.parameters.properties) == params
    used = {k for d in CONFIG["deployments"] if d["entrypoint"] == entrypoint for k in d["parameters"]}
    for d in CONFIG["deployments"]:
        for trigger in d.get("triggers") or []:
            if d["entrypoint"] == entrypoint:
                used |= set(trigger["parameters"])
    assert used <= params
    assert set(flow.parameters.required) <= {"model_name"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_drift_trigger_matches_its_own_model_only(spec):
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    train, monitor = DEPLOYMENTS[f"train-{spec.name}"], DEPLOYMENTS[f"monitor-{spec.name}"]
    assert not monitor.get("triggers")
    if "retrain" not in (spec.drift.on_drift, spec.drift.on_feature_drift):
        assert not train.get("triggers")
        return
    assert len(train["triggers"]) == 1
    raw = train["triggers"][0]
    trigger = DeploymentEventTrigger.model_validate(raw)  # Prefect's own schema for prefect.yaml triggers
    assert trigger.enabled
    assert trigger.expect == {DRIFT_EVENT}
    assert trigger.match.root == {"prefect.resource.id": f"finml.model.{spec.name}", "finml.action": "retrain"}
    assert not trigger.match_related
    assert trigger.posture == "Reactive" and trigger.threshold == 1
    assert trigger.parameters["model_name"] == spec.name
    assert trigger.parameters["reason"].startswith("drift alarm: {{ event.payload.reason or ")


def test_each_model_has_exactly_one_trigger_and_no_trigger_is_shared():
    resources = [t["match"]["prefect.resource.id"] for d in CONFIG["deployments"] for t in d.get("triggers") or []]
    assert sorted(resources) == sorted(f"finml.model.{s.name}" for s in SPECS
                                       if "retrain" in (s.drift.on_drift, s.drift.on_feature_drift))
    assert not any("*" in r for r in resources)


def test_trigger_passes_the_alarms_reason_as_the_run_parameter():
    from prefect.server.utilities.user_templates import render_user_template_sync, validate_user_template

    template = DEPLOYMENTS["train-credit_risk"]["triggers"][0]["parameters"]["reason"]
    validate_user_template(template)
    payload = dict.fromkeys(PAYLOAD_KEYS)
    payload.update(model="credit_risk", verdict="drift", reason="drift: 5 of 13 features drifted (share 0.38)")
    rendered = render_user_template_sync(template, {"event": {"payload": payload}})
    assert rendered == "drift alarm: drift: 5 of 13 features drifted (share 0.38)"
    # an event sent by hand without a reason still says where the run came from
    bare = render_user_template_sync(template, {"event": {"payload": {"model": "credit_risk"}, "id": "0b1c"}})
    assert bare == "drift alarm: no reason in the event 0b1c"


def test_the_monitoring_event_payload_carries_a_reason():
    import inspect

    from tasks.monitor import MonitoringOutcome

    source = inspect.getsource(MonitoringOutcome.event_payload)
    for key in PAYLOAD_KEYS:
        assert f'"{key}"' in source, key


def test_prefect_yaml_is_what_the_generator_writes_from_the_specs():
    assert (ROOT / "prefect.yaml").read_text() == prefect_yaml.render(BUILTIN_SPECS), (
        "prefect.yaml is stale: run `make prefect-yaml` (python scripts/prefect_yaml.py)")


def test_generator_gives_an_alerting_model_no_trigger(tmp_path):
    data = builtin_spec_dict("credit_risk")
    data["drift"]["on_drift"] = "alert"
    write_spec(tmp_path, data)
    config = yaml.safe_load(prefect_yaml.render(tmp_path))
    by_name = {d["name"]: d for d in config["deployments"]}
    assert set(by_name) == {"train-credit_risk", "monitor-credit_risk", "backtest-credit_risk", "review-due"}
    assert "triggers" not in by_name["train-credit_risk"]


def test_pull_step_sets_the_project_folder():
    assert CONFIG["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $FINML_PROJECT_DIR }}"}}]


def test_training_runs_of_one_model_never_overlap():
    for spec in SPECS:
        assert DEPLOYMENTS[f"train-{spec.name}"]["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}


def test_generator_keeps_a_teams_landing_file_as_the_monitoring_batch(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    write_spec(specs, builtin_spec_dict("credit_risk"))
    out = tmp_path / "prefect.yaml"
    out.write_text(prefect_yaml.render(specs).replace("batch: out_of_time", 'batch: "/shared/landing/credit_risk.parquet"'))
    assert prefect_yaml.current_batches(out) == {"credit_risk": "/shared/landing/credit_risk.parquet"}
    assert prefect_yaml.main(["--specs", str(specs), "--out", str(out)]) == 0
    monitor = {d["name"]: d for d in yaml.safe_load(out.read_text())["deployments"]}["monitor-credit_risk"]
    assert monitor["parameters"] == {"model_name": "credit_risk", "batch": "/shared/landing/credit_risk.parquet"}


def test_generator_names_a_bad_spec_and_leaves_prefect_yaml_alone(tmp_path, capsys):
    data = builtin_spec_dict("credit_risk")
    data["schedules"]["train"] = "0 3 31 2 *"  # 31 February: would never run
    write_spec(tmp_path, data)
    out = tmp_path / "prefect.yaml"
    out.write_text("previous\n")
    assert prefect_yaml.main(["--specs", str(tmp_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "schedules.train" in err and "never fires" in err and "Traceback" not in err
    assert out.read_text() == "previous\n"


def test_a_landing_file_with_yaml_special_characters_survives_a_rewrite(tmp_path):
    """The file is dumped by PyYAML: quotes, colons, '#' and a leading '*' need no quoting of ours."""
    specs = tmp_path / "specs"
    specs.mkdir()
    write_spec(specs, builtin_spec_dict("credit_risk"))
    odd = '/shared/landing: "q3" #1/*latest\'s.parquet'
    text = prefect_yaml.render(specs, {"credit_risk": odd})
    out = tmp_path / "prefect.yaml"
    out.write_text(text)
    assert prefect_yaml.current_batches(out) == {"credit_risk": odd}
    assert prefect_yaml.main(["--specs", str(specs), "--out", str(out)]) == 0
    assert out.read_text() == text
    config = yaml.safe_load(text)
    assert config["deployments"][0]["work_pool"] == config["definitions"]["work_pools"]["finml_pool"] == {"name": "finml-pool"}
    assert "&finml_pool" in text and "*one_training_at_a_time" in text  # shared definitions stay YAML anchors
