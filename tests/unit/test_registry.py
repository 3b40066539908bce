"""The registry directory: atomic immutable versions, hashes, aliases, history, rollback."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from models.records.monitoring import MONITORING_SCHEMA_VERSION
from models.registry import IntegrityError, ModelRegistry, RegistryError

ROOT = Path(__file__).resolve().parents[2]


def writer(payload: str):
    def write(folder: Path, version: int) -> dict:
        (folder / "model").mkdir()
        (folder / "model" / "weights.bin").write_bytes(payload.encode() * 100)
        (folder / "model_card.md").write_text(f"# card v{version}\n")
        return {"model": "m", "metrics": {"roc_auc": 0.8}, "note": payload}

    return write


def publish(reg: ModelRegistry, payload: str, promote: bool = True) -> int:
    return reg.publish(writer(payload), promote=promote, history_event={"event": "promoted" if promote else "registered"})


def test_publish_writes_a_complete_hashed_read_only_version(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    assert publish(reg, "a") == 1
    vdir = reg.version_dir(1)
    meta = json.loads((vdir / "metadata.json").read_text())
    assert meta["version"] == 1 and meta["note"] == "a"
    assert set(meta["files"]) == {"model/weights.bin", "model_card.md"}
    assert (vdir / "model_card.md").read_text() == "# card v1\n"
    assert oct((vdir / "model" / "weights.bin").stat().st_mode & 0o777) == "0o444"
    assert reg.champion() == 1
    assert [e["event"] for e in reg.history()] == ["promoted"]
    assert reg.verify(1)["version"] == 1


def test_tampering_is_detected_before_loading(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    target = reg.version_dir(1) / "model" / "weights.bin"
    target.chmod(0o644)
    target.write_bytes(b"evil")
    with pytest.raises(IntegrityError, match="model/weights.bin: SHA-256 differs"):
        reg.verify(1)
    with pytest.raises(IntegrityError):
        reg.load_model(1)  # never unpickles a changed file


def test_an_unrecorded_file_is_detected(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    reg.version_dir(1).chmod(0o755)  # version folders are read-only: a tamperer changes that first
    (reg.version_dir(1) / "extra.pkl").write_bytes(b"x")
    with pytest.raises(IntegrityError, match="extra.pkl: not recorded"):
        reg.verify(1)


def test_a_failing_writer_leaves_nothing_visible(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")

    def broken(folder: Path, version: int) -> dict:
        (folder / "half.bin").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        reg.publish(broken, promote=True, history_event={"event": "promoted"})
    assert reg.list_versions() == [1]
    assert reg.champion() == 1
    assert not [p for p in reg.versions_dir.iterdir() if p.name.startswith(".tmp")]
    assert len(reg.history()) == 1


def test_a_hard_crash_mid_write_leaves_the_old_state(tmp_path):
    """Kill the writing process (os._exit) half-way through a version: nothing half-written shows."""
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from models.registry import ModelRegistry
        def write(folder, version):
            (folder / "model").mkdir()
            (folder / "model" / "weights.bin").write_bytes(b"x" * 1000)
            os._exit(3)  # power cut before the version is complete
        ModelRegistry(Path({str(tmp_path)!r}), "m").publish(write, promote=True, history_event={{"event": "promoted"}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert reg.list_versions() == [1]  # the partial folder is hidden, not a version
    assert reg.champion() == 1
    assert reg.verify(1)["note"] == "a"
    assert any(p.name.startswith(".tmp-") for p in reg.versions_dir.iterdir())
    # the next publish cleans the debris and continues the numbering
    assert publish(reg, "b") == 2
    assert not any(p.name.startswith(".tmp-") for p in reg.versions_dir.iterdir())
    assert reg.champion() == 2


def test_version_numbers_are_never_reused(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    publish(reg, "b")
    # even if someone deletes the newest version folder, the history remembers its number
    from models.registry_tree import remove_tree

    remove_tree(reg.version_dir(2))  # a read-only tree: its folders get their write bit back first
    assert publish(reg, "c") == 3


def test_publish_without_promotion_keeps_the_champion(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    assert publish(reg, "b", promote=False) == 2
    assert reg.champion() == 1


def test_rollback_moves_the_alias_and_is_recorded(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    publish(reg, "b")
    assert reg.rollback(1, reason="v2 misbehaves", run_id="r-1") == 2
    assert reg.champion() == 1
    last = reg.history()[-1]
    assert last["event"] == "rolled_back" and last["version"] == 1 and last["previous_champion"] == 2
    assert last["reason"] == "v2 misbehaves"
    with pytest.raises(RegistryError, match="already the champion"):
        reg.rollback(1, reason="again")
    with pytest.raises(RegistryError, match="no version 7"):
        reg.rollback(7, reason="typo")
    assert reg.champion() == 1


def test_rollback_refuses_a_damaged_version(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    publish(reg, "b")
    card = reg.version_dir(1) / "model_card.md"
    card.chmod(0o644)
    card.write_text("changed")
    with pytest.raises(IntegrityError):
        reg.rollback(1, reason="x")
    assert reg.champion() == 2


def test_concurrent_publishers_get_distinct_versions(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from models.registry import ModelRegistry
        def write(folder, version):
            (folder / "f.txt").write_text(str(version))
            return {{}}
        reg = ModelRegistry(Path({str(tmp_path)!r}), "m")
        for _ in range(5):
            reg.publish(write, promote=True, history_event={{"event": "promoted"}})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(3)]
    assert [p.wait() for p in procs] == [0, 0, 0]
    reg = ModelRegistry(tmp_path, "m")
    assert reg.list_versions() == list(range(1, 16))
    assert sorted(e["version"] for e in reg.history()) == list(range(1, 16))
    for v in reg.list_versions():
        assert (reg.version_dir(v) / "f.txt").read_text() == str(v)


def test_resolve_aliases_and_unknowns(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    assert reg.champion() is None
    with pytest.raises(RegistryError, match="no model named 'm' in the registry at"):
        reg.resolve(None)
    reg.append_history({"event": "rejected", "version": None})
    with pytest.raises(RegistryError, match="m has no champion yet: no version has been promoted"):
        reg.resolve(None)
    publish(reg, "a")
    assert reg.resolve(None) == 1 and reg.resolve("champion") == 1 and reg.resolve("1") == 1
    with pytest.raises(RegistryError, match="no version 4"):
        reg.resolve(4)


def test_an_edited_metadata_file_is_caught(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    meta_path = reg.version_dir(1) / "metadata.json"
    meta = json.loads(meta_path.read_text())
    assert reg.history()[-1]["metadata_sha256"] == (reg.version_dir(1) / "metadata.sha256").read_text().strip()
    meta["metrics"]["roc_auc"] = 0.99  # a forged figure
    meta_path.chmod(0o644)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match="metadata.json: SHA-256 differs from metadata.sha256"):
        reg.verify(1)
    # forging the sidecar too is still caught by the history's record
    import hashlib

    sidecar = reg.version_dir(1) / "metadata.sha256"
    sidecar.chmod(0o644)
    sidecar.write_text(hashlib.sha256(meta_path.read_bytes()).hexdigest())
    with pytest.raises(IntegrityError, match="differs from the one recorded in history.jsonl"):
        reg.verify(1)


def test_damaged_registry_files_are_named(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    publish(reg, "b")
    for damaged in ('{"champion": "../../x"}', '{"champion": true}', '{"champion": 2.9}', '{"champion": 0}'):
        reg.aliases_path.write_text(damaged)
        with pytest.raises(RegistryError, match="aliases.json: damaged alias file"):
            reg.champion()
    reg.aliases_path.write_text('{"champion": 2}')
    with open(reg.history_path, "a") as fh:
        fh.write('{"event": "promo')  # a crash in the middle of an append
    assert [e["version"] for e in reg.history()] == [1, 2]  # the torn last line is skipped
    text = reg.history_path.read_text().splitlines()
    reg.history_path.write_text("\n".join([text[0], "garbage", *text[1:]]) + "\n")
    with pytest.raises(RegistryError, match="history.jsonl: line 2 is damaged"):
        reg.history()


def test_unsafe_model_names_are_refused(tmp_path):
    for name in ("../../etc", ".hidden", "a/b", ""):
        with pytest.raises(RegistryError, match="is not a model name"):
            ModelRegistry(tmp_path, name)


def test_unwritable_registry_root_is_named(tmp_path):
    from models.registry import check_writable_root

    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(RegistryError, match=r"FINML_REGISTRY_DIR=.*file.txt/registry: cannot write there"):
        check_writable_root(blocker / "registry")
    assert check_writable_root(tmp_path / "new" / "registry").is_dir()


def test_an_append_after_a_torn_line_cuts_it_off_and_keeps_the_file_readable(tmp_path):
    """A crash in the middle of an append used to glue the next record onto the torn line; one
    more append then made the history unreadable and the champion unloadable."""
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    with open(reg.history_path, "a") as fh:
        fh.write('{"event": "rejected", "run_id": "x", "ver')  # power cut mid-append
    publish(reg, "b")
    reg.append_history({"event": "rejected", "version": None})
    assert [e["event"] for e in reg.history()] == ["promoted", "promoted", "rejected"]
    assert reg.history()[1]["metadata_sha256"] == (reg.version_dir(2) / "metadata.sha256").read_text().strip()
    assert reg.verify(2)["note"] == "b" and reg.champion() == 2
    with open(reg.monitoring_path, "a") as fh:
        fh.write('{"verdict": "sta')
    reg.append_monitoring({"verdict": "stable"})
    assert reg.monitoring_history() == [{"verdict": "stable", "schema_version": MONITORING_SCHEMA_VERSION,
                                         "prev_sha256": "0" * 64}]  # the first line of its chain
    assert reg.monitoring_path.with_name("monitoring.jsonl.torn").read_text() == '{"verdict": "sta\n'  # kept aside
    # a torn line that does end with a newline is moved aside too (readers skip it as torn)
    with open(reg.history_path, "a") as fh:
        fh.write('{"event": "promoted", "mod\n')
    reg.append_history({"event": "rejected", "version": None})
    assert [e["event"] for e in reg.history()] == ["promoted", "promoted", "rejected", "rejected"]
    # a complete last record without its newline is a record: it gets its newline, never cut
    text = reg.history_path.read_bytes()
    reg.history_path.write_bytes(text[:-1])
    reg.append_history({"event": "rejected", "version": None, "run_id": "last"})
    assert [e["event"] for e in reg.history()] == ["promoted", "promoted", "rejected", "rejected", "rejected"]
    assert reg.history()[-1]["run_id"] == "last" and reg.verify(2)["note"] == "b"


def _crash_in(monkeypatch, name: str):
    import models.registry as registry_module

    def boom(*args, **kwargs):
        raise KeyboardInterrupt(f"crash inside {name}")

    monkeypatch.setattr(registry_module, name, boom)


def test_a_crash_before_the_history_line_leaves_an_uncommitted_version_that_is_never_loaded(tmp_path, monkeypatch):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    _crash_in(monkeypatch, "_append_jsonl")
    with pytest.raises(KeyboardInterrupt):
        publish(reg, "b")
    monkeypatch.undo()
    assert (reg.versions_dir / "2").is_dir()  # renamed into place, but no history line commits it:
    assert reg.list_versions() == [1] and reg.champion() == 1  # the old state for every reader
    with pytest.raises(IntegrityError, match="never committed"):
        reg.verify(2)
    with pytest.raises(IntegrityError, match="never committed"):
        reg.rollback(2, reason="test")
    assert publish(reg, "c") == 3 and reg.champion() == 3  # numbering goes on past the orphan
    assert not (reg.versions_dir / "2").exists()  # which the next writer removed, and recorded
    assert [(e["event"], e["version"]) for e in reg.history()] == [
        ("promoted", 1), ("uncommitted_removed", 2), ("promoted", 3)]
    assert reg.list_versions() == [1, 3]


def test_a_crash_between_the_history_line_and_the_alias_is_repaired_by_the_next_writer(tmp_path, monkeypatch):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    _crash_in(monkeypatch, "write_json_atomic")
    with pytest.raises(KeyboardInterrupt):
        publish(reg, "b")
    monkeypatch.undo()
    assert reg.stored_aliases() == {"champion": 1} and reg.verify(2)["note"] == "b"  # committed, alias not moved
    assert reg.champion() == 2 and reg.resolve(None) == 2  # readers follow the history (the commit record) ...
    assert reg.stored_aliases() == {"champion": 1}  # ... without writing
    assert reg.publish(writer("c"), promote=False, history_event={"event": "registered"}) == 3
    assert reg.stored_aliases() == {"champion": 2}  # the history's champion, restored under the lock


def test_a_champion_moved_by_another_run_refuses_the_promotion_and_writes_nothing(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    judged_against = reg.champion()
    publish(reg, "b")  # another run promotes v2 while ours was being judged against v1
    from models.registry import ChampionChangedError

    with pytest.raises(ChampionChangedError, match="champion is now version 2, but this run was judged against "
                                                   "version 1"):
        reg.publish(writer("c"), promote=True, history_event={"event": "promoted"}, expected_champion=judged_against)
    assert reg.list_versions() == [1, 2] and reg.champion() == 2 and len(reg.history()) == 2
    with pytest.raises(ChampionChangedError, match="judged against no champion"):
        reg.publish(writer("c"), promote=True, history_event={"event": "promoted"}, expected_champion=None)
    assert reg.publish(writer("c"), promote=True, history_event={"event": "promoted"}, expected_champion=2) == 3


def test_rollback_rewrites_a_damaged_alias_file(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    publish(reg, "b")
    reg.aliases_path.write_text("{oops")
    with pytest.raises(RegistryError, match="rewrite it with `finml registry rollback`"):
        reg.champion()
    assert reg.rollback(1, reason="alias file damaged") == 2  # the previous champion, from the history
    assert reg.champion() == 1
    assert "damaged alias file" in reg.history()[-1]["repaired_alias_file"]


def test_retiring_the_champion_is_recorded_and_undone_by_a_rollback(tmp_path, monkeypatch):
    reg = ModelRegistry(tmp_path, "m")
    with pytest.raises(RegistryError, match="needs a reason"):
        reg.retire_champion(reason=" ")
    with pytest.raises(RegistryError, match="no model named 'm'"):
        reg.retire_champion(reason="spec v2 drops a feature")
    with pytest.raises(RegistryError, match="no model named 'm'"):
        reg.rollback(1, reason="typo")
    assert not reg.exists()  # a mistyped name leaves no phantom model behind
    reg.append_history({"event": "rejected", "version": None})
    with pytest.raises(RegistryError, match="no champion to retire"):
        reg.retire_champion(reason="spec v2 drops a feature")
    publish(reg, "a")
    publish(reg, "b")
    assert reg.retire_champion(reason="spec v2 drops feature x2") == 2
    assert reg.champion() is None and reg.list_versions() == [1, 2] and reg.verify(2)["note"] == "b"
    last = reg.history()[-1]
    assert last["event"] == "champion_retired" and last["version"] == 2 and last["reason"] == "spec v2 drops feature x2"
    # a publish judged against "no champion" is now accepted, and numbering goes on
    assert reg.publish(writer("c"), promote=True, history_event={"event": "promoted"}, expected_champion=None) == 3
    assert reg.rollback(2, reason="back to v2") == 3 and reg.champion() == 2
    # a crash between the history line and the alias: the next writer removes the stale alias
    _crash_in(monkeypatch, "write_json_atomic")
    with pytest.raises(KeyboardInterrupt):
        reg.retire_champion(reason="again")
    monkeypatch.undo()
    assert reg.stored_aliases() == {"champion": 2} and reg.champion() is None  # readers follow the history
    reg.publish(writer("d"), promote=False, history_event={"event": "registered"})
    assert reg.stored_aliases() == {} and reg.champion() is None


def test_cli_retire_and_rollback(finml_env):
    from typer.testing import CliRunner

    from flows.cli import app
    from models.settings import get_settings

    reg = ModelRegistry(get_settings().registry_dir, "credit_risk")
    publish(reg, "a")
    runner = CliRunner()
    result = runner.invoke(app, ["registry", "retire", "credit_risk"])
    assert result.exit_code == 2 and "--reason" in result.output  # a reason is required
    result = runner.invoke(app, ["registry", "retire", "credit_risk", "--reason", "feature x2 dropped from the spec"])
    assert result.exit_code == 0 and "champion v1 retired" in result.output, result.output
    assert reg.champion() is None
    result = runner.invoke(app, ["registry", "rollback", "credit_risk", "--to", "1"])
    assert result.exit_code == 0 and "v1 is the champion (there was none)" in result.output
    result = runner.invoke(app, ["registry", "rollback", "credit_rsik", "--to", "1"])
    assert result.exit_code == 1 and "no model named 'credit_rsik'" in result.output
    assert not (get_settings().registry_dir / "credit_rsik").exists()
    meta = reg.version_dir(1) / "metadata.json"  # a forged figure is never listed
    meta.chmod(0o644)
    meta.write_text(meta.read_text().replace('"roc_auc": 0.8', '"roc_auc": 0.96'))
    result = runner.invoke(app, ["registry", "list"], env={"COLUMNS": "300"})
    assert "0.96" not in result.output and "damaged: credit_risk version 1 failed its integrity" in result.output
    assert result.exit_code == 1
