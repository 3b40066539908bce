"""The Evidently report uses the spec's PSI thresholds by default (user overrides still win), and
the HTML banner and the CLI state both drifted counts, Evidently's and the PSI decision's, with why
they can differ."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.cli import monitoring as cli_monitoring
from models.records.drift import EvidentlyColumn, EvidentlySummary
from models.records.monitoring import MonitoringRecord
from models.spec import ColumnDriftSpec, DriftSpec
from tasks.drift import compute_drift, evidently_drift_report
from tasks.evidently_report import COUNTS_DIFFER, counts_sentence, disagreement, evidently_methods

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_registry"


def test_evidently_defaults_to_its_psi_test_at_the_spec_psi_significant():
    kinds = {"income": "numeric", "home": "categorical"}
    assert evidently_methods(kinds, DriftSpec()) == {"income": ("psi", 0.25), "home": ("psi", 0.25)}
    assert evidently_methods(kinds, DriftSpec(psi_moderate=0.05, psi_significant=0.2))["home"] == ("psi", 0.2)
    # a user's methods keep Evidently's default threshold, or the user's
    own = DriftSpec(num_method="wasserstein", cat_method="jensenshannon")
    assert evidently_methods(kinds, own) == {"income": ("wasserstein", 0.1), "home": ("jensenshannon", 0.1)}
    assert evidently_methods(kinds, DriftSpec(stattest_threshold=0.3)) == {"income": ("psi", 0.3), "home": ("psi", 0.3)}
    per_column = DriftSpec(columns={"income": ColumnDriftSpec(method="ks", threshold=0.05),
                                    "home": ColumnDriftSpec(threshold=0.4)})
    assert evidently_methods(kinds, per_column) == {"income": ("ks", 0.05), "home": ("psi", 0.4)}


def _summary(drifted: dict[str, bool], method: str = "psi", threshold: float = 0.25) -> EvidentlySummary:
    return EvidentlySummary(
        ran=True, current_rows=900, reference_rows=3_500, current_sample_rows=900, reference_sample_rows=3_500,
        sample_note="", columns=list(drifted), drifted_count=sum(drifted.values()),
        per_column={c: EvidentlyColumn(method=method, threshold=threshold, score=0.3, drifted=d)
                    for c, d in drifted.items()})


def test_the_counts_sentence_gives_both_counts_and_why_they_differ():
    ev = _summary({"Expenses": True, "Debt": True, "Time": True, "score": False}, "wasserstein", 0.1)
    text = counts_sentence(0, 13, ev)
    assert text == (f"Drifted: 0 of 13 features by the PSI decision (every row); 3 of 4 columns by Evidently "
                    f"(wasserstein at 0.1, on the sample); {COUNTS_DIFFER}.")
    assert "bins each column over the reference and the batch together" in text
    assert counts_sentence(None, None, ev).startswith("Drifted: 3 of 4 columns by Evidently")
    assert counts_sentence(0, 13, EvidentlySummary(ran=False, current_rows=0, reference_rows=0, current_sample_rows=0,
                                                   reference_sample_rows=0, sample_note="")) == ""


def test_the_counts_sentence_names_the_columns_they_disagree_on():
    ev = _summary({"Time": True, "Debt": False, "Amount": False, "Age": True, "score": True})
    text = counts_sentence(1, 13, ev, ["Amount", "Age", "Income"])
    assert text == ("Drifted: 1 of 13 features by the PSI decision (every row); 3 of 5 columns by Evidently "
                    "(psi at 0.25, on the sample); they disagree on Evidently only: Time, score; "
                    f"PSI only: Amount, Income (not sent to Evidently); {COUNTS_DIFFER}.")
    assert disagreement(["Age", "Time", "score"], ev) == ""  # same columns: nothing named
    assert "disagree" not in counts_sentence(3, 13, ev, ["Age", "Time", "score"])
    assert "disagree" not in counts_sentence(1, 13, ev)  # no names given (an old caller)
    many = _summary({f"x{i}": True for i in range(8)} | {"y": False})
    assert disagreement(["y"], many) == "Evidently only: x0, x1, x2, x3, x4 and 3 more; PSI only: y"
    assert disagreement([f"x{i}" for i in range(8)] + ["y"], many) == "PSI only: y"


def test_the_banner_states_both_counts(tmp_path):
    rng = np.random.default_rng(12)
    reference = pd.DataFrame({"a": rng.normal(size=2_000), "b": rng.normal(size=2_000),
                              "home": rng.choice(np.array(["rent", "owner"], dtype=object), 2_000)})
    current = pd.DataFrame({"a": rng.normal(1.5, 1.0, 1_000), "b": rng.normal(size=1_000),
                            "home": rng.choice(np.array(["rent", "owner"], dtype=object), 1_000)})
    spec = DriftSpec()
    decision = compute_drift(reference, current, ["a", "b"], ["home"], spec)
    assert decision.drifted == ["a"] and decision.tested == 3
    html = tmp_path / "r.html"
    out = evidently_drift_report(reference, current, ["a", "b"], ["home"], spec, html,
                                 psi_drifted=len(decision.drifted), psi_judged=decision.tested,
                                 psi_names=decision.drifted)
    assert out.ran and out.drifted_count == 1 and out.per_column["a"].drifted is True
    assert {c.method for c in out.per_column.values()} == {"psi"}
    counts = re.search(r"<p id='finml-drift-counts'[^>]*>([^<]*)</p>", html.read_text(encoding="utf-8")).group(1)
    assert counts.startswith("Drifted: 1 of 3 features by the PSI decision (every row); 1 of 3 columns by "
                             "Evidently (psi at 0.25, on the sample); they can differ: Evidently tests a random sample")
    # names given that Evidently does not share: the banner names both sides
    evidently_drift_report(reference, current, ["a", "b"], ["home"], spec, html, psi_drifted=1, psi_judged=3,
                           psi_names=["b"])
    counts = re.search(r"<p id='finml-drift-counts'[^>]*>([^<]*)</p>", html.read_text(encoding="utf-8")).group(1)
    assert "on the sample); they disagree on Evidently only: a; PSI only: b; they can differ:" in counts


def test_the_cli_prints_both_counts_under_the_link(monkeypatch, capsys):
    line = (LEGACY / "credit_risk" / "monitoring.jsonl").read_text(encoding="utf-8").splitlines()[0]
    record = MonitoringRecord.model_validate(json.loads(line))
    assert record.drift.drifted == [] and record.evidently.drifted_count == 3  # the 0 of 13 against 3
    from rich.console import Console

    monkeypatch.setattr(cli_monitoring, "console", Console(width=400, force_terminal=False))
    cli_monitoring.print_monitoring(record)
    out = capsys.readouterr().out
    assert "Evidently report: reports/credit_risk/monitoring/" in out
    expected = ("Drifted: 0 of 13 features by the PSI decision (every row); 3 of 14 columns by Evidently "
                "(jensenshannon at 0.1, wasserstein at 0.1, on the sample); they disagree on Evidently only: "
                "Debt, Expenses, Income; they can differ:")
    assert expected in out
    assert out.index("Evidently report:") < out.index(expected)


@pytest.mark.parametrize("method", ["wasserstein", "psi"])
def test_user_methods_still_reach_evidently(tmp_path, method):
    rng = np.random.default_rng(13)
    reference = pd.DataFrame({"a": rng.normal(size=1_000), "b": rng.normal(size=1_000)})
    current = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    out = evidently_drift_report(reference, current, ["a", "b"], [], DriftSpec(num_method=method), tmp_path / "r.html")
    assert {c.method for c in out.per_column.values()} == {method}
    assert {c.threshold for c in out.per_column.values()} == {0.1 if method == "wasserstein" else 0.25}
