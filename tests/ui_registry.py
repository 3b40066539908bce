"""A small real registry for the web front end's tests, built through the real flows.

credit_risk with its logistic candidate only: v1 trained and promoted; a second run on the same
data rejected by the champion rule; v1 monitored on the out-of-time period; the champion retired;
a spec without ``Seniority`` (and ``C: 0.5``) trained as v2 and promoted (no champion to beat);
v1 made the champion again by a rollback and monitored once more. So the history holds a
promotion, a rejection, a retirement, a second promotion and a rollback; the monitoring history
two records of v1, each with its Evidently report. About 60-90 s on a quiet 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers import builtin_spec_dict

DROPPED = "Seniority"


def _write_spec(specs: Path, spec: dict) -> None:
    (specs / "credit_risk.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def build_ui_registry(root: Path) -> dict:
    """Write the specs folder, then train, monitor, retire and roll back into ``root/registry``
    (reports under ``root/reports``). FINML_REGISTRY_DIR, FINML_REPORTS_DIR and FINML_SPECS_DIR
    must point there, inside a Prefect API. Returns the folders and the three training summaries."""
    from flows.monitoring import monitor_model
    from flows.training import train_model
    from models.registry import ModelRegistry

    spec = builtin_spec_dict("credit_risk")
    spec["candidates"] = [c for c in spec["candidates"] if c["name"] == "logistic"]
    specs = root / "specs"
    specs.mkdir(parents=True, exist_ok=True)
    _write_spec(specs, spec)
    registry = ModelRegistry(root / "registry", "credit_risk")
    summaries = [train_model("credit_risk", reason="first training for the UI tests"),
                 train_model("credit_risk", reason="retrained on the same data")]
    monitor_model("credit_risk")
    registry.retire_champion(reason="UI test: judge the next spec by its thresholds alone")
    spec["columns"][DROPPED] = {"role": "excluded", "reason": "dropped by the UI test"}
    spec["candidates"][0]["params"] = {"C": 0.5}
    _write_spec(specs, spec)
    summaries.append(train_model("credit_risk", reason="without Seniority"))
    registry.rollback(1, reason="UI test rollback to v1")
    monitor_model("credit_risk")
    return {"registry": root / "registry", "reports": root / "reports", "specs": specs, "summaries": summaries}


UI_URL = "http://ui.test:4400"
"""``FINML_UI_URL`` while the registry is built: the link artifacts must point there."""


@pytest.fixture(scope="session")
def ui_registry(tmp_path_factory, prefect_api):
    """The registry of :func:`build_ui_registry` (built with ``FINML_UI_URL`` = :data:`UI_URL`).
    The settings point at it only while it is built: the other tests of the session keep theirs."""
    root = tmp_path_factory.mktemp("ui")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FINML_REGISTRY_DIR", str(root / "registry"))
        mp.setenv("FINML_REPORTS_DIR", str(root / "reports"))
        mp.setenv("FINML_SPECS_DIR", str(root / "specs"))
        mp.setenv("FINML_UI_URL", UI_URL)
        built = build_ui_registry(root)
    return {**built, "root": root}
