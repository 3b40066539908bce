"""The back-test report: the tables of :func:`tasks.backtest.backtest_record` (and of the outcomes
join and the vintages), each written as a CSV file and together as one self-contained HTML page
(Jinja2, no external resources) and a markdown summary for the Prefect artifact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from models.files import write_text_atomic


@dataclass
class ReportTable:
    """One table of the report: its file name (``<name>.csv``), title, a sentence saying what it
    shows and how it is computed, and its rows."""

    name: str
    title: str
    note: str
    frame: pd.DataFrame


def _grade_rows(version: dict[str, Any]) -> pd.DataFrame:
    rating = version["rating"]
    rows = [*rating["grades"], rating["portfolio"]]
    return pd.DataFrame([{"version": version["version"], "grade": r["grade"], "obligors": r["obligors"],
                          "share": r["share"], "defaults": r["defaults"], "mean_pd": r["mean_pd"],
                          "default_rate": r["default_rate"], "jeffreys_p": r["jeffreys_p"],
                          "jeffreys_light": r["jeffreys_light"], "binomial_p": r["binomial_p"],
                          "binomial_light": r["binomial_light"]} for r in rows])


def report_tables(record: dict[str, Any], join: dict[str, Any] | None) -> list[ReportTable]:
    """The report's tables, in reading order: the outcomes join (when this run received a file),
    grades with Jeffreys and binomial p-values per version, the AUC test, concentration, the
    migration matrix, vintages (realised beside the estimate from the scores), the long-run
    default rate and the segments. Tables without data are left out."""
    policy = record["policy"]["text"]
    tables: list[ReportTable] = []
    if join is not None:
        counts = {"received": join["received"], "joined": join["joined"], **join["left_out"]}
        tables.append(ReportTable("outcomes_join", "Outcomes received",
                                  "Every outcome of the file is joined to the ledger row its record had at its date, "
                                  "or counted under the reason it was not (never dropped silently).",
                                  pd.DataFrame([{"count": k, "outcomes": v} for k, v in counts.items()])))
    graded = [v for v in record["versions"] if v["rating"]]
    if graded:
        tables.append(ReportTable(
            "grades", "Rating grades of matured outcomes",
            "Per grade: one-sided Jeffreys test, p = Beta(D + 1/2, N - D + 1/2) CDF at the grade's mean PD, and the "
            "one-sided exact binomial test, p = P(X >= D), X ~ Binomial(N, mean PD) (ECB instructions for reporting "
            f"the validation results of internal models, 2019). The ECB sets no threshold; colours: {policy}.",
            pd.concat([_grade_rows(v) for v in graded], ignore_index=True)))
    auc_rows = [{"version": v["version"], **v["auc_test"]} for v in record["versions"]]
    if auc_rows:
        tables.append(ReportTable(
            "auc_test", "Discriminatory power: current against initial validation",
            "S = (AUC_init - AUC_curr) / s, s the DeLong standard error of the current AUC, p = 1 - Phi(S) "
            "(one-sided: small when the AUC fell); AUC_init is the version's holdout AUC.", pd.DataFrame(auc_rows)))
    conc = [{"version": v["version"], "when": when, "grades": c["grades"], "cv": c["cv"],
             "herfindahl_index": c["herfindahl_index"]}
            for v in graded for when, c in (("at validation", v["concentration_initial"]),
                                            ("matured outcomes", v["rating"]["concentration"])) if c]
    if conc:
        tables.append(ReportTable("concentration", "Concentration of obligors over grades",
                                  "Herfindahl index HI = 1 + ln((CV^2 + 1) / K) / ln K (0: spread evenly, 1: one "
                                  "grade), at the version's validation and on its matured outcomes.", pd.DataFrame(conc)))
    m = record.get("migration")
    if m:
        matrix = pd.DataFrame(m["counts"], columns=m["grades"])
        matrix.insert(0, f"grade on {m['first_date']}", m["grades"])
        tables.append(ReportTable(
            "migration", f"Migration of grades from {m['first_date']} to {m['second_date']}",
            f"{m['obligors']} ids scored on both dates (rows: grade at the first). Matrix-weighted bandwidths: upper "
            f"{_num(m['upper_mwb'])} (moves to worse grades), lower {_num(m['lower_mwb'])} (to better).", matrix))
    vt = record["vintages"]
    if vt["rows"]:
        tables.append(ReportTable(
            "vintages", "Vintages: realised performance beside the estimate from the scores",
            "Realised figures use matured outcomes only (AUC with its DeLong 95 % interval; Jeffreys and binomial "
            "tests of the matured portfolio at its mean PD). The estimate uses every scored row of the vintage: "
            + vt["estimate"]["warning"], pd.DataFrame(vt["rows"])))
    lr = vt.get("long_run")
    if lr:
        frame = pd.DataFrame(lr["vintages"])
        frame.loc[len(frame)] = {"vintage": "long-run average", "obligors": int(frame["obligors"].sum()),
                                 "defaults": int(frame["defaults"].sum()), "default_rate": lr["long_run_default_rate"],
                                 "mean_pd": lr["long_run_mean_pd"]}
        tables.append(ReportTable("long_run", "Long-run average default rate",
                                  "Arithmetic mean of the vintages' default rates against the mean of their mean PDs "
                                  "(EBA/GL/2017/16 paragraphs 80-81).", frame))
    segments = record.get("segments")
    if segments:
        columns = ["version", "column", "segment", "current_rows", "current_share", "too_small", "labelled_rows",
                   "events", "event_rate", "mean_predicted", "roc_auc", "brier", "jeffreys_p_value",
                   "jeffreys_light", "note"]
        frame = pd.DataFrame(segments).reindex(columns=columns).rename(
            columns={"current_rows": "rows", "current_share": "share", "mean_predicted": "mean_pd",
                     "jeffreys_p_value": "jeffreys_p"})
        tables.append(ReportTable(
            "segments", "Segments of the matured outcomes",
            "Per version and value (or band) of the spec's segments: event rate against mean PD, ROC AUC, Brier score "
            f"and the one-sided Jeffreys test (colours: {policy}). A segment with fewer rows than "
            "fairness.min_group_rows is too small to judge and has no figures. Measured, not a verdict.", frame))
    return tables


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.red{background:#f8d0d0}.amber{background:#fbe7c0}.green{background:#d6f0d6}p.note{color:#555;max-width:60rem}
</style></head><body>
<h1>{{ title }}</h1>
{% for line in summary %}<p>{{ line }}</p>{% endfor %}
{% for t in tables %}<h2 id="{{ t.name }}">{{ t.title }}</h2><p class="note">{{ t.note }}</p>
<table><thead><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for row in t.rows %}<tr>{% for cell in row %}<td{% if cell[1] %} class="{{ cell[1] }}"{% endif %}>{{ cell[0] }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
<p><a href="{{ t.name }}.csv">{{ t.name }}.csv</a></p>{% endfor %}
</body></html>
"""


def _cells(frame: pd.DataFrame) -> list[list[tuple[str, str | None]]]:
    """Rows of (text, css class): a ``*_p`` value takes the colour of its ``*_light`` column."""
    rows = []
    for rec in frame.to_dict("records"):
        row = []
        for col, value in rec.items():
            light = rec.get(col[:-2] + "_light") if col.endswith("_p") else rec.get("light") if col == "p_value" else None
            row.append((_num(value), light if light in ("red", "amber", "green") else None))
        rows.append(row)
    return rows


def render_html(title: str, summary: list[str], tables: list[ReportTable]) -> str:
    """The report as one HTML page (autoescaped; no script, no external resource)."""
    from jinja2 import Environment

    env = Environment(autoescape=True)
    views = [{"name": t.name, "title": t.title, "note": t.note, "columns": [str(c) for c in t.frame.columns],
              "rows": _cells(t.frame)} for t in tables]
    return env.from_string(_PAGE).render(title=title, summary=summary, tables=views)


def write_report(folder: Path, title: str, summary: list[str], tables: list[ReportTable]) -> Path:
    """Write ``backtest.html`` and one ``<name>.csv`` per table into ``folder`` (atomically each).
    Returns the HTML file's path."""
    for t in tables:
        write_text_atomic(folder / f"{t.name}.csv", t.frame.to_csv(index=False), durable=False)
    page = folder / "backtest.html"
    write_text_atomic(page, render_html(title, summary, tables), durable=False)
    return page


def report_markdown(title: str, summary: list[str], tables: list[ReportTable], link: str) -> str:
    """The Prefect artifact: the summary, every table as markdown, and the link to the HTML page."""
    lines = [f"# {title}", "", *summary, "", f"Report: {link}", ""]
    for t in tables:
        cols = [str(c) for c in t.frame.columns]
        lines += [f"## {t.title}", "", t.note, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_num(v) for v in rec.values()) + " |" for rec in t.frame.to_dict("records")]
        lines.append("")
    return "\n".join(lines)
