"""``finml validate`` prints each validation warning once, in its report (flows/cli/validate.py,
flows/cli/common.py plain_console_logging), and reports rows of a market series out of time order
(tasks/data_check.py parse_by_column keeps the loader's note, docs/features.md)."""

from __future__ import annotations

import numpy as np
import yaml

from tests.market_returns_data import returns_frame, write_returns_case
from tests.unit.test_data_check import CASES
from tests.unit.test_validate_cli import finml


def test_each_warning_is_printed_once_in_the_report_and_not_again_on_stderr(tmp_path):
    data = yaml.safe_load((CASES / "applications.yaml").read_text())
    data["source"]["path"] = "invalid_values.csv"
    data["columns"]["rate"].update({"on_invalid": "missing", "max_null_share": 0.05})
    data["columns"]["grade"].update({"on_invalid": "missing", "max_null_share": 0.05})
    (tmp_path / "applications.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (tmp_path / "invalid_values.csv").write_bytes((CASES / "invalid_values.csv").read_bytes())
    out = finml("validate", "applications", FINML_SPECS_DIR=str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASSED with 3 warning(s)" in out.stdout
    warnings = [line.removeprefix("  - warning: ") for line in out.stdout.splitlines() if line.startswith("  - warning:")]
    assert len(warnings) == 3
    assert any(w.startswith("ExpectColumnValuesToBeInSet on column 'grade'") for w in warnings)
    for w in warnings:
        assert (out.stdout + out.stderr).count(w) == 1, w
    assert out.stderr.splitlines() == ["prefect imported: False"]


def test_rows_out_of_time_order_are_a_warning_of_the_report(tmp_path):
    frame = returns_frame(120)
    moved = frame.iloc[np.r_[0:30, 40:60, 30:40, 60:120]].reset_index(drop=True)  # day 30 after day 59: one row
    write_returns_case(tmp_path, moved, min_rows=100)
    out = finml("validate", "synthetic_vol", FINML_SPECS_DIR=str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "synthetic_vol: training data" in out.stdout and "PASSED with 1 warning(s)" in out.stdout
    day = str(frame["Date"].iloc[30].date())
    assert (f"  - warning: ExpectColumnValuesToBeIncreasing on column 'Date' (rows in time order; the 1 row(s) out "
            f"of order were sorted by 'Date'): 1 unexpected value(s) (0.8%), e.g. ['{day}']") in out.stdout
    assert "earlier than the row before them" not in out.stderr  # the logged line: Prefect's run log only
    assert out.stderr.splitlines() == ["prefect imported: False"]
    write_returns_case(tmp_path, frame, min_rows=100)  # the same rows in time order: no such warning
    out = finml("validate", "synthetic_vol", FINML_SPECS_DIR=str(tmp_path))
    assert out.returncode == 0 and "PASSED" in out.stdout, out.stdout + out.stderr
    assert "ExpectColumnValuesToBeIncreasing" not in out.stdout

