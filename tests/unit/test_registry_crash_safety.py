"""Data loss without an attacker (issue 13, section 1): read-only version folders, a full disk at
the alias write, readers that follow the history, and the removal of uncommitted version folders."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from models.registry import AliasNotWrittenError, IntegrityError, ModelRegistry, RegistryError
from models.registry_tree import remove_tree

ROOT = Path(__file__).resolve().parents[2]


def writer(payload: str):
    def write(folder: Path, version: int) -> dict:
        (folder / "model").mkdir()
        (folder / "model" / "weights.bin").write_bytes(payload.encode() * 100)
        (folder / "reports").mkdir()
        (folder / "reports" / "evaluation.json").write_text("{}")
        (folder / "model_card.md").write_text(f"# card v{version}\n")
        return {"model": "m", "note": payload}

    return write


def publish(reg: ModelRegistry, payload: str, promote: bool = True) -> int:
    return reg.publish(writer(payload), promote=promote, history_event={"event": "promoted" if promote else "registered"})


def _disk_full_for(monkeypatch, name: str) -> None:
    """``os.replace`` onto a file called ``name`` fails as on a full disk; everything else works."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


# --------------------------------------------------------------------------- read-only version folders


def test_a_version_folder_and_its_sub_folders_are_read_only(tmp_path):
    """Mode bits, checked directly: tests may run as root, which ignores them."""
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    vdir = reg.version_dir(1)
    folders = [vdir, vdir / "model", vdir / "reports"]
    assert all(stat.S_IMODE(d.stat().st_mode) == 0o555 for d in folders)
    files = [p for p in vdir.rglob("*") if p.is_file()]
    assert len(files) == 5 and all(stat.S_IMODE(p.stat().st_mode) == 0o444 for p in files)
    assert stat.S_IMODE(reg.versions_dir.stat().st_mode) & stat.S_IWUSR  # the parent stays writable
    assert reg.verify(1)["note"] == "a"


def _try_writes_as_unprivileged(vdir: Path, drop: Path) -> list[str]:
    """Rename a file into the version folder and its sub-folder, and create one there; return the
    attempts that succeeded (none should)."""
    succeeded = []
    for i, target in enumerate([vdir / "reference.parquet", vdir / "scores.csv", vdir / "model" / "x.pkl"]):
        source = drop / f"f{i}"
        source.write_bytes(b"planted")
        try:
            os.rename(source, target)
            succeeded.append(f"rename onto {target.relative_to(vdir)}")
        except PermissionError:
            pass
    try:
        (vdir / "new.txt").write_text("x")
        succeeded.append("create new.txt")
    except PermissionError:
        pass
    return succeeded


def _publish_then_try_writes(base: Path) -> list[str]:
    """As the current user: publish a version, then try to write into it (see below)."""
    reg = ModelRegistry(base / "registry", "m")
    publish(reg, "a")
    drop = base / "drop"  # a folder of the same user on the same file system
    drop.mkdir()
    return _try_writes_as_unprivileged(reg.version_dir(1), drop)


def test_a_version_folder_cannot_be_renamed_into():
    """The owner of the registry (the user scoring runs as) cannot rename a file into a version
    folder. The super-user ignores directory permissions, and the tests here may run as root:
    then the registry is written and attacked by a forked child that has dropped to an
    unprivileged user (uid/gid 65534), so that it owns the folders as a worker would. The refusal
    in code of outputs inside the registry (which also protects a root process) is tested in
    tests/unit/test_scoring.py."""
    base = Path(tempfile.mkdtemp(prefix="finml-ro-"))  # not under pytest's 0o700 root folder
    try:
        if os.geteuid() != 0:
            assert _publish_then_try_writes(base) == []
        else:
            base.chmod(0o777)
            pid = os.fork()
            if pid == 0:  # the child: drop privileges, try, report by exit code, never return to pytest
                code = 3
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    code = 1 if _publish_then_try_writes(base) else 0
                except BaseException:
                    code = 2
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0, "the registry's owner wrote into a version folder"
        reg = ModelRegistry(base / "registry", "m")
        assert reg.verify(1)["note"] == "a"
        assert sorted(p.name for p in reg.version_dir(1).iterdir()) == ["metadata.json", "metadata.sha256", "model",
                                                                        "model_card.md", "reports"]
    finally:
        remove_tree(base)


def test_remove_tree_deletes_a_read_only_version_folder(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    remove_tree(reg.version_dir(1))
    assert not (reg.versions_dir / "1").exists()


# --------------------------------------------------------------------------- a full disk at the alias write


def test_a_full_disk_at_the_alias_write_reports_the_committed_version(tmp_path, monkeypatch):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    _disk_full_for(monkeypatch, "aliases.json")
    with pytest.raises(AliasNotWrittenError) as caught:
        publish(reg, "b")
    err = caught.value
    assert err.version == 2 and err.champion == 2 and isinstance(err, RegistryError)
    assert str(err).startswith("m: version 2 is committed and the champion is version 2 per the history, which "
                               "every reader follows; the alias file ")
    assert "aliases.json could not be written (No space left on device)" in str(err)
    monkeypatch.undo()
    assert json.loads(reg.aliases_path.read_text()) == {"champion": 1}  # the file is stale ...
    assert reg.champion() == 2 and reg.list_versions() == [1, 2]  # ... readers are not
    assert reg.verify(2)["note"] == "b" and reg.resolve(None) == 2
    reg.append_monitoring({"verdict": "stable"})  # a monitoring append does not touch the aliases
    assert json.loads(reg.aliases_path.read_text()) == {"champion": 1}
    assert publish(reg, "c", promote=False) == 3  # the next writer repairs the file
    assert json.loads(reg.aliases_path.read_text()) == {"champion": 2}


def test_the_promotion_decision_says_the_version_is_committed_after_a_full_disk(tmp_path, monkeypatch):
    import tasks.promote as promote

    gate = SimpleNamespace(passed=True, champion_version=None, failed=[], reason=lambda: "all rules passed",
                           failed_sentences=lambda: [])
    ev = SimpleNamespace(spec=SimpleNamespace(name="m", gate=SimpleNamespace(primary_metric="roc_auc")),
                         run_id="r1", reason="manual", best=SimpleNamespace(spec=SimpleNamespace(name="logreg")),
                         metrics={"roc_auc": 0.8}, gate=gate, started_at="2026-12-02T00:00:00+00:00")
    monkeypatch.setattr(promote, "version_writer", lambda ev: writer("a"))
    _disk_full_for(monkeypatch, "aliases.json")
    decision = promote.decide(ev, tmp_path / "registry", tmp_path / "reports")
    monkeypatch.undo()
    assert decision.promoted and decision.version == 1 and decision.champion_after == 1
    assert decision.reason.startswith("all rules passed; but m: version 1 is committed and the champion is version 1")
    assert "No space left on device" in decision.reason
    assert ModelRegistry(tmp_path / "registry", "m").champion() == 1
    assert not (tmp_path / "reports").exists()  # no rejection evidence for a committed version


def test_an_interrupted_rollback_is_in_effect_for_readers_who_do_not_write(tmp_path, monkeypatch):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    publish(reg, "b")
    _disk_full_for(monkeypatch, "aliases.json")
    with pytest.raises(AliasNotWrittenError, match=r"^m: the rollback to version 1 is committed and the champion is "
                                                   r"version 1 per the history"):
        reg.rollback(1, reason="v2 misbehaves")
    monkeypatch.undo()
    before = reg.aliases_path.stat()
    assert reg.champion() == 1 and reg.aliases() == {"champion": 1}  # readers: the rollback is in effect
    assert reg.resolve(None) == 1 and reg.verify(1)["note"] == "a"
    after = reg.aliases_path.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)  # a reader never writes
    assert reg.stored_aliases() == {"champion": 2}
    with pytest.raises(RegistryError, match="already the champion"):
        reg.rollback(1, reason="again")  # and for writers too


def test_an_interrupted_retirement_is_in_effect_for_readers(tmp_path, monkeypatch):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    _disk_full_for(monkeypatch, "aliases.json")
    with pytest.raises(AliasNotWrittenError, match=r"the retirement of version 1 is committed and there is no champion"):
        reg.retire_champion(reason="feature dropped")
    monkeypatch.undo()
    assert reg.champion() is None and reg.stored_aliases() == {"champion": 1}
    with pytest.raises(RegistryError, match="has no champion yet"):
        reg.resolve(None)


def test_the_cli_rollback_says_what_is_committed_after_a_full_disk(finml_env, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    reg = ModelRegistry(finml_env["registry"], "credit_risk")
    publish(reg, "a")
    publish(reg, "b")
    _disk_full_for(monkeypatch, "aliases.json")
    result = CliRunner().invoke(app, ["registry", "rollback", "credit_risk", "--to", "1"], env={"COLUMNS": "400"})
    monkeypatch.undo()
    assert "the rollback to version 1 is committed and the champion is version 1" in result.output, result.output
    assert "Traceback" not in result.output and reg.champion() == 1


# --------------------------------------------------------------------------- uncommitted version folders


def _crash_before_the_history_line(tmp_path: Path) -> None:
    """A real process that dies (os._exit) after the rename, before its history line."""
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        import models.registry as registry
        registry._append_jsonl = lambda path, record: os._exit(3)  # power cut at the commit point
        def write(folder, version):
            (folder / "model").mkdir()
            (folder / "model" / "weights.bin").write_bytes(b"x")
            return {{}}
        registry.ModelRegistry(Path({str(tmp_path)!r}), "m").publish(write, promote=True,
                                                                     history_event={{"event": "promoted"}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr


def test_gc_removes_uncommitted_version_folders_and_never_a_committed_one(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    publish(reg, "b", promote=False)
    _crash_before_the_history_line(tmp_path)
    orphan = reg.versions_dir / "3"
    assert orphan.is_dir() and stat.S_IMODE(orphan.stat().st_mode) == 0o555  # renamed into place, read-only
    assert reg.list_versions() == [1, 2] and reg.champion() == 1  # not listed: never committed
    card = reg.version_dir(2) / "model_card.md"  # a committed but damaged version stays (verify reports it)
    card.chmod(0o644)
    card.write_text("changed")
    (reg.versions_dir / ".tmp-9-deadbeef").mkdir()
    removed = reg.gc()
    assert removed == [reg.versions_dir / ".tmp-9-deadbeef", orphan]
    assert not orphan.exists() and sorted(p.name for p in reg.versions_dir.iterdir()) == ["1", "2"]
    with pytest.raises(IntegrityError, match="model_card.md: SHA-256 differs"):
        reg.verify(2)
    last = reg.history()[-1]
    assert last["event"] == "uncommitted_removed" and last["version"] == 3 and "never committed" in last["reason"]
    assert [e.event for e in reg.history_events()][-1] == "uncommitted_removed"
    assert reg.gc() == []  # nothing left to remove
    assert publish(reg, "c") == 4  # the removed folder's number is not reused
    assert reg.list_versions() == [1, 2, 4] and reg.champion() == 4


def test_the_next_publish_removes_an_uncommitted_folder(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    _crash_before_the_history_line(tmp_path)
    assert (reg.versions_dir / "2").is_dir() and reg.list_versions() == [1]
    assert publish(reg, "b") == 3
    assert not (reg.versions_dir / "2").exists() and reg.list_versions() == [1, 3]
    assert [e["event"] for e in reg.history()] == ["promoted", "uncommitted_removed", "promoted"]


def test_gc_removes_the_folder_of_a_first_publication_that_crashed(tmp_path):
    _crash_before_the_history_line(tmp_path)
    reg = ModelRegistry(tmp_path, "m")
    assert reg.history_path.is_file() and reg.history() == []  # created before the rename
    assert reg.list_versions() == [] and reg.gc() == [reg.versions_dir / "1"]


def test_gc_removes_nothing_when_the_history_is_missing(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    publish(reg, "b")
    reg.history_path.unlink()  # every version would look uncommitted
    with pytest.raises(RegistryError, match=r"history.jsonl is missing but .* holds version folders \[1, 2\]: every "
                                            r"one would look uncommitted; restore the history"):
        reg.gc()
    assert sorted(p.name for p in reg.versions_dir.iterdir()) == ["1", "2"]
    assert publish(reg, "c") == 3  # a publish keeps every folder then (with a warning)
    assert sorted(p.name for p in reg.versions_dir.iterdir()) == ["1", "2", "3"]
    with pytest.raises(RegistryError, match="no model named 'x'"):
        ModelRegistry(tmp_path, "x").gc()


def test_registry_list_does_not_count_an_uncommitted_folder(finml_env):
    from typer.testing import CliRunner

    from flows.cli import app

    reg = ModelRegistry(finml_env["registry"], "m")
    publish(reg, "a", promote=False)  # no champion: the table shows no metadata figures
    _crash_before_the_history_line(finml_env["registry"])
    assert (reg.versions_dir / "2").is_dir()
    result = CliRunner().invoke(app, ["registry", "list"], env={"COLUMNS": "300"})
    row = next(line for line in result.output.splitlines() if "│ m " in line)
    assert "│ 1 " in row and "1, 2" not in row, result.output


def test_a_rejected_run_never_writes_its_evidence_inside_the_registry(tmp_path):
    import tasks.promote as promote
    from models.errors import UsageError

    gate = SimpleNamespace(passed=False, champion_version=None, failed=[SimpleNamespace(sentence="auc too low")],
                           reason=lambda: "not promoted: auc too low", failed_sentences=lambda: ["auc too low"])
    ev = SimpleNamespace(spec=SimpleNamespace(name="m", gate=SimpleNamespace(primary_metric="roc_auc")),
                         run_id="r1", reason="manual", best=SimpleNamespace(spec=SimpleNamespace(name="logreg")),
                         metrics={"roc_auc": 0.5}, gate=gate, started_at="2026-12-02T00:00:00+00:00")
    registry = tmp_path / "registry"
    with pytest.raises(UsageError, match=r"the reports folder of a rejected run \(FINML_REPORTS_DIR\) '.*registry/"
                                         r"reports/m/r1' is inside the registry"):
        promote.decide(ev, registry, registry / "reports")
    assert not (registry / "reports").exists() and ModelRegistry(registry, "m").history() == []


def test_the_cli_registry_gc_removes_an_uncommitted_folder_and_keeps_the_committed_one(finml_env):
    from typer.testing import CliRunner

    from flows.cli import app

    reg = ModelRegistry(finml_env["registry"], "m")
    publish(reg, "a")
    _crash_before_the_history_line(finml_env["registry"])
    assert (reg.versions_dir / "2").is_dir()
    result = CliRunner().invoke(app, ["registry", "gc", "m"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "m: removed 2 (never committed)" in result.output
    assert not (reg.versions_dir / "2").exists() and reg.verify(1)["note"] == "a"
    again = CliRunner().invoke(app, ["registry", "gc"], env={"COLUMNS": "300"})
    assert again.exit_code == 0 and "m: nothing to remove" in again.output, again.output
    unknown = CliRunner().invoke(app, ["registry", "gc", "nope"], env={"COLUMNS": "300"})
    assert unknown.exit_code == 1 and "no model named 'nope'" in unknown.output


def test_registry_gc_of_every_model_names_a_damaged_one_and_still_collects_the_others(finml_env):
    from typer.testing import CliRunner

    from flows.cli import app

    (finml_env["registry"] / "a_lost_history" / "versions" / "1").mkdir(parents=True)  # versions, no history.jsonl
    reg = ModelRegistry(finml_env["registry"], "m")
    publish(reg, "a")
    _crash_before_the_history_line(finml_env["registry"])
    result = CliRunner().invoke(app, ["registry", "gc"], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "a_lost_history" in result.output and "m: removed 2 (never committed)" in result.output
    assert not (reg.versions_dir / "2").exists()
    assert (finml_env["registry"] / "a_lost_history" / "versions" / "1").is_dir()  # nothing removed without a history
