"""Write prefect.yaml from the model specs, or check that it matches them.

    python scripts/prefect_yaml.py            # rewrite prefect.yaml (built-in specs, or FINML_SPECS_DIR)
    python scripts/prefect_yaml.py --check    # exit 1 and show the difference if prefect.yaml is stale

Per spec: a training deployment (cron = ``schedules.train``; a trigger on ``finml.drift.detected``
for ``finml.model.<name>`` unless ``drift.on_drift`` is ``alert``) and a monitoring deployment
(cron = ``schedules.monitor``, batch ``out_of_time``, or the ``batch`` the file already gives that
deployment: a team's landing file survives a rewrite), on the work pool ``finml-pool``.
A team with its own specs folder writes its own file: ``--specs their/specs --out their/prefect.yaml``.
``make prefect-yaml`` runs it after a spec is added or a schedule changed; the unit test
tests/unit/test_prefect_yaml.py fails while the two disagree.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POOL = "finml-pool"

HEADER = f"""\
# Prefect deployments of finml, used as it is with `prefect deploy --all` (from this folder, with
# PREFECT_API_URL set and the work pool created: `make server` does all of it).
# Written by scripts/prefect_yaml.py from the specs (`make prefect-yaml` after adding a spec or
# changing a schedule); tests/unit/test_prefect_yaml.py checks that this file and the specs agree.
#
# Per model (models/specs/<model>.yaml):
#   train-model/train-<model>      cron = the spec's schedules.train; a trigger starts it when the
#                                  monitoring flow emits finml.drift.detected for finml.model.<model>,
#                                  with the alarm's summary as the run's `reason` (drift.on_drift:
#                                  retrain; a spec with on_drift: alert gets no trigger)
#   monitor-model/monitor-<model>  cron = the spec's schedules.monitor; batch `out_of_time` is the
#                                  spec's held-back later period of its built-in data: point a team's
#                                  deployment at its own landing file instead (README "Operations")
name: finml
prefect-version: 3.9.1

definitions:
  work_pools:
    finml_pool: &finml_pool
      name: {POOL}          # a process work pool: one `prefect worker start --pool {POOL}` per machine
  training_concurrency: &one_training_at_a_time
    limit: 1                    # a drift-triggered and a scheduled retraining of one model queue, never overlap
    collision_strategy: ENQUEUE

# Workers run flows from the project folder named by FINML_PROJECT_DIR: set when deploying, the
# path is stored in the deployments (`make server` sets it to this folder); unset, each worker
# resolves it from its own environment when a run starts. The registry (FINML_REGISTRY_DIR) must
# be on storage every worker sees.
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: "{{{{ $FINML_PROJECT_DIR }}}}"

deployments:
"""


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def deployments_for(spec, batch: str = "out_of_time") -> str:
    """The two deployments of one spec, as prefect.yaml text."""
    name = spec.name
    lines = [
        f"  # {'-' * 66} {name}",
        f"  - name: train-{name}",
        "    entrypoint: flows/training.py:train_model",
        f"    description: {_q(f'Scheduled retraining of {name}' + ('; also started by its drift alarm.' if spec.drift.on_drift == 'retrain' else '.'))}",
        f"    tags: [finml, {name}, training]",
        f"    parameters: {{model_name: {name}, reason: schedule}}",
        "    schedules:",
        f"      - cron: {_q(spec.schedules.train)}",
        "        timezone: UTC",
        "    concurrency_limit: *one_training_at_a_time",
        "    work_pool: *finml_pool",
    ]
    if spec.drift.on_drift == "retrain":
        lines += [
            "    triggers:",
            "      - type: event",
            "        enabled: true",
            "        match:",
            f"          prefect.resource.id: finml.model.{name}",
            "        expect:",
            "          - finml.drift.detected",
            "        parameters:",
            f"          model_name: {name}",
            '          reason: "drift alarm: {{ event.payload.reason or \'no reason in the event \' ~ event.id }}"',
        ]
    lines += [
        "",
        f"  - name: monitor-{name}",
        "    entrypoint: flows/monitoring.py:monitor_model",
        f"    description: {_q(f'Scheduled drift and performance monitoring of the {name} champion.')}",
        f"    tags: [finml, {name}, monitoring]",
        f"    parameters: {{model_name: {name}, batch: {batch if batch == 'out_of_time' else _q(batch)}}}",
        "    schedules:",
        f"      - cron: {_q(spec.schedules.monitor)}",
        "        timezone: UTC",
        "    work_pool: *finml_pool",
        "",
    ]
    return "\n".join(lines)


def render(specs_dir: Path, batches: dict[str, str] | None = None) -> str:
    """prefect.yaml for every spec in ``specs_dir``; ``batches`` maps a model to its monitoring batch."""
    from models.spec import list_specs

    batches = batches or {}
    return HEADER + "\n".join(deployments_for(s, batches.get(s.name, "out_of_time")) for s in list_specs(specs_dir))


def current_batches(path: Path) -> dict[str, str]:
    """The ``batch`` parameter each monitoring deployment of an existing prefect.yaml has."""
    import yaml

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
