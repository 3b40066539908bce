"""Promotion: write a passing challenger as a new registry version, or record the rejection.

A version keeps everything a validator needs to re-read the decision (its metadata record, the
model card, the reference sample, the reports); a rejection is one history line plus evidence in
the reports folder. What is stored and why: ``docs/registry.md``.
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.compat import library_versions
from models.errors import FinmlError, UsageError
from models.estimators import predict_scores, save_pipeline
from models.records.gate import ChampionRescoring
from models.records.registry import (
    Pending,
    Promoted,
    ReferenceInfo,
    Registered,
    Rejected,
    Stopped,
    VersionMetadata,
)
from models.registry import ChampionChangedError, ModelRegistry, json_default, now_utc
from models.registry_tree import AliasNotWrittenError, refuse_inside_registry
from models.spec import ModelSpec
from tasks.gate import GateResult
from tasks.plots import baselines_plot, classification_plots, drivers_plots, regression_plots
from tasks.report import render_model_card
from tasks.rating import rating_of
from tasks.scorecard import scorecard_of
from tasks.split import SplitPlan
from tasks.step import step
from tasks.train import FittedCandidate

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def git_commit(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The project's git commit and whether the work tree had uncommitted changes."""
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        )
        return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


@dataclass
class TrainingEvidence:
    """What one training run found, gathered for the decision and the record.

    Attributes:
        spec: the model spec.
        run_id: the Prefect flow run id (None outside Prefect).
        reason: why the run happened (``manual``, ``schedule``, a drift event ...).
        started_at: ISO-8601 UTC start time.
        data: fingerprint and row counts of the loaded data and the development rows.
        validation: summary of the data validation report; validation_markdown: the report.
        split: the split's description (``SplitPlan.describe``, with the folds' periods).
        evaluation: the holdout evaluation (candidates, selected scores, baselines, deciles,
            fairness, holdout rows with a ``score`` column).
        best: the selected fitted candidate.
        champion: the champion's re-scoring on the same holdout, or None.
        gate: the gate's verdicts.
        leakage: the leakage guards' findings (single-feature screen, point in time, duplicates).
        table: the development modelling table (every row the model was developed on, in time
            order if time-ordered); plan: its split plan. The reference sample is drawn from them.
        who: who started the run (:func:`models.identity.current_user`; None: the registry's rule
            when it writes).
        register_as: an alias (``challenger``) to register the version as when the gate fails
            only champion rules (:func:`registers_as`); None: such a run is rejected.
    """

    spec: ModelSpec
    run_id: str | None
    reason: str
    started_at: str
    data: dict[str, Any]
    validation: dict[str, Any]
    split: dict[str, Any]
    evaluation: Any
    best: FittedCandidate
    champion: ChampionRescoring | None
    gate: GateResult
    table: pd.DataFrame | None = None
    plan: SplitPlan | None = None
    leakage: dict[str, Any] = field(default_factory=dict)
    validation_markdown: str = ""
    drivers: dict[str, Any] | None = None
    monotonic: dict[str, Any] | None = None
    reasons: dict[str, Any] | None = None
    market_tests: dict[str, Any] = field(default_factory=dict)
    who: str | None = None
    register_as: str | None = None

    @property
    def metrics(self) -> dict[str, float]:
        return self.evaluation.metrics


def build_metadata(ev: TrainingEvidence, promoted: bool, alias: str | None = None,
                   pending: bool = False) -> VersionMetadata:
    """The metadata record of a version (or of a rejected run's evidence, ``rejected.json``);
    ``version`` and ``files`` are added by ``ModelRegistry.publish``; ``reference`` (what
    ``reference.parquet`` holds, :func:`reference_info`) is recorded for a stored version only: a
    promoted one, one registered as ``alias`` (the challenger; ``decision.alias``), or one left
    ``pending`` an approval (``decision.pending``: true)."""
    spec = ev.spec
    evaluation = ev.evaluation
    return VersionMetadata(
        model=spec.name,
        task=spec.task,
        description=spec.description,
        created_at=now_utc(),
        run={"id": ev.run_id, "reason": ev.reason, "started_at": ev.started_at,
             **({"who": ev.who} if getattr(ev, "who", None) else {})},
        spec_sha256=spec.content_hash(),
        spec=spec.model_dump(mode="json"),
        data=ev.data,
        validation=ev.validation,
        split=ev.split,
        holdout={"rows": int(len(evaluation.holdout)), "sha256": evaluation.holdout_sha256},
        features=spec.feature_columns,
        target=spec.target_column,
        candidates=evaluation.rows,
        selected_candidate={
            "name": ev.best.spec.name, "estimator": ev.best.spec.estimator,
            "params": ev.best.spec.params, "details": ev.best.details,
            **({"selection": evaluation.selection} if getattr(evaluation, "selection", None) else {}),
        },
        primary_metric=spec.gate.primary_metric,
        metrics=evaluation.metrics,
        deciles=evaluation.deciles,
        fairness=evaluation.fairness,
        leakage=ev.leakage,
        fold_metrics=getattr(evaluation, "folds", None) or None,
        drivers=ev.drivers,
        monotonic=ev.monotonic,
        scorecard=scorecard_of(spec, evaluation, ev.best),
        rating=rating_of(spec, evaluation),
        reasons=ev.reasons,
        var_backtest=ev.market_tests.get("var_backtest"),
        model_confidence_set=ev.market_tests.get("model_confidence_set"),
        pesaran_timmermann=ev.market_tests.get("pesaran_timmermann"),
        forecast=getattr(evaluation, "forecast", None),
        reference=reference_info(ev) if promoted or alias or pending else None,
        champion_comparison=ev.champion,
        gate=ev.gate,
        decision={"promoted": promoted, "reason": ev.gate.reason(), **({"alias": alias} if alias else {}),
                  **({"pending": True} if pending else {})},
        lineage={"libraries": library_versions(), "git": git_commit()},
    )


def reference_rows(ev: TrainingEvidence) -> np.ndarray:
    """Positions (into ``ev.table``, ascending) of the rows of the reference sample: every
    development row, or a random sample of ``drift.reference_rows`` of them seeded with the
    split's ``seed`` (0 for a split without one), kept in table order (time order if
    time-ordered).

    Raises:
        UsageError: the evidence has no development table.
    """
    if ev.table is None:
        raise UsageError(f"{ev.spec.name}: the training evidence has no development table to draw the reference from")
    n, limit = len(ev.table), ev.spec.drift.reference_rows
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(_reference_seed(ev.spec)).choice(n, size=limit, replace=False))


def _reference_seed(spec: ModelSpec) -> int:
    return int(getattr(spec.split, "seed", 0))


def reference_info(ev: TrainingEvidence) -> ReferenceInfo:
    """What :func:`reference_sample` holds, for the metadata record (``reference``)."""
    rows = reference_rows(ev)
    sampled = len(rows) < len(ev.table)
    fitted = ev.plan.final_train if ev.plan is not None else None
    return ReferenceInfo(
        rows=len(rows), source="development sample", modelling_rows=len(ev.table), sampled=sampled,
        seed=_reference_seed(ev.spec) if sampled else None,
        in_sample_rows=None if fitted is None else int(np.isin(rows, fitted).sum()),
    )


def reference_sample(ev: TrainingEvidence) -> pd.DataFrame:
    """The reference sample stored with a version (``reference.parquet``), for drift monitoring.

    The development sample — every row of the modelling table the model was developed on
    (training and holdout rows), or a seeded sample of ``drift.reference_rows`` of them
    (:func:`reference_rows`) — with the table's columns and a ``score`` column from the
    *promoted* pipeline. The holdout stays the sample of the performance figures. The score is
    in-sample on the rows the pipeline was fitted on; what that means for the score PSI:
    ``docs/drift.md`` (The reference sample).

    Returns:
        A frame of ``len(reference_rows(ev))`` rows, index 0..n-1.

    Raises:
        UsageError: the evidence has no development table.
    """
    ref = ev.table.iloc[reference_rows(ev)].reset_index(drop=True)
    ref["score"] = predict_scores(ev.best.pipeline, ref[ev.spec.feature_columns], ev.spec.estimator_task)
    return ref


def _write_reports(ev: TrainingEvidence, metadata: dict[str, Any], folder: Path) -> list[str]:
    """Validation report, evaluation JSON and the plots; returns the file names written."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "validation.md").write_text(ev.validation_markdown or "")
    (folder / "evaluation.json").write_text(json.dumps(
        {k: metadata[k] for k in ("candidates", "metrics", "deciles", "fairness", "leakage", "champion_comparison",
                                  "gate", "split", "holdout")
         + tuple(k for k in ("fold_metrics", "forecast") if k in metadata)},
        indent=2, sort_keys=True, default=json_default,
    ))
    evaluation = ev.evaluation
    title = ev.spec.name
    if ev.spec.is_classifier:
        classification_plots(evaluation.y, evaluation.scores, folder, title)
    else:
        col = ev.spec.time_axis
        holdout = evaluation.holdout
        times = holdout[col].to_numpy() if col and col in holdout.columns else None
        regression_plots(times, evaluation.y, evaluation.scores, evaluation.baseline, folder, title)
        if len(evaluation.baselines) > 1 and getattr(evaluation, "forecast", None):
            baselines_plot(times, evaluation.y, evaluation.scores, evaluation.baselines, folder, title)
    if ev.drivers and not ev.drivers.get("error"):
        drivers_plots(ev.drivers, folder, title)
    return sorted(p.name for p in folder.iterdir())


def version_writer(ev: TrainingEvidence, alias: str | None = None, pending: bool = False):
    """Return the ``write(folder, version)`` callable that ``ModelRegistry.publish`` runs: a
    promoted version, (``alias``) one registered as that alias without promotion, or (``pending``)
    one waiting for an approval."""

    def write(folder: Path, version: int) -> dict[str, Any]:
        metadata = build_metadata(ev, promoted=alias is None and not pending, alias=alias, pending=pending).to_json()
        model_dir = folder / "model"
        model_dir.mkdir()
        save_pipeline(ev.best.pipeline, model_dir)
        reference_sample(ev).to_parquet(folder / "reference.parquet", index=False)
        metadata["reports"] = _write_reports(ev, metadata, folder / "reports")
        (folder / "model_card.md").write_text(render_model_card({**metadata, "version": version}))
        return metadata

    return write


@dataclass
class Decision:
    """What the run did: the version promoted, or why nothing was."""

    model: str
    promoted: bool
    version: int | None
    champion_before: int | None
    champion_after: int | None
    reason: str
    evidence_path: str | None = None
    alias: str | None = None
    """The alias the version was registered as (a challenger the gate kept out), else None."""
    pending: bool = False
    """The version passed its gate and waits for an approval (``governance.approval: required``)."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def registers_as(ev: TrainingEvidence) -> bool:
    """True when the run is to be registered as ``ev.register_as`` (the challenger): an alias was
    asked for and the gate failed champion rules only — every sanity, threshold, baseline,
    monotonic and confidence-set rule passed."""
    failed = ev.gate.failed
    return bool(getattr(ev, "register_as", None)) and bool(failed) and all(v.rule == "champion" for v in failed)


def decide(ev: TrainingEvidence, registry_root: Path, reports_root: Path) -> Decision:
    """Promote when every gate rule passed; otherwise record the rejection and change nothing else.

    A passing challenger becomes a new version and the champion. One that failed only champion
    rules, run with ``register_as`` (:func:`registers_as`), becomes a new version that the alias
    names (``registered`` commit line with ``alias`` and ``failed_rules``), the champion unchanged.
    A failing one is logged in
    ``history.jsonl`` (event ``rejected``, with the failed rules) and its evidence is written
    to ``<reports_root>/<model>/<run>/rejected.json``. When the version is committed but the
    alias file could not be written (a full disk), the decision is the promotion, and its reason
    says what could not be written (:class:`models.registry_tree.AliasNotWrittenError`).

    Raises:
        UsageError: the reports folder would lie inside the registry (nothing is written).
    """
    registry = ModelRegistry(registry_root, ev.spec.name)
    before = registry.champion()
    history = {
        "run_id": ev.run_id, "reason": ev.reason, "candidate": ev.best.spec.name,
        "primary_metric": ev.spec.gate.primary_metric, "value": ev.metrics.get(ev.spec.gate.primary_metric),
        "champion_before": before, **({"who": ev.who} if getattr(ev, "who", None) else {}),
    }
    failed = ev.gate.failed_sentences()
    reason = ev.gate.reason()
    if registers_as(ev):
        alias = ev.register_as
        try:
            version = registry.publish(version_writer(ev, alias=alias), promote=False, alias=alias,
                                       history_event=Registered(**history, failed_rules=failed))
        except AliasNotWrittenError as err:  # committed, and the alias per the history
            version, reason = err.version, f"{reason}; but {err}"
        return Decision(ev.spec.name, False, version, before, before,
                        f"not promoted: {reason}; registered as {alias} v{version}", alias=alias)
    if getattr(ev, "register_as", None) and not ev.gate.passed:
        reason = f"{reason} (not registered as {ev.register_as}: a rule other than a champion rule failed)"
    if ev.gate.passed and approval_required(ev.spec):
        return leave_pending(ev, registry, history, before)
    if ev.gate.passed:
        try:
            version = registry.publish(
                version_writer(ev), promote=True, expected_champion=ev.gate.champion_version,
                history_event=Promoted(**history, gate=ev.gate.reason()),
            )
            return Decision(ev.spec.name, True, version, before, version, ev.gate.reason())
        except AliasNotWrittenError as err:  # committed and the champion: say so, and what failed after
            return Decision(ev.spec.name, True, err.version, before, err.champion, f"{ev.gate.reason()}; but {err}")
        except ChampionChangedError as err:  # judged against a champion that is no longer one
            before = registry.champion()
            history["champion_before"] = before
            failed = [f"{err}; run again to judge this challenger against the current champion"]
            reason = f"not promoted: {failed[0]}"
    run_folder = Path(reports_root).resolve() / ev.spec.name / (ev.run_id or ev.started_at.replace(":", "-"))
    refuse_inside_registry(run_folder, registry_root, "the reports folder of a rejected run (FINML_REPORTS_DIR)")
    run_folder.mkdir(parents=True, exist_ok=True)
    metadata = build_metadata(ev, promoted=False).to_json()
    metadata["reports"] = _write_reports(ev, metadata, run_folder / "reports")
    (run_folder / "model_card.md").write_text(render_model_card(metadata))
    evidence = run_folder / "rejected.json"
    evidence.write_text(json.dumps(metadata, indent=2, sort_keys=True, default=json_default))
    registry.append_history(Rejected(**history, version=None, failed_rules=failed, evidence=str(evidence)))
    return Decision(ev.spec.name, False, None, before, before, reason, str(evidence))


def approval_required(spec: ModelSpec) -> bool:
    """True when the spec's ``governance`` makes a promotion wait for an approval
    (:attr:`models.spec.governance.GovernanceSpec.approval_rule`; no section: no approval)."""
    gov = getattr(spec, "governance", None)
    return gov is not None and gov.approval_rule == "required"


def leave_pending(ev: TrainingEvidence, registry: ModelRegistry, history: dict[str, Any],
                  before: int | None) -> Decision:
    """Write a passing version of a model that requires an approval, its commit line a ``pending``
    line (the requester is its ``who``; the spec's approvers and the expiry time,
    :func:`models.approvals.expiry_time`), the champion unchanged (docs/governance.md, Four-eyes
    promotion)."""
    from datetime import datetime

    from models.approvals import expiry_time

    gov = ev.spec.governance
    expires = expiry_time(datetime.fromisoformat(now_utc()), gov.expiry_days)
    version = registry.publish(version_writer(ev, pending=True), promote=False, history_event=Pending(
        **history, gate=ev.gate.reason(), approvers=list(gov.approvers), expires_at=expires))
    who = ", ".join(gov.approvers) if gov.approvers else "anyone but the run's starter"
    return Decision(ev.spec.name, False, version, before, before,
                    f"{ev.gate.reason()}; version {version} is pending an approval by {who} (until {expires}); "
                    f"the champion is unchanged", pending=True)


def record_stop(model: str, registry_root: Path, *, run_id: str | None, reason: str, err: BaseException,
                who: str | None = None) -> bool:
    """Record a run that bad data stopped before its gate as a ``stopped`` line of the model's
    ``history.jsonl`` (under the model's lock): the error's class and message, the run and why it
    ran. Nothing else is written and nothing is promoted.

    Best effort: the run's own error is what the caller reports, so a registry that cannot take
    the line (unwritable, damaged, a verify-only key) is logged and False returned.

    Returns:
        True when the line was written.
    """
    try:
        ModelRegistry(registry_root, model).append_history(
            Stopped(run_id=run_id, reason=reason, error=type(err).__name__, cause=str(err), who=who))
        return True
    except (FinmlError, OSError) as problem:
        log.warning("%s: the stopped run could not be recorded in the history: %s", model, problem)
        return False


# --------------------------------------------------------------------------- Prefect tasks



@step("promote-or-reject")
def promote_or_reject(
    spec: ModelSpec, *, run_id: str | None, reason: str, started_at: str, data: dict[str, Any],
    validation, plan, evaluation, fitted: list[FittedCandidate], champion: ChampionRescoring | None,
    gate: GateResult, registry_root: Path, reports_root: Path, warnings: list[str] | None = None,
    leakage: dict[str, Any] | None = None, table=None, drivers: dict[str, Any] | None = None,
    monotonic: dict[str, Any] | None = None, reasons: dict[str, Any] | None = None,
    market_tests: dict[str, Any] | None = None, who: str | None = None, register_as: str | None = None,
) -> Decision:
    """Assemble the run's evidence and promote or record the rejection (see :func:`decide`).

    ``table`` is the development modelling table the plan splits (the reference sample is drawn
    from it); ``plan`` its split plan; ``drivers`` the selected candidate's global drivers
    (:func:`tasks.drivers.global_drivers`) and ``monotonic`` the checks along the declared
    directions (:func:`tasks.monotonic.check_monotonic`), recorded in the metadata and the card;
    ``reasons`` the cut-off and reference profile of adverse-action reasons
    (:func:`tasks.reasons.adverse_action_record`); ``market_tests`` the holdout's VaR back-test, model
    confidence set and Pesaran-Timmermann test (:func:`tasks.market_tests.market_tests`); ``who``
    who started the run; ``register_as`` the alias of a run that fails only champion rules.
    """
    best = next(fc for fc in fitted if fc.spec.name == evaluation.best)
    evidence = TrainingEvidence(
        spec=spec, run_id=run_id, reason=reason, started_at=started_at, data=data,
        validation={k: v for k, v in validation.as_dict().items() if k != "outcomes"} | {"table_warnings": warnings or []},
        split=plan.describe(table, spec.time_axis, spec.time_kind), evaluation=evaluation, best=best, champion=champion, gate=gate,
        table=table, plan=plan, leakage=leakage or {}, validation_markdown=validation.to_markdown(), drivers=drivers,
        monotonic=monotonic, reasons=reasons, market_tests=market_tests or {}, who=who, register_as=register_as,
    )
    return decide(evidence, Path(registry_root), Path(reports_root))
