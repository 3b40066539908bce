"""The data of the web front end's pages (:mod:`flows.ui`), as plain functions of the registry and
reports folders: the models list, a model (versions, timeline, monitoring trends, Evidently
reports), a version (model card, gate, lineage, spec, files verified) and two versions compared.

Every value is read through the registry's own readers (``ModelRegistry.history_events``,
``monitoring_records``, ``version_metadata`` / ``read_verified``, which check the hashes first), as
``finml registry`` does; nothing here writes, takes the lock or creates a file. A model folder
that cannot be read gives a page (or a row) with its ``error``, not an exception.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from models.errors import RegistryError
from models.ledger import backtest_history
from models.metrics import METRICS
from models.records.monitoring import MonitoringRecord
from models.registry import ModelRegistry, list_models
from tasks.inventory import champion_facts, monitoring_facts
from tasks.ui_charts import Chart, Series, line_chart, timeline
from tasks.ui_files import relative_report, render_card

READ_ERRORS = (RegistryError, OSError, ValueError, KeyError, TypeError)
"""What a damaged model folder raises through the readers (a bad line, a missing file, a hash
mismatch, a record of the wrong shape); shown on its page."""

TRAINING_EVENTS = ("promoted", "rejected", "stopped", "registered", "pending")
"""History events that end a training run."""

WHO_KEYS = ("who", "approved_by")
"""Keys of a history line that name who acted (``who``: :mod:`models.identity`; ``approved_by``:
an approval given while the run waited); the first present is shown."""


def who(event) -> str | None:
    """Who acted on a history line, when the line names it (see :data:`WHO_KEYS`), else None."""
    data = event.model_dump() if hasattr(event, "model_dump") else dict(event)
    for key in WHO_KEYS:
        value = data.get(key)
        if value:
            return value if isinstance(value, str) else str(value)
    return None


def event_details(event) -> str:
    """One line on a history event: the gate's sentence or failed rules, a stopped run's error and
    cause, and the reason, as ``finml registry history`` shows them."""
    details = getattr(event, "gate", None) or "; ".join(getattr(event, "failed_rules", None) or []) or ""
    alias = getattr(event, "alias", None) or getattr(event, "from_alias", None)
    if alias:  # alias moves, a challenger registered or rolled forward (as finml registry history says)
        where = {"registered": "as {}", "rolled_back": "from {}"}.get(event.event, "{}").format(alias)
        previous = getattr(event, "previous", None)
        details = where + (f" (was v{previous})" if previous else "") + (f"; {details}" if details else "")
    if event.event == "stopped":
        details = f"{getattr(event, 'error', None) or 'error'}: {getattr(event, 'cause', '')}"
    if event.event == "rolled_back" and not alias:
        details = f"champion v{getattr(event, 'previous_champion', None) or '-'} → v{event.version}"
    if event.reason and event.reason not in details:
        details = f"{details} (reason: {event.reason})" if details else event.reason
    return details


def open_alarms(lines: list[dict[str, Any]], history: list[dict[str, Any]], champion: int | None) -> list[dict[str, Any]]:
    """The champion's open alarms, as the inventory counts them (:func:`tasks.inventory.monitoring_facts`,
    docs/inventory.md): its monitoring runs since it became champion with an alarm verdict, after its
    last run without one; a new champion (a promotion, a rollback) starts with none. ``lines``:
    ``monitoring.jsonl`` as stored, ``history``: ``history.jsonl`` as stored. Returns
    ``[{ts, verdict, summary}]`` of those runs, oldest first."""
    if champion is None:
        return []
    count = monitoring_facts(lines, champion, champion_facts(history, champion).since)[2]
    mine = [r for r in lines if r.get("version") == champion]
    return [{"ts": r.get("ts"), "verdict": r.get("verdict"), "summary": r.get("summary")}
            for r in (mine[-count:] if count else [])]


def _value(meta, metric: str | None = None) -> float | None:
    return meta.metrics.get(metric or meta.primary_metric)


def models_overview(registry_dir: Path) -> list[dict[str, Any]]:
    """One row per model folder: ``model``, ``champion``, ``primary_metric``, ``value`` (the
    champion's, on its holdout), ``monitoring`` (the last record: ``ts``, ``version``, ``verdict``),
    ``alarms`` (:func:`open_alarms`), ``training`` (the last training outcome: ``event``, ``ts``,
    ``version``, ``promoted``), ``versions`` (count); ``error`` holds why a damaged model could not
    be read (its other fields then None)."""
    rows = []
    for name in list_models(registry_dir):
        row: dict[str, Any] = {"model": name, "error": None, "champion": None, "primary_metric": None, "value": None,
                               "monitoring": None, "alarms": [], "training": None, "versions": 0}
        try:
            reg = ModelRegistry(registry_dir, name)
            champion = reg.champion()
            row["champion"] = champion
            row["versions"] = len(reg.list_versions())
            if champion is not None:
                meta = reg.version_metadata(champion)  # hash-checked: no figure from a damaged file
                row["primary_metric"], row["value"] = meta.primary_metric, _value(meta)
            records = reg.monitoring_records()
            if records:
                last = records[-1]
                row["monitoring"] = {"ts": last.ts, "version": last.version, "verdict": last.verdict}
            row["alarms"] = open_alarms(reg.monitoring_history(), reg.history(), champion)
            trainings = [e for e in reg.history_events() if e.event in TRAINING_EVENTS]
            if trainings:
                t = trainings[-1]
                row["training"] = {"event": t.event, "ts": t.ts, "version": t.version, "promoted": t.event == "promoted"}
        except READ_ERRORS as err:
            row["error"] = f"{type(err).__name__}: {err}"
        rows.append(row)
    return rows


def _monitoring_rows(records: list[MonitoringRecord], reports_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        html = r.evidently.html_path if r.evidently is not None else None
        rows.append({"ts": r.ts, "version": r.version, "verdict": r.verdict, "severity": r.severity,
                     "summary": r.summary, "batch": r.batch.label, "rows": r.batch.rows,
                     "score_psi": r.drift.score_psi, "drifted": r.drift.drifted,
                     "evidently": relative_report(html, reports_dir) if html else None,
                     "evidently_path": html,
                     "evidently_note": None if html else (r.evidently.reason or r.evidently.error
                                                          if r.evidently is not None else "no Evidently report")})
    return rows


def _psi_limits(reg: ModelRegistry, version: int | None) -> tuple[float, float]:
    """``(psi_moderate, psi_significant)`` of the spec stored with ``version`` (defaults 0.1, 0.25:
    ``models.spec.monitoring.DriftSpec``)."""
    from models.spec.monitoring import DriftSpec

    drift = {}
    if version is not None:
        try:
            drift = (reg.version_metadata(version).spec.get("drift") or {})
        except READ_ERRORS:
            drift = {}
    defaults = DriftSpec()
    return (float(drift.get("psi_moderate", defaults.psi_moderate)),
            float(drift.get("psi_significant", defaults.psi_significant)))


def _x_label(r: MonitoringRecord) -> str:
    return f"{r.ts[5:16].replace('T', ' ')} v{r.version}"


def psi_chart(records: list[MonitoringRecord], limits: tuple[float, float]) -> str:
    """PSI of the score and of each feature over the monitoring runs (oldest first), with the
    ``psi_moderate`` and ``psi_significant`` lines; inline SVG (:func:`tasks.ui_charts.line_chart`)."""
    features: list[str] = []
    for r in records:
        features += [f for f in r.drift.features if f not in features]
    series = [Series("score", [r.drift.score_psi for r in records])]
    series += [Series(f, [r.drift.features[f].psi if f in r.drift.features else None for r in records], dashed=True)
               for f in features]
    return line_chart(Chart("PSI against the version's reference sample", [_x_label(r) for r in records], series,
                            references=[("moderate", limits[0]), ("significant", limits[1])], y_label="PSI"))


def performance_chart(records: list[MonitoringRecord], metric: str) -> str:
    """``metric`` on each labelled batch against the version's holdout value, with the accepted
    band between the holdout value and the breach bound (holdout minus ``drift.performance_tolerance``
    when higher is better, plus it when lower is better: :class:`models.records.monitoring.MetricChange`)."""
    labelled = [r for r in records if metric in r.performance.changes]
    info = METRICS.get(metric)
    higher = True if info is None or info.higher_is_better is None else info.higher_is_better
    band: list[tuple[float, float] | None] = []
    for r in labelled:
        c = r.performance.changes[metric]
        if c.holdout is None or c.tolerance is None:
            band.append(None)
        else:
            bound = c.holdout - c.tolerance if higher else c.holdout + c.tolerance
            band.append((min(bound, c.holdout), max(bound, c.holdout)))
    series = [Series(f"{metric} on the batch", [r.performance.changes[metric].batch for r in labelled]),
              Series(f"{metric} on the holdout", [r.performance.changes[metric].holdout for r in labelled], dashed=True)]
    return line_chart(Chart(f"{metric} against the holdout, with its tolerance", [_x_label(r) for r in labelled],
                            series, band=band, band_label="within tolerance", y_label=metric))


def model_page(registry_dir: Path, reports_dir: Path, model: str) -> dict[str, Any]:
    """A model: ``versions`` (per version ``version``, ``value`` of the primary metric, ``gate``
    (passed), ``created``, ``reason``, ``who``, ``champion``, ``promoted``, ``error``), ``champion``,
    ``timeline`` (every history event: ``ts``, ``event``, ``version``, ``run``, ``who``, ``details``,
    ``evidence`` (a rejected run's folder, relative to the reports folder)), ``monitoring`` rows with
    their Evidently report links, ``charts`` (SVG text), ``backtests`` (``ts``, ``champion``,
    ``matured``, ``report`` relative to the reports folder, read by ``models.ledger.backtest_history``). ``error``: why the model cannot be read
    (parts read before it are kept)."""
    page: dict[str, Any] = {"model": model, "error": None, "versions": [], "timeline": [], "monitoring": [],
                            "charts": {}, "champion": None, "primary_metric": None, "version_errors": [],
                            "backtests": []}
    try:
        reg = ModelRegistry(registry_dir, model)
        if not reg.exists():
            raise RegistryError(f"no model named {model!r} in the registry")
        page["champion"] = champion = reg.champion()
        events = reg.history_events()
        commits = {e.version: e for e in events if e.event in ("promoted", "registered", "pending")  # pending: four eyes
                   and e.version is not None}
        for n in reg.list_versions():
            row: dict[str, Any] = {"version": n, "champion": n == champion, "error": None,
                                   "promoted": getattr(commits.get(n), "event", None) == "promoted",
                                   "who": who(commits[n]) if n in commits else None}
            try:
                meta = reg.version_metadata(n)
                page["primary_metric"] = page["primary_metric"] or meta.primary_metric
                row.update(metric=meta.primary_metric, value=_value(meta), gate=meta.gate.passed,
                           created=meta.created_at, reason=meta.run.reason, candidate=meta.selected_candidate.name)
            except READ_ERRORS as err:
                row["error"] = f"{type(err).__name__}: {err}"
                page["version_errors"].append(n)
            page["versions"].append(row)
        for e in events:
            evidence = getattr(e, "evidence", None)
            page["timeline"].append({"ts": e.ts, "event": e.event, "version": e.version, "run": e.run_id,
                                     "who": who(e), "details": event_details(e),
                                     "evidence": relative_report(str(Path(evidence).parent), reports_dir)
                                     if evidence else None})
        page["charts"]["timeline"] = timeline(page["timeline"])
        page["backtests"] = [{"ts": b.get("ts"), "champion": b.get("champion"), "matured": b.get("matured"),
                              "report": relative_report(b.get("report"), reports_dir), "path": b.get("report")}
                             for b in backtest_history(registry_dir, model)]
        records = reg.monitoring_records()
        page["monitoring"] = _monitoring_rows(records, reports_dir)
        if records:
            page["charts"]["psi"] = psi_chart(records, _psi_limits(reg, records[-1].version))
            metric = page["primary_metric"] or next(iter(records[-1].performance.changes), None)
            if metric and any(metric in r.performance.changes for r in records):
                page["charts"]["performance"] = performance_chart(records, metric)
    except READ_ERRORS as err:
        page["error"] = f"{type(err).__name__}: {err}"
    return page


def version_page(registry_dir: Path, model: str, version: int, base_url: str) -> dict[str, Any]:
    """A version, after the hash check of every file (``ModelRegistry.read_verified``): ``meta``
    (the typed metadata), ``card_html`` (the model card rendered from the checked bytes, its plots
    pointing under ``base_url``), ``gate`` (the verdicts), ``lineage``, ``spec_yaml``, ``files``
    (``[{path, sha256, verified}]``), ``aliases`` naming it. On a failed check ``error`` says which
    file and nothing from the version is shown (``files`` lists the recorded hashes, unverified);
    ``integrity`` is True when the check itself failed (a changed, missing or unlisted file, a
    signature), False when the version could not be checked (a damaged history, metadata that cannot
    be read). ``aliases_error``: why ``aliases.json`` (or the history it is read with) cannot be
    read; the version is still shown, checked, without its aliases."""
    from models.integrity import IntegrityError
    from models.records.registry import VersionMetadata, read_record

    page: dict[str, Any] = {"model": model, "version": version, "error": None, "integrity": False, "files": [],
                            "meta": None, "aliases": [], "aliases_error": None}
    reg = ModelRegistry(registry_dir, model)
    try:
        page["aliases"] = [a for a, v in reg.aliases().items() if v == version]
    except READ_ERRORS as err:
        page["aliases_error"] = f"{type(err).__name__}: {err}"
    try:
        verified = reg.read_verified(version, keep=["model_card.md"])
        meta = read_record(VersionMetadata.from_stored, verified.metadata, reg.version_dir(version) / "metadata.json")
    except READ_ERRORS as err:
        page["error"], page["integrity"] = f"{type(err).__name__}: {err}", isinstance(err, IntegrityError)
        try:  # what was recorded, marked as not verified
            page["files"] = [{"path": p, "sha256": h, "verified": False}
                             for p, h in sorted((reg.read_metadata(version).get("files") or {}).items())]
        except READ_ERRORS:
            pass
        return page
    card = verified.files.get("model_card.md")
    page.update(
        meta=meta,
        card_html=render_card(card.decode("utf-8", errors="replace"), base_url) if card else None,
        gate=meta.gate.verdicts, gate_passed=meta.gate.passed,
        lineage={"data": meta.data, "holdout": meta.holdout, "spec_sha256": meta.spec_sha256,
                 "git": meta.lineage.git, "libraries": meta.lineage.libraries, "run": meta.run},
        spec_yaml=yaml.safe_dump(meta.spec, sort_keys=False, allow_unicode=True),
        files=[{"path": p, "sha256": h, "verified": True} for p, h in sorted((meta.files or {}).items())],
    )
    return page


def compare_page(registry_dir: Path, model: str, a: int, b: int) -> dict[str, Any]:
    """Versions ``a`` and ``b`` side by side (both hash-checked): ``metrics`` rows ``{metric, a, b,
    diff (b - a)}``, ``gate`` rows ``{rule, metric, a, b}`` (PASS/FAIL/n/a, or "-" when the rule is
    not in that version), ``added`` / ``removed`` features (in ``b`` against ``a``), ``spec_diff``
    (a unified diff of the two specs as YAML, :mod:`difflib`)."""
    page: dict[str, Any] = {"model": model, "a": a, "b": b, "error": None}
    reg = ModelRegistry(registry_dir, model)
    try:
        ma, mb = reg.version_metadata(a), reg.version_metadata(b)
    except READ_ERRORS as err:
        page["error"] = f"{type(err).__name__}: {err}"
        return page
    names = list(ma.metrics) + [m for m in mb.metrics if m not in ma.metrics]
    page["metrics"] = [{"metric": m, "a": ma.metrics.get(m), "b": mb.metrics.get(m),
                        "diff": (mb.metrics[m] - ma.metrics[m]) if isinstance(ma.metrics.get(m), (int, float))
                        and isinstance(mb.metrics.get(m), (int, float)) else None} for m in names]

    def verdicts(meta) -> dict[tuple[str, str], str]:
        return {(v.rule, v.metric): ("PASS" if v.passed else "FAIL") if v.applicable else "n/a"
                for v in meta.gate.verdicts}

    va, vb = verdicts(ma), verdicts(mb)
    keys = list(va) + [k for k in vb if k not in va]
    page["gate"] = [{"rule": r, "metric": m, "a": va.get((r, m), "-"), "b": vb.get((r, m), "-")} for r, m in keys]
    page["gate_passed"] = (ma.gate.passed, mb.gate.passed)
    page["primary"] = (ma.primary_metric, mb.primary_metric)
    page["added"] = [f for f in mb.features if f not in ma.features]
    page["removed"] = [f for f in ma.features if f not in mb.features]
    page["spec_sha256"] = (ma.spec_sha256, mb.spec_sha256)
    dump = [yaml.safe_dump(m.spec, sort_keys=True, allow_unicode=True).splitlines() for m in (ma, mb)]
    page["spec_diff"] = list(difflib.unified_diff(dump[0], dump[1], f"v{a} spec", f"v{b} spec", lineterm=""))
    return page
