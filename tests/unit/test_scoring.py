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
    assert list(frame.columns) == ["rownames", "score", "points", "grade", "model", "model_version", "scored_at"]
    out = write_predictions.fn(frame, tmp_path / "scores.parquet")
    back = pd.read_parquet(out)
    assert back["rownames"].tolist() == [7, 8, 9] and back["score"].tolist() == [0.1, 0.2, 0.3]
    assert back["points"].tolist() == [546, 488, 449]  # the spec's scorecard: 600 at 19:1, 50 to double the odds
    assert back["grade"].tolist() == ["B", "C", "D"]  # the spec's rating scale: A <= 5 %, B <= 10 %, C <= 20 %, D <= 35 %
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


def _registry_with_a_version(root: Path):
    from models.registry import ModelRegistry

    def write(folder: Path, version: int) -> dict:
        pd.DataFrame({"score": [0.1, 0.9]}).to_parquet(folder / "reference.parquet", index=False)
        return {"model": "credit_risk"}

    reg = ModelRegistry(root, "credit_risk")
    reg.publish(write, promote=True, history_event={"event": "promoted"})
    return reg


def test_an_output_inside_the_registry_is_refused_also_through_a_symlink(finml_env):
    """``--out registry/credit_risk/versions/1/reference.parquet`` used to replace the version's
    reference sample (a rename in a writable folder) and exit 0; ``…/versions/1/scores.csv``
    added an unrecorded file: either way the version failed verification for good."""
    registry = finml_env["registry"]
    reg = _registry_with_a_version(registry)
    vdir = reg.version_dir(1)
    batch = finml_env["root"] / "batch.csv"
    batch.write_text("a\n1\n")
    link = finml_env["root"] / "elsewhere"
    link.symlink_to(registry)  # the registry reached through a symlink
    inside = [vdir / "reference.parquet", vdir / "scores.csv", vdir / "new" / "scores.parquet", registry / "x.csv",
              link / "credit_risk" / "versions" / "1" / "scores.csv", link / "credit_risk" / "scores.csv",
              finml_env["root"] / "reports" / ".." / "registry" / "credit_risk" / "versions" / "1" / "s.csv"]
    for out in inside:
        with pytest.raises(OutputPathError) as caught:
            check_output(out, batch)
        message = str(caught.value)
        assert message == (f"output {str(out)!r} is inside the registry {str(registry.resolve())!r} "
                           "(FINML_REGISTRY_DIR), which only finml's registry code writes; choose a path outside it")
        with pytest.raises(OutputPathError, match="is inside the registry"):
            write_predictions.fn(pd.DataFrame({"score": [0.5]}), out)  # the step refuses too
    assert reg.verify(1)["version"] == 1  # nothing was written, not even the write probe
    assert sorted(p.name for p in vdir.iterdir()) == ["metadata.json", "metadata.sha256", "reference.parquet"]
    assert check_output(finml_env["root"] / "scores.csv", batch) == "csv"  # beside the registry is fine
    other = finml_env["root"] / "registry-2" / "scores.csv"  # a name that only starts like it
    assert check_output(other, batch, registry_root=registry) == "csv"


def test_the_cli_refuses_a_score_output_inside_the_registry(finml_env):
    import shutil

    from typer.testing import CliRunner

    from flows.cli import app

    shutil.copy(BUILTIN_SPECS / "credit_risk.yaml", finml_env["specs"])
    reg = _registry_with_a_version(finml_env["registry"])
    batch = finml_env["root"] / "batch.csv"
    batch.write_text("a\n1\n")
    out = reg.version_dir(1) / "reference.parquet"
    result = CliRunner().invoke(app, ["score", "credit_risk", "--batch", str(batch), "--out", str(out)],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 1 and "is inside the registry" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert reg.verify(1)["version"] == 1


def test_a_reports_folder_inside_the_registry_is_refused(finml_env):
    from models.errors import UsageError
    from models.registry import check_writable_root
    from tasks.monitor import reports_folder

    registry = finml_env["registry"]
    _registry_with_a_version(registry)
    inside = registry / "credit_risk" / "versions" / "1"
    with pytest.raises(UsageError, match=r"FINML_REPORTS_DIR '.*versions/1' is inside the registry"):
        check_writable_root(inside, "FINML_REPORTS_DIR")
    with pytest.raises(UsageError, match=r"the monitoring reports folder \(FINML_REPORTS_DIR\) '.*' is inside the registry"):
        reports_folder(registry, "credit_risk", "2026-12-02T00:00:00+00:00", "run-1")
    assert sorted(p.name for p in registry.iterdir()) == ["credit_risk"]  # nothing was created
    assert check_writable_root(registry) == registry.resolve()  # the registry itself is its own root
    assert reports_folder(finml_env["reports"], "credit_risk", "2026-12-02T00:00:00+00:00", "run-1").is_dir()
