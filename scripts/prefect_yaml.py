"""Write prefect.yaml from the model specs, or check that it matches them.

    python scripts/prefect_yaml.py            # rewrite prefect.yaml (built-in specs, or FINML_SPECS_DIR)
    python scripts/prefect_yaml.py --check    # exit 1 and show the difference if prefect.yaml is stale

Per spec a training deployment (with a drift trigger unless ``drift.on_drift`` and
``drift.on_feature_drift`` are both ``alert``; it matches only events whose resource label
``finml.action`` is ``retrain``), a monitoring deployment and, for binary classification, a monthly
back-test deployment, and one weekly ``review-due`` deployment for every model, built as dictionaries and written
with PyYAML; a team's monitoring ``batch`` survives a rewrite. ``make prefect-yaml`` after adding a spec; what each entry means:
``docs/operations.md`` ("prefect.yaml").
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POOL = "finml-pool"

HEADER = """\
# Prefect deployments of finml, used as it is with `prefect deploy --all` (from this folder, with
# PREFECT_API_URL set and the work pool created: `make server` does all of it).
# Written by scripts/prefect_yaml.py from the specs (`make prefect-yaml` after adding a spec or
# changing a schedule); tests/unit/test_prefect_yaml.py checks that this file and the specs agree.
# What each deployment does, the drift trigger and the FINML_PROJECT_DIR pull step:
# docs/operations.md ("prefect.yaml").
"""

POOL_DEF = {"name": POOL}
"""The process work pool (one ``prefect worker start --pool finml-pool`` per machine)."""
ONE_TRAINING_AT_A_TIME = {"limit": 1, "collision_strategy": "ENQUEUE"}
"""A drift-triggered and a scheduled retraining of one model queue, never overlap."""
ANCHORS = {id(POOL_DEF): "finml_pool", id(ONE_TRAINING_AT_A_TIME): "one_training_at_a_time"}
ACTION_LABEL = "finml.action"
"""The resource label of a monitoring event saying what the spec does on it (``flows.monitoring``)."""
DRIFT_REASON = "drift alarm: {{ event.payload.reason or 'no reason in the event ' ~ event.id }}"


class _Dumper(yaml.SafeDumper):
    """Safe YAML with our anchor names for the shared definitions, and no line folding."""

    def generate_anchor(self, node):
        for key, represented in self.represented_objects.items():
            if represented is node and key in ANCHORS:
                return ANCHORS[key]
        return super().generate_anchor(node)


def _schedule(cron: str) -> list[dict]:
    return [{"cron": cron, "timezone": "UTC"}]


def deployments_for(spec, batch: str = "out_of_time") -> list[dict]:
    """The deployments of one spec: training (cron; a drift trigger when ``on_drift`` or
    ``on_feature_drift`` is ``retrain``, matching the model's ``finml.drift.detected`` events whose
    ``finml.action`` label is ``retrain``), monitoring (cron, ``batch``) and, for binary
    classification, the monthly back-test (cron, ``labels``: ``backtest.landing``)."""
    name = spec.name
    retrain = "retrain" in (spec.drift.on_drift, spec.drift.on_feature_drift)
    train = {
        "name": f"train-{name}",
        "entrypoint": "flows/training.py:train_model",
        "description": f"Scheduled retraining of {name}" + ("; also started by its drift alarm." if retrain else "."),
        "tags": ["finml", name, "training"],
        "parameters": {"model_name": name, "reason": "schedule"},
        "schedules": _schedule(spec.schedules.train),
        "concurrency_limit": ONE_TRAINING_AT_A_TIME,
        "work_pool": POOL_DEF,
    }
    if retrain:
        train["triggers"] = [{
            "type": "event", "enabled": True,
            "match": {"prefect.resource.id": f"finml.model.{name}", ACTION_LABEL: "retrain"},
            "expect": ["finml.drift.detected"], "parameters": {"model_name": name, "reason": DRIFT_REASON},
        }]
    monitor = {
        "name": f"monitor-{name}",
        "entrypoint": "flows/monitoring.py:monitor_model",
        "description": f"Scheduled drift and performance monitoring of the {name} champion.",
        "tags": ["finml", name, "monitoring"],
        "parameters": {"model_name": name, "batch": batch},
        "schedules": _schedule(spec.schedules.monitor),
        "work_pool": POOL_DEF,
    }
    if spec.task != "binary_classification":
        return [train, monitor]
    backtest = {
        "name": f"backtest-{name}",
        "entrypoint": "flows/backtest.py:backtest_model",
        "description": (f"Monthly back-test of {name}: joins the outcomes landing file (the spec's backtest.landing, "
                        "else the labels parameter) to the scoring ledger, then the supervisors' tests and the report."),
        "tags": ["finml", name, "backtest"],
        "parameters": {"model_name": name, "labels": spec.backtest.landing},
        "schedules": _schedule(spec.schedules.backtest),
        "work_pool": POOL_DEF,
    }
    return [train, monitor, backtest]


REVIEW_CRON = "0 8 * * 1"
"""When the ``review-due`` deployment runs: Mondays 08:00 UTC (a model overdue for review is
reminded once a week until its review is recorded)."""


def review_deployment() -> dict:
    """The one ``review-due`` deployment (all models): ``finml.review.due`` for each model whose
    periodic review is due or overdue (docs/inventory.md)."""
    return {
        "name": "review-due",
        "entrypoint": "flows/review.py:review_due_flow",
        "description": "Weekly: a finml.review.due event for every model whose periodic review (governance.review_every) "
                       "is due or overdue.",
        "tags": ["finml", "governance"],
        "parameters": {},
        "schedules": _schedule(REVIEW_CRON),
        "work_pool": POOL_DEF,
    }


def config_for(specs: list, batches: dict[str, str] | None = None) -> dict:
    """prefect.yaml as a dictionary; ``batches`` maps a model to its monitoring batch."""
    batches = batches or {}
    return {
        "name": "finml",
        "prefect-version": "3.9.1",
        "definitions": {"work_pools": {"finml_pool": POOL_DEF}, "training_concurrency": ONE_TRAINING_AT_A_TIME},
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $FINML_PROJECT_DIR }}"}}],
        "deployments": [*(d for s in specs for d in deployments_for(s, batches.get(s.name, "out_of_time"))),
                        review_deployment()],
    }


def render(specs_dir: Path, batches: dict[str, str] | None = None) -> str:
    """prefect.yaml for every spec in ``specs_dir``; ``batches`` maps a model to its monitoring batch."""
    from models.spec import list_specs

    body = yaml.dump(config_for(list_specs(specs_dir), batches), Dumper=_Dumper, sort_keys=False,
                     allow_unicode=True, width=1000)
    return HEADER + body


def current_batches(path: Path) -> dict[str, str]:
    """The ``batch`` parameter each monitoring deployment of an existing prefect.yaml has."""
    if not path.exists():
        return {}
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        return {}
    found = {}
    for dep in config.get("deployments") or []:
        params = dep.get("parameters") or {}
        if dep.get("entrypoint") == "flows/monitoring.py:monitor_model" and params.get("model_name") and params.get("batch"):
            found[params["model_name"]] = str(params["batch"])
    return found


def main(argv: list[str] | None = None) -> int:
    """Rewrite prefect.yaml from the specs (``--specs``, else ``FINML_SPECS_DIR``); with ``--check`` only
    compare. Returns the exit code: 0 written or current, 1 stale (``--check``), 2 a bad spec."""
    from models.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if prefect.yaml differs")
    parser.add_argument("--specs", type=Path, default=None, help="specs folder (default: FINML_SPECS_DIR or built-in)")
    parser.add_argument("--out", type=Path, default=ROOT / "prefect.yaml")
    args = parser.parse_args(argv)
    from models.spec import SpecError

    try:
        text = render(args.specs or get_settings().specs_dir, current_batches(args.out))
    except SpecError as err:  # a bad spec: its file and field, not a traceback; prefect.yaml is left as it was
        print(f"error: {err}\n{args.out} was not changed", file=sys.stderr)
        return 2
    current = args.out.read_text() if args.out.exists() else ""
    if args.check:
        if current == text:
            print(f"{args.out} matches the specs")
            return 0
        sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                                   str(args.out), "from the specs"))
        print(f"\n{args.out} is stale: run python scripts/prefect_yaml.py (make prefect-yaml)")
        return 1
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
