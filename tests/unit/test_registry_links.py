"""Nothing is written through a symbolic link in the registry tree (issue 13 §2): an append to a
linked ``history.jsonl`` or ``monitoring.jsonl`` wrote into the link's target."""

from __future__ import annotations

import os

import pytest

from models.jsonl import append_jsonl, read_jsonl
from models.registry import ModelRegistry, RegistryError
from tests.unit.test_registry import publish


@pytest.fixture
def outside(tmp_path):
    """A file outside the registry that a link will point at, and its bytes."""
    target = tmp_path / "outside" / "precious.txt"
    target.parent.mkdir()
    target.write_bytes(b"keep me\nline two\n")
    return target


@pytest.mark.parametrize("name", ["history.jsonl", "monitoring.jsonl"])
def test_an_append_to_a_linked_jsonl_file_is_refused_and_the_target_untouched(tmp_path, outside, name):
    reg = ModelRegistry(tmp_path / "registry", "m")
    publish(reg, "a")
    linked = reg.dir / name
    linked.unlink(missing_ok=True)
    linked.symlink_to(outside)
    before = (outside.read_bytes(), outside.stat().st_mtime_ns)
    append = reg.append_history if name == "history.jsonl" else reg.append_monitoring
    with pytest.raises(RegistryError, match=rf"{name} is a symbolic link \(to '.*precious.txt'\)"):
        append({"event": "note", "verdict": "stable"})
    assert (outside.read_bytes(), outside.stat().st_mtime_ns) == before
    assert linked.is_symlink()
    assert not (outside.parent / "precious.txt.torn").exists()


def test_a_publication_with_a_linked_history_is_refused_and_the_target_untouched(tmp_path, outside):
    reg = ModelRegistry(tmp_path / "registry", "m")
    publish(reg, "a")
    reg.history_path.unlink()
    reg.history_path.symlink_to(outside)
    before = outside.read_bytes()
    with pytest.raises(RegistryError, match="history.jsonl is a symbolic link"):
        publish(reg, "b")
    assert outside.read_bytes() == before
    assert sorted(p.name for p in reg.versions_dir.iterdir()) == ["1"]  # no version 2 folder


def test_a_dangling_link_creates_no_file(tmp_path):
    reg = ModelRegistry(tmp_path / "registry", "m")
    publish(reg, "a")
    target = tmp_path / "elsewhere" / "new.jsonl"
    target.parent.mkdir()
    reg.monitoring_path.symlink_to(target)
    with pytest.raises(RegistryError, match="monitoring.jsonl is a symbolic link"):
        reg.append_monitoring({"verdict": "stable"})
    assert not target.exists()


def test_the_jsonl_functions_refuse_a_link_themselves(tmp_path, outside):
    link = tmp_path / "history.jsonl"
    link.symlink_to(outside)
    with pytest.raises(RegistryError, match="history.jsonl is a symbolic link"):
        read_jsonl(link)
    with pytest.raises(RegistryError, match="history.jsonl is a symbolic link"):
        append_jsonl(link, {"event": "x"})
    assert outside.read_bytes() == b"keep me\nline two\n"


def test_a_linked_torn_file_is_refused_before_the_history_is_cut(tmp_path, outside):
    path = tmp_path / "history.jsonl"
    path.write_bytes(b'{"event": "a"}\n{"event": "b", "tor')  # a torn last line, moved to .torn on append
    (tmp_path / "history.jsonl.torn").symlink_to(outside)
    with pytest.raises(RegistryError, match=r"history.jsonl.torn is a symbolic link"):
        append_jsonl(path, {"event": "c"})
    assert path.read_bytes() == b'{"event": "a"}\n{"event": "b", "tor'
    assert outside.read_bytes() == b"keep me\nline two\n"


def test_a_linked_version_folder_or_model_folder_is_refused(tmp_path):
    root = tmp_path / "registry"
    reg = ModelRegistry(root, "m")
    publish(reg, "a")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (reg.versions_dir / "2").symlink_to(foreign, target_is_directory=True)
    with pytest.raises(RegistryError, match=r"versions/2 is a symbolic link"):
        reg.list_versions()
    with pytest.raises(RegistryError, match=r"versions/2 is a symbolic link"):
        publish(reg, "b")
    assert list(foreign.iterdir()) == []
    (reg.versions_dir / "2").unlink()

    other = ModelRegistry(root, "n")
    (root / "n").symlink_to(foreign, target_is_directory=True)
    with pytest.raises(RegistryError, match=r"registry/n is a symbolic link"):
        publish(other, "c")
    assert list(foreign.iterdir()) == []  # not even a lock file


def test_a_linked_registry_root_still_works(tmp_path):
    real = tmp_path / "real-registry"
    real.mkdir()
    (tmp_path / "registry").symlink_to(real, target_is_directory=True)
    reg = ModelRegistry(tmp_path / "registry", "m")
    assert publish(reg, "a") == 1
    reg.append_monitoring({"verdict": "stable"})
    assert reg.list_versions() == [1] and len(reg.monitoring_history()) == 1
    assert (real / "m" / "versions" / "1").is_dir() and not os.path.islink(real / "m")


def test_a_link_planted_in_a_version_folder_is_refused_not_followed(tmp_path):
    """A version's file replaced by a link to a file of the same bytes: the hashes would match, but
    finml never reads a version's file through a link (it could point anywhere, change later)."""
    reg = ModelRegistry(tmp_path / "registry", "m")
    publish(reg, "a")
    vdir = reg.version_dir(1)
    weights = vdir / "model" / "weights.bin"
    copy = tmp_path / "copy.bin"
    copy.write_bytes(weights.read_bytes())
    os.chmod(weights.parent, 0o755)
    weights.unlink()
    weights.symlink_to(copy)
    with pytest.raises(RegistryError, match=r"weights\.bin is a symbolic link"):
        reg.verify(1)
    os.chmod(weights.parent, 0o555)
