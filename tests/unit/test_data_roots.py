"""A spec's file source reads only below the data roots (issue 13 §2): ``/proc/self/environ`` was
read as a CSV. ``FINML_DATA_ROOTS`` (``os.pathsep``-separated); default: the spec file's folder."""

from __future__ import annotations

import os

import pytest

from models.spec import load_spec_file, parse_spec
from tasks.load import DataSourceError, load_source
from tests.helpers import builtin_spec_dict, write_spec


@pytest.fixture(autouse=True)
def no_roots_setting(monkeypatch):
    monkeypatch.delenv("FINML_DATA_ROOTS", raising=False)


def _spec_in(folder, path: str, **source):
    folder.mkdir(parents=True, exist_ok=True)
    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "file", "path": path, **source}
    return load_spec_file(write_spec(folder, data))


def _csv(path, text="a,b\n1,2\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_spec_cannot_read_proc_self_environ(tmp_path):
    spec = _spec_in(tmp_path / "specs", "/proc/self/environ", format="csv")
    with pytest.raises(DataSourceError) as info:
        load_source(spec)
    message = str(info.value)
    assert message.startswith("/proc/self/environ")
    assert f"below the data roots ['{(tmp_path / 'specs').resolve()}']" in message
    assert "FINML_DATA_ROOTS is unset: the spec file's folder" in message


def test_the_spec_folder_and_below_are_readable_and_a_path_climbing_out_is_not(tmp_path):
    _csv(tmp_path / "specs" / "data" / "loans.csv")
    _csv(tmp_path / "elsewhere" / "loans.csv")
    assert load_source(_spec_in(tmp_path / "specs", "data/loans.csv")).to_dict("list") == {"a": [1], "b": [2]}
    with pytest.raises(DataSourceError, match=r"specs/../elsewhere/loans.csv \(resolves to .*/elsewhere/loans.csv\): "
                       "a file source may only read below"):
        load_source(_spec_in(tmp_path / "specs", "../elsewhere/loans.csv"))
    with pytest.raises(DataSourceError, match=r"elsewhere/loans.csv: a file source may only read below"):
        load_source(_spec_in(tmp_path / "specs", str(tmp_path / "elsewhere" / "loans.csv")))


def test_a_symlink_in_the_spec_folder_is_judged_by_its_target(tmp_path):
    secret = _csv(tmp_path / "private" / "secret.csv", "token\nabc\n")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "innocent.csv").symlink_to(secret)
    with pytest.raises(DataSourceError, match=r"innocent.csv \(resolves to .*private/secret.csv\): a file source"):
        load_source(_spec_in(tmp_path / "specs", "innocent.csv"))
    inner = _csv(tmp_path / "specs" / "real" / "loans.csv")
    (tmp_path / "specs" / "alias.csv").symlink_to(inner)  # a link staying inside the roots is fine
    assert len(load_source(_spec_in(tmp_path / "specs", "alias.csv"))) == 1


def test_finml_data_roots_replaces_the_spec_folder(tmp_path, monkeypatch):
    _csv(tmp_path / "lake" / "b" / "loans.csv")
    _csv(tmp_path / "specs" / "local.csv")
    roots = os.pathsep.join([str(tmp_path / "lake" / "a"), str(tmp_path / "lake" / "b")])
    monkeypatch.setenv("FINML_DATA_ROOTS", roots)
    assert len(load_source(_spec_in(tmp_path / "specs", str(tmp_path / "lake" / "b" / "loans.csv")))) == 1
    with pytest.raises(DataSourceError, match=rf"local.csv: .* \(FINML_DATA_ROOTS={roots}\)"):
        load_source(_spec_in(tmp_path / "specs", "local.csv"))


def test_a_spec_built_in_code_reads_below_the_current_folder(tmp_path, monkeypatch):
    outside = _csv(tmp_path / "data" / "loans.csv")
    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "file", "path": str(outside)}
    spec = parse_spec(data)
    monkeypatch.chdir(tmp_path / "data")
    assert len(load_source(spec)) == 1
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    with pytest.raises(DataSourceError, match="the current folder, for a spec built in code"):
        load_source(spec)


def test_a_batch_file_given_on_the_command_line_is_not_a_spec_source(tmp_path):
    """``finml score BATCH`` / ``finml monitor --batch``: the operator's own argument, read anywhere."""
    from tasks.monitor import load_batch

    batch = _csv(tmp_path / "incoming" / "batch.csv", "Status,Seniority\ngood,3\n")
    spec = _spec_in(tmp_path / "specs", "unused.csv")
    frame, label = load_batch.fn(spec, str(batch))
    assert label == str(batch) and len(frame) == 1
