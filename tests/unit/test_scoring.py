"""Scoring helpers: output checks, stamped predictions, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.spec import find_spec
from tasks.scoring import (
    OutputPathError,
    check_output,
    predictions_frame,
    write_predictions,
)
from tests.helpers import BUILTIN_SPECS


def test_check_output_names_the_problem_before_any_work(tmp_path):
    batch = tmp_path / "batch.csv"
    batch.write_text("a\n1\n")
    assert check_output(tmp_path / "new" / "deeper" / "scores.parquet", batch) == "parquet"
    assert check_output(tmp_path / "scores.CSV", batch) == "csv"
    with pytest.raises(OutputPathError, match="scores.txt"):
        check_output(tmp_path / "scores.txt", batch)
    with pytest.raises(OutputPathError, match="is the batch being scored"):
        check_output(batch, batch)
    with pytest.raises(OutputPathError, match=r"batch.csv' is a file, not a folder"):
        check_output(batch / "x.parquet", batch)
    folder = tmp_path / "dir.parquet"
    folder.mkdir()
    with pytest.raises(OutputPathError, match="is a directory"):
        check_output(folder, batch)


def test_predictions_carry_the_stamps_and_write_atomically(tmp_path, monkeypatch):
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    table = pd.DataFrame({"rownames": [7, 8, 9], "Age": [30, 40, 50]})
    frame = predictions_frame(spec, table, np.array([0.1, 0.2, 0.3]), 4, "2026-11-29T18:00:00+00:00")
    assert list(frame.columns) == ["rownames", "score", "model", "model_version", "scored_at"]
    out = write_predictions.fn(frame, tmp_path / "scores.parquet")
    back = pd.read_parquet(out)
    assert back["rownames"].tolist() == [7, 8, 9] and back["score"].tolist() == [0.1, 0.2, 0.3]
    assert (back["model"] == "credit_risk").all() and (back["model_version"] == 4).all()
    assert str(back["scored_at"].dtype).startswith("datetime64") and str(back["scored_at"].dt.tz) == "UTC"
    assert (back["scored_at"] == pd.Timestamp("2026-11-29T18:00:00+00:00")).all()
    csv = pd.read_csv(write_predictions.fn(frame, tmp_path / "scores.csv"))
    assert (csv["scored_at"] == "2026-11-29 18:00:00+00:00").all()

    # the write goes to a hidden temporary file beside the output; a failed write (or an
    # interruption: SystemExit) leaves neither a temporary file nor a changed output
    seen = []

    def failing_to_csv(self, path, **kwargs):
        seen.append(path)
        path.write_text("half")
        raise OSError("disk full")

    previous = (tmp_path / "scores.csv")
    previous.write_text("old,content\n")
    monkeypatch.setattr(pd.DataFrame, "to_csv", failing_to_csv)
    with pytest.raises(OSError, match="disk full"):
        write_predictions.fn(frame, previous)
    assert len(seen) == 1 and seen[0].name.startswith(".scores.csv.") and not seen[0].exists()
    assert previous.read_text() == "old,content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "scores.parquet"]

    def interrupted_to_csv(self, path, **kwargs):
        seen.append(path)
        path.write_text("half")
        raise SystemExit(130)  # what finml's Ctrl-C handler raises

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupted_to_csv)
    with pytest.raises(SystemExit):
        write_predictions.fn(frame, previous)
    assert len(seen) == 2 and not seen[1].exists() and previous.read_text() == "old,content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "scores.parquet"]


def test_a_version_needing_a_feature_the_edited_spec_dropped_says_so():
    """The batch has Price, but the spec no longer declares it, so the table lacks it: the message
    used to blame the batch (and came with two tracebacks)."""
    from models.spec import find_spec, parse_spec
    from tasks.scoring import FeatureMismatchError, LoadedVersion, score_with_version
    from tests.helpers import BUILTIN_SPECS, builtin_spec_dict

    full = find_spec("credit_risk", BUILTIN_SPECS)
    data = builtin_spec_dict("credit_risk")
    del data["columns"]["Price"]
    edited = parse_spec(data)
    loaded = LoadedVersion(pipeline=None, version=3, reference=pd.DataFrame(),
                           metadata={"features": full.feature_columns, "spec_sha256": full.content_hash()})
    table = pd.DataFrame({c: [1.0] for c in edited.feature_columns})
    with pytest.raises(FeatureMismatchError, match=r"credit_risk version 3 was trained with feature\(s\) \['Price'\] "
                                                   r"that the current spec no longer declares \(spec changed since"):
        score_with_version.fn(edited, loaded, table)
    with pytest.raises(FeatureMismatchError, match=r"the batch lacks feature column\(s\) \['Age'\] that version 3"):
        score_with_version.fn(full, loaded, pd.DataFrame({c: [1.0] for c in full.feature_columns if c != "Age"}))


def test_an_output_folder_that_refuses_writes_is_caught_before_any_work(tmp_path):
    """As root, os.access says yes everywhere, also on /proc and /sys: a probe file decides."""
    import os

    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux /proc")
    with pytest.raises(OutputPathError, match=r"output '/proc/scores.csv': (cannot write|no permission to write) in '/proc'"):
        check_output("/proc/scores.csv")
    assert check_output(tmp_path / "scores.csv") == "csv" and os.listdir(tmp_path) == []  # the probe is gone


def test_a_registry_or_reports_root_that_is_a_file_is_named(tmp_path):
    from models.registry import RegistryError, check_writable_root

    (tmp_path / "reports").write_text("")
    with pytest.raises(RegistryError, match=r"FINML_REPORTS_DIR=.*reports: is a file, not a folder"):
        check_writable_root(tmp_path / "reports", "FINML_REPORTS_DIR")
