"""A registry with real credit_risk versions for the serving tests, trained in-process without Prefect.

The training flow's steps are called through ``.fn`` in the order :func:`flows.training.train_model`
wires them (load, validate, table, split, fit, evaluate, champion re-scoring, drivers, monotonic checks,
reasons, gate, promote), so each version is what ``finml train`` writes: metadata with the stored spec,
the reasons record, the reference sample, the hashes. Scikit-learn candidates only: about 5 s a version.
"""

from __future__ import annotations

from pathlib import Path

from models.spec import ModelSpec, parse_spec
from tests.helpers import builtin_spec_dict


def _fn(step):
    return getattr(step, "fn", step)


def credit_spec(candidate: str, **params) -> ModelSpec:
    """The built-in credit_risk spec with one candidate (``logistic`` or ``gradient_boosting``, its
    ``params`` updated by ``params``) and only its threshold rules (so that every run promotes)."""
    data = builtin_spec_dict("credit_risk")
    data["candidates"] = [c for c in data["candidates"] if c["name"] == candidate]
    data["candidates"][0]["params"] = {**data["candidates"][0].get("params", {}), **params}
    data["gate"]["rules"] = [r for r in data["gate"]["rules"] if r["kind"] == "threshold"]
    return parse_spec(data, origin="credit_risk.yaml")


def train_version(spec: ModelSpec, registry_root: Path, reports_root: Path) -> int:
    """Train and promote one version of ``spec``; returns its number (fails when the gate refuses)."""
    from tasks.drivers import explain_selected
    from tasks.evaluate import evaluate_fitted, rescore_champion
    from tasks.gate import apply_gate
    from tasks.load import load_data, prepare_table
    from tasks.market_tests import market_tests
    from tasks.monotonic import check_monotonic
    from tasks.promote import promote_or_reject
    from tasks.reasons import adverse_action_record
    from tasks.split import plan_split
    from tasks.train import fit_candidate
    from tasks.validate import check_modelling_table, validate_data

    loaded = _fn(load_data)(spec)
    validation = _fn(validate_data)(spec, loaded.frame, engine="fast")
    data = _fn(prepare_table)(spec, loaded)
    warnings = _fn(check_modelling_table)(data.table, spec)
    plan = _fn(plan_split)(data.table, spec)
    fitted = [_fn(fit_candidate)(spec, c, data.table, plan) for c in spec.candidates]
    evaluation = _fn(evaluate_fitted)(spec, data.table, plan, fitted)
    champion = _fn(rescore_champion)(spec, registry_root, data.table, plan, evaluation.holdout_sha256)
    drivers = _fn(explain_selected)(spec, evaluation, fitted, plan)
    monotonic = _fn(check_monotonic)(spec, evaluation, fitted)
    reasons = _fn(adverse_action_record)(spec, evaluation, fitted)
    market = _fn(market_tests)(spec, evaluation, fitted, data.development)
    gate = _fn(apply_gate)(spec, evaluation, champion, monotonic, mcs=market["model_confidence_set"])
    decision = _fn(promote_or_reject)(
        spec, run_id=None, reason="serving test", started_at="2026-12-04T00:00:00+00:00", data=data.info,
        validation=validation, plan=plan, evaluation=evaluation, fitted=fitted, champion=champion, gate=gate,
        registry_root=registry_root, reports_root=reports_root, warnings=warnings, leakage={}, table=data.table,
        drivers=drivers, monotonic=monotonic, reasons=reasons, market_tests=market)
    assert decision.promoted, decision.reason
    return decision.version


def train_two_versions(registry_root: Path, reports_root: Path) -> None:
    """credit_risk v1 (logistic, C = 1) and v2 (logistic, C = 0.2: other scores; the champion)."""
    assert train_version(credit_spec("logistic"), registry_root, reports_root) == 1
    assert train_version(credit_spec("logistic", C=0.2), registry_root, reports_root) == 2
