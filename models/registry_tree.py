"""The registry's folder tree: which version folders the history commits, read-only version
folders, removal of the uncommitted ones, and the paths that must stay outside the registry.
See ``docs/registry.md`` (Crash safety, Read-only versions, Outside the registry)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from models.errors import RegistryError, UsageError, shorten
from models.jsonl import refuse_link

READ_ONLY_FILE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH  # 0o444
READ_ONLY_DIR = READ_ONLY_FILE | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH  # 0o555
CHAMPION = "champion"


class AliasNotWrittenError(RegistryError):
    """A publish, rollback or retirement is committed in the history, but ``aliases.json`` could
    not be written afterwards (a full disk: ``ENOSPC``). The change is in effect: every reader
    takes the champion from the history (:func:`champion_from_history`), and the next writer
    rewrites the file. ``version`` is the version the change is about, ``champion`` the champion
    after it (None: no champion)."""

    def __init__(self, message: str, *, version: int, champion: int | None):
        super().__init__(message)
        self.version = version
        self.champion = champion

    @classmethod
    def after(cls, model: str, what: str, path: Path, err: OSError, *, version: int,
              champion: int | None) -> AliasNotWrittenError:
        """The error for ``what`` (``"version 3"``, ``"the rollback to version 1"`` …), committed."""
        state = f"the champion is version {champion}" if champion is not None else "there is no champion"
        return cls(f"{model}: {what} is committed and {state} per the history, which every reader follows; the "
                   f"alias file {path} could not be written ({err.strerror or err}); the next write of {model} "
                   "rewrites it", version=version, champion=champion)


def is_version_name(name: str) -> bool:
    """True for a version folder's name: ASCII digits only (``"²".isdigit()`` is True too)."""
    return name.isascii() and name.isdigit()


MODEL_FILES = ("history.jsonl", "monitoring.jsonl", "aliases.json", "versions", ".lock")
"""Entries of a model's folder that finml reads and writes; none of them may be a symbolic link."""


def refuse_linked_entries(model_dir: Path) -> None:
    """Refuse a model folder that is, or holds, a symbolic link where finml reads or writes: the
    folder itself, its :data:`MODEL_FILES`, and every entry of ``versions/``. Through a link an
    append, a publication or a removal would act on the link's target, outside the registry. The
    registry root itself may be a link (``FINML_REGISTRY_DIR`` is where the operator puts it).

    Raises:
        RegistryError: naming the first link found and its target.
    """
    versions = model_dir / "versions"
    candidates = [model_dir, *(model_dir / name for name in MODEL_FILES)]
    if versions.is_dir() and not versions.is_symlink() and not model_dir.is_symlink():
        candidates += sorted(versions.iterdir())
    for path in candidates:
        if path.is_symlink():
            raise RegistryError(f"{path} is a symbolic link (to {os.readlink(path)!r}); finml never reads or writes "
                                "the registry through a link: replace the link by the folder or file itself")


def version_folders(versions_dir: Path) -> list[int]:
    """Numbers of every version folder in ``versions_dir``, committed or not, ascending.

    Raises:
        RegistryError: the model's folder holds a symbolic link (:func:`refuse_linked_entries`).
    """
    refuse_linked_entries(versions_dir.parent)
    if not versions_dir.is_dir():
        return []
    return sorted(int(p.name) for p in versions_dir.iterdir() if p.is_dir() and is_version_name(p.name))


def committed_versions(history: Iterable[Mapping[str, Any]]) -> set[int]:
    """Version numbers that a history line commits: a line naming the ``version`` with its
    ``metadata_sha256`` (the commit line written by ``ModelRegistry.publish``)."""
    return {int(e["version"]) for e in history if e.get("version") is not None and e.get("metadata_sha256")}


def champion_from_history(history: Iterable[Mapping[str, Any]]) -> tuple[bool, int | None]:
    """``(known, version)``: the champion named by the history's last statement of it.

    Every line that moves the champion (publish, rollback, retirement) records
    ``champion_after``; lines written before that field existed count by their event
    (``promoted`` and ``rolled_back`` name their version). ``known`` is False when no line says
    anything about the champion.
    """
    known, champion = False, None
    for e in history:
        said, value = champion_statement(e)
        if said:
            known, champion = True, value
    return known, champion


def champion_statement(line: Mapping[str, Any]) -> tuple[bool, int | None]:
    """``(says, version)``: whether one history line states the champion, and which (None: no
    champion), by the rule of :func:`champion_from_history`."""
    if "champion_after" in line:
        return True, line["champion_after"]
    if line.get("event") in ("promoted", "rolled_back") and line.get("version") is not None:
        return True, int(line["version"])
    return False, None


def aliases_in_effect(stored: Mapping[str, int], history: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The aliases ``stored`` in ``aliases.json`` with every alias the history states set to what
    it states: the champion (:func:`champion_from_history`) and the other aliases
    (:func:`named_aliases_from_history`). After a crash between a commit line and
    the alias write, the history is right; an alias no line states (a file written by hand) is
    kept as stored."""
    history = list(history)
    aliases = dict(stored)
    known, named = champion_from_history(history)
    stated = named_aliases_from_history(history)
    if known:
        stated[CHAMPION] = named
    for name, version in stated.items():
        if version is None:
            aliases.pop(name, None)
        else:
            aliases[name] = version
    return aliases


CHALLENGER = "challenger"
ALIAS_NAME = re.compile(r"\A[a-z][a-z0-9_-]{0,39}\Z")
"""An alias name: a lower-case letter, then up to 39 lower-case letters, digits, ``_`` or ``-``
(never a number, which would read as a version)."""
ALIAS_EVENTS = ("alias_moved", "registered")


def check_alias_name(name: str) -> str:
    """``name`` if it can be set with :func:`move_alias`.

    Raises:
        RegistryError: not an alias name (:data:`ALIAS_NAME`), or ``champion`` (moved by the gate,
            ``finml registry rollback`` and ``retire`` only).
    """
    if not isinstance(name, str) or not ALIAS_NAME.fullmatch(name):
        raise RegistryError(f"{shorten(repr(name))} is not an alias name (a lower-case letter, then up to 39 "
                            "lower-case letters, digits, '_' or '-')")
    if name == CHAMPION:
        raise RegistryError("the champion alias is moved by promotion, `finml registry rollback MODEL --to N` "
                            "and `finml registry retire`, not by `finml registry alias`")
    return name


def named_aliases_from_history(history: Iterable[Mapping[str, Any]]) -> dict[str, int | None]:
    """Alias name → version (None: removed) by the history's last statement of each alias other
    than the champion: an ``alias_moved`` line, a ``registered`` commit line that names an
    ``alias`` (a run registered as challenger), an ``alias_removed`` line. Aliases no line names
    are absent (an old registry has only the champion)."""
    named: dict[str, int | None] = {}
    for line in history:
        name = line.get("alias")
        if not isinstance(name, str) or name == CHAMPION:
            continue
        if line.get("event") == "alias_removed":
            named[name] = None
        elif line.get("event") in ALIAS_EVENTS and line.get("version") is not None:
            named[name] = int(line["version"])
    return named


def alias_from_history(history: Iterable[Mapping[str, Any]], name: str) -> tuple[bool, int | None]:
    """``(known, version)`` of one alias as the history states it (the champion's by
    :func:`models.registry_tree.champion_from_history`); ``known`` False when no line names it."""
    history = list(history)
    if name == CHAMPION:
        return champion_from_history(history)
    named = named_aliases_from_history(history)
    return (name in named), named.get(name)


def crash_debris(versions_dir: Path, history_path: Path,
                 read_history: Callable[[], list[dict[str, Any]]]) -> tuple[list[Path], list[int]]:
    """What crashed publications left in ``versions_dir``: ``(hidden .tmp-* folders, numbers of
    version folders that no line of the history commits)``. Call under the model's lock.

    Raises:
        RegistryError: the history file is missing while version folders exist (every one would
            look uncommitted), or a history line is damaged.
    """
    if not versions_dir.is_dir():
        return [], []
    stale = sorted(p for p in versions_dir.iterdir() if p.name.startswith(".tmp-"))
    folders = version_folders(versions_dir)
    if folders and not history_path.is_file():
        raise RegistryError(f"{history_path} is missing but {versions_dir} holds version folders {folders}: every "
                            "one would look uncommitted; restore the history from a backup (nothing was removed)")
    committed = committed_versions(read_history()) if folders else set()
    return stale, [v for v in folders if v not in committed]


def make_read_only(folder: Path) -> None:
    """Make every file (0o444) and every folder (0o555), ``folder`` included, read-only, deepest
    first, so that nothing can be written, deleted or renamed into a version folder.

    The super-user ignores these bits: the registry code itself also refuses paths inside the
    registry (:func:`refuse_inside_registry`).
    """
    for path in sorted(folder.rglob("*"), key=lambda p: -len(p.parts)):
        if not path.is_symlink():
            path.chmod(READ_ONLY_DIR if path.is_dir() else READ_ONLY_FILE)
    folder.chmod(READ_ONLY_DIR)


def remove_tree(folder: Path) -> None:
    """Delete a folder tree that :func:`make_read_only` may have locked: give its folders their
    owner's write bit back, then remove it (a symlink or a file: only the entry itself).

    Raises:
        OSError: the tree cannot be removed (the file system is read-only, another owner).
    """
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
        return
    if not folder.exists():
        return
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    shutil.rmtree(folder)


def _same_folder(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def is_inside(path: str | Path, root: str | Path) -> bool:
    """True when ``path`` (existing or not) is ``root`` or lies below it, after resolving
    symlinks; a folder reached another way (a bind mount) is recognised by its device and inode."""
    root_resolved = Path(root).resolve()
    resolved = Path(path).resolve()
    if resolved == root_resolved or root_resolved in resolved.parents:
        return True
    try:
        root_stat = os.stat(root_resolved)
    except OSError:  # no registry yet: nothing to protect
        return False
    for folder in (resolved, *resolved.parents):
        try:
            if _same_folder(os.stat(folder), root_stat):
                return True
        except OSError:
            continue
    return False


def refuse_inside_registry(path: str | Path, registry_root: str | Path | None, what: str,
                           error: type[Exception] = UsageError) -> None:
    """Refuse an output, report or temporary path that resolves inside the registry.

    The registry is written by its own code only: a file renamed into a version folder replaces
    a hashed file or adds an unrecorded one, and the version then fails verification for good.

    Args:
        path: the path to check (need not exist).
        registry_root: the registry root (``FINML_REGISTRY_DIR``); None: read the setting.
        what: how the message names the path (``"output"``, ``"FINML_REPORTS_DIR"`` …).
        error: the exception class raised (a :class:`UsageError` subclass for callers that catch one).

    Raises:
        error: one line naming the path and the registry.
    """
    if registry_root is None:
        from models.settings import get_settings

        registry_root = get_settings().registry_dir
    if is_inside(path, registry_root):
        raise error(f"{what} {str(path)!r} is inside the registry {str(Path(registry_root).resolve())!r} "
                    "(FINML_REGISTRY_DIR), which only finml's registry code writes; choose a path outside it")


def read_aliases(path: Path) -> dict[str, int]:
    """``aliases.json`` as stored: alias name → version number (``{}`` when there is none).

    Raises:
        RegistryError: naming a damaged alias file, or one that is a symbolic link.
    """
    refuse_link(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        bad = {k: v for k, v in data.items() if type(v) is not int or v < 1}
        if bad:  # true would read as 1 and 2.9 as 2: a version number is a positive integer
            raise ValueError(f"not a version number: {bad}")
        return {str(k): v for k, v in data.items()}
    except (ValueError, TypeError, AttributeError) as err:
        raise RegistryError(f"{path}: damaged alias file ({err}); restore it from a backup "
                            "or rewrite it with `finml registry rollback`") from None


def check_writable_root(root: str | Path, setting: str = "FINML_REGISTRY_DIR") -> Path:
    """Make sure the registry root (or another output root, named by ``setting``) exists
    (creating it) and is writable; return it resolved. Any other root than the registry's must
    lie outside the registry.

    Raises:
        RegistryError: naming the setting and the path, before any work is done.
        UsageError: another root (``FINML_REPORTS_DIR``) inside ``FINML_REGISTRY_DIR``.
    """
    root = Path(root)
    if setting != "FINML_REGISTRY_DIR":
        refuse_inside_registry(root, None, setting)
    if root.exists() and not root.is_dir():
        raise RegistryError(f"{setting}={root}: is a file, not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-probe-{uuid.uuid4().hex[:8]}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise RegistryError(f"{setting}={root}: cannot write there ({err.strerror or err})") from None
    return root.resolve()


def list_models(root: str | Path) -> list[str]:
    """Model names that have a folder in the registry root, sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
