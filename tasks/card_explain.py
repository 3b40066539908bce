"""The model card's sections on what explains a version: how its candidate was selected, its
global drivers and its monotonic checks (rendered by :func:`tasks.report.render_model_card`;
method: docs/interpretability.md)."""

from __future__ import annotations

from typing import Any

from tasks.plots import DRIVERS_PLOTS

__all__ = ["_drivers_section", "_monotonic_section", "_selected_text"]


def _selected_text(sel: dict[str, Any], primary_metric: str) -> str:
    """"Selected: **name** (estimator) …" with the reason of the selection rule."""
    head = f"Selected: **{sel['name']}** ({sel['estimator']})"
    rule = sel.get("selection")
    if not rule:
        return f"{head} by {primary_metric} on the holdout"
    return f"{head} by the rule simplest_within_noise: {rule['reason']}"


def _monotonic_section(meta: dict[str, Any]) -> list[str]:
    """The card's Monotonic expectations section (``meta["monotonic"]``,
    :func:`tasks.monotonic.check_monotonic`); nothing when the spec declares no direction."""
    record = meta.get("monotonic")
    if not record:
        return []
    lines = ["## Monotonic expectations", "",
             "The declared direction of the score along each feature (`columns.<name>.monotone`), checked on the "
             f"holdout by partial dependence (20 quantiles, 5 %–95 %): the largest move against the direction, "
             f"tolerance {record['tolerance']:g}; a linear candidate's coefficient must have the declared sign. "
             "A gradient-boosting candidate marked *constrained* was trained under `monotonic_cst`.", "",
             "| candidate | feature | declared | largest reversal | between | coefficient | verdict |",
             "|---|---|---|---|---|---|---|"]
    for name, rec in record["candidates"].items():
        coefs = {c["feature"]: c for c in rec.get("coefficients") or []}
        label = f"{name}{' (selected)' if name == record['selected'] else ''}{' (constrained)' if rec['constrained'] else ''}"
        for c in rec["response"]:
            coef = coefs.get(c["feature"])
            ok = c["passed"] and (coef is None or coef["passed"])
            between = "" if c["reversal"] is None or c["reversal"] == 0 else f"{c['from']:.4g} → {c['to']:.4g}"
            lines.append(f"| {label} | `{c['feature']}` | {c['direction']} | "
                         f"{'n/a' if c['reversal'] is None else format(c['reversal'], '.4f')} | {between} | "
                         f"{'' if coef is None else format(coef['coefficient'], '+.4f')} | {'holds' if ok else '**reversed**'} |")
    return lines + [""]


def _drivers_section(meta: dict[str, Any], top: int = 10) -> list[str]:
    """The card's Drivers section: permutation importance table and chart, the linear model's
    coefficients, the partial-dependence plot (``meta["drivers"]``, :func:`tasks.drivers.global_drivers`)."""
    drivers = meta.get("drivers")
    lines = ["## Drivers of the selected candidate", ""]
    if not drivers:
        return lines + ["_Not measured for this version (written before drivers were recorded)._", ""]
    if drivers.get("error"):
        return lines + [f"_Could not be measured: {drivers['error']}._", ""]
    where = (f"{drivers['rows']} of the {drivers['holdout_rows']} holdout rows"
             + (" (the promoted model was refitted on them too, so the losses are in-sample)" if drivers["in_sample"] else ""))
    lines += [f"Permutation importance: the loss of {drivers['metric']} when one feature's values are shuffled, "
              f"mean and standard deviation over {drivers['repeats']} repeats (seed {drivers['seed']}), on {where}. "
              "A loss near 0, or within its spread, means the model does not rely on the feature.", "",
              "| rank | feature | loss of " + drivers["metric"] + " | std |", "|---|---|---|---|"]
    lines += [f"| {d['rank']} | `{d['feature']}` | {d['importance']:.4f} | {d['std']:.4f} |"
              for d in drivers["permutation_importance"][:top]]
    rest = len(drivers["permutation_importance"]) - top
    lines += (["", f"_{rest} more feature(s) in metadata.json (drivers)._"] if rest > 0 else []) + [""]
    reports = set(meta.get("reports") or [])
    if DRIVERS_PLOTS[0] in reports:
        lines += [f"![drivers](reports/{DRIVERS_PLOTS[0]})", ""]
    for name, coefs in (drivers.get("coefficients") or {}).items():
        which = "the selected candidate" if name == drivers.get("selected") else "a linear candidate, not selected"
        lines += [f"Coefficients of `{name}` ({which}) on its inputs (numeric inputs standardised: per standard "
                  "deviation of the training rows; categories: their indicator):", "",
                  "| rank | input | coefficient |", "|---|---|---|"]
        lines += [f"| {c['rank']} | `{c['input']}` | {c['coefficient']:+.4f} |" for c in coefs[:top]]
        lines += [""]
    if drivers.get("partial_dependence"):
        lines += ["Partial dependence (average score with the feature set to each grid value): "
                  + ", ".join(f"`{c['feature']}` {c['average_score'][0]:.4g} → {c['average_score'][-1]:.4g}"
                              for c in drivers["partial_dependence"]) + ".", ""]
        if DRIVERS_PLOTS[1] in reports:
            lines += [f"![partial dependence](reports/{DRIVERS_PLOTS[1]})", ""]
    return lines
