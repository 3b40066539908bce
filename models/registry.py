"""The model registry directory: atomic, immutable, hash-checked versions with aliases, an
append-only history that is the commit record, and the monitoring history.

:class:`ModelRegistry` is one model's folder; the folder layout, the write order that makes it
crash-safe, the hash checks and the typed records it stores are described in
``docs/registry.md``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from models.compat import library_guard
from models.errors import RegistryError, shorten
from models.identity import current_user
from models.files import fsync_path, json_default, write_json_atomic  # noqa: F401 (json_default: re-exported)
from models.integrity import (  # noqa: F401 (IntegrityError, SignatureError, sha256_file: re-exported)
    METADATA_FILE,
    METADATA_HASH_FILE,
    IntegrityError,
    SignatureError,
    VerifiedVersion,
    chain_record,
    check_signed_champion,
    sha256_file,
    verify_version,
)
from models.jsonl import append_jsonl as _append_jsonl
from models.jsonl import open_for_append, read_jsonl
from models.records.monitoring import MONITORING_SCHEMA_VERSION, MonitoringRecord
from models.records.registry import (
    HISTORY_SCHEMA_VERSION,
    METADATA_SCHEMA_VERSION,
    ChampionRetired,
    HistoryEvent,
    UncommittedRemoved,
    VersionMetadata,
    parse_event,
    read_record,
    stored_json,
)
from models.registry_lock import registry_lock
from models.registry_tree import (  # noqa: F401 (the errors and root functions: re-exported)
    CHAMPION,
    AliasNotWrittenError,
    alias_from_history,
    check_alias_name,
    aliases_in_effect,
    champion_from_history,
    check_writable_root,
    committed_versions,
    crash_debris,
    is_version_name,
    list_models,
    make_read_only,
    read_aliases,
    refuse_inside_registry,
    refuse_linked_entries,
    remove_tree,
    version_folders,
)

SAFE_MODEL = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")  # \Z: "$" also matches before a final newline
log = logging.getLogger(__name__)
LOCK_TIMEOUT_S = 600


class ChampionChangedError(RegistryError):
    """Another run moved the champion after this run was judged against the previous one."""


def now_utc() -> str:
    """Current time as an ISO-8601 UTC string with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ModelRegistry:
    """The registry folder of one model.

    Args:
        root: the registry root (``FINML_REGISTRY_DIR``).
        model: the model name; must be a safe name (checked by the spec) as it becomes a folder.
    """

    def __init__(self, root: str | Path, model: str):
        if not isinstance(model, str) or not SAFE_MODEL.fullmatch(model):
            raise RegistryError(f"{shorten(repr(model))} is not a model name (letters, digits, '_' or '-')")
        self.root = Path(root)
        self.model = model
        self.dir = self.root / model
        self.versions_dir = self.dir / "versions"
        self.aliases_path = self.dir / "aliases.json"
        self.history_path = self.dir / "history.jsonl"
        self.monitoring_path = self.dir / "monitoring.jsonl"
        self._keys: Any = _UNREAD

    @property
    def keys(self):
        """The signing keys of signed mode (:func:`models.signing.configured_keys`, read once per
        instance), or None (unsigned mode). Raises RegistryError for a bad key file."""
        if self._keys is _UNREAD:
            from models.signing import configured_keys

            self._keys = configured_keys(self.root)
        return self._keys

    # ---- reading ------------------------------------------------------------------------

    def _lock(self):
        """The writers' lock (:func:`models.registry_lock.registry_lock`): released on every exit;
        RegistryError when it cannot be taken (a read-only registry, a holder past the timeout)."""
        refuse_linked_entries(self.dir)  # every writer takes the lock: nothing is written through a link
        return registry_lock(self.dir, self.model, LOCK_TIMEOUT_S)

    def list_versions(self) -> list[int]:
        """Committed version numbers, ascending: folders that a history line commits. Hidden
        temporary folders, and folders renamed into place by a publish that crashed before its
        history line (removed by :meth:`gc`), are not versions.

        Raises:
            RegistryError: a damaged history line before the last.
        """
        folders = version_folders(self.versions_dir)
        committed = committed_versions(self.history()) if folders else set()
        return [v for v in folders if v in committed]

    def version_dir(self, version: int) -> Path:
        """Folder of a version. Raises RegistryError if it does not exist."""
        path = self.versions_dir / str(int(version))
        if not path.is_dir():
            raise RegistryError(
                f"{self.model}: no version {version} (versions: {self.list_versions() or 'none'})"
            )
        return path

    def exists(self) -> bool:
        """True when the model has a folder in the registry (a version or a history line)."""
        return self.dir.is_dir()

    def aliases(self) -> dict[str, int]:
        """Alias name → version number, as in effect: the champion is the one the history names
        (the commit record) when ``aliases.json`` disagrees with it — a publish, rollback or
        retirement interrupted after its history line. A reader never writes; the next writer
        repairs the file.

        Raises:
            RegistryError: a damaged alias file or history line (named).
        """
        return self._aliases_in_effect("using the history's")[0]

    def _aliases_in_effect(self, action: str) -> tuple[dict[str, int], bool]:
        """``(aliases in effect, whether aliases.json disagrees with them)``, with a warning."""
        stored = self.stored_aliases()
        aliases = aliases_in_effect(stored, self.history())
        if aliases != stored:
            log.warning("%s: aliases.json says %s but history.jsonl's last word is %s (an interrupted "
                        "promotion, rollback, retirement or alias move); %s", self.model, stored, aliases, action)
        return aliases, aliases != stored

    def stored_aliases(self) -> dict[str, int]:
        """``aliases.json`` as stored, without the history's view (:func:`read_aliases`)."""
        return read_aliases(self.aliases_path)

    def champion(self) -> int | None:
        """The champion version, or None before the first promotion."""
        return self.aliases().get(CHAMPION)

    def resolve(self, ref: int | str | None = None) -> int:
        """Turn a version number, an alias name or None (the champion) into a version number."""
        if ref is None:
            ref = CHAMPION
        if isinstance(ref, int) or (isinstance(ref, str) and is_version_name(ref)):  # ASCII digits: "²" is not
            version = int(ref)
            self.version_dir(version)
            return version
        version = self.aliases().get(ref)
        if version is None:
            if not self.exists():
                raise RegistryError(f"no model named {self.model!r} in the registry at {self.root.resolve()}")
            if ref == CHAMPION:
                raise RegistryError(f"{self.model} has no champion yet: no version has been promoted "
                                    f"(versions: {self.list_versions() or 'none'})")
            named = ", ".join(f"{name}={number}" for name, number in sorted(self.aliases().items()))
            raise RegistryError(f"{self.model}: no alias {ref!r} (aliases: {named or 'none'})")
        return version

    # The stored JSON as dicts (what the integrity checks read, and any tool), and the same files
    # read into their typed records (models.records.registry / .monitoring; legacy files included).

    def read_metadata(self, version: int) -> dict[str, Any]:
        """A version's ``metadata.json`` as stored, without the hash check (see :meth:`verify`)."""
        return json.loads((self.version_dir(version) / METADATA_FILE).read_text())

    def history(self) -> list[dict[str, Any]]:
        """Every ``history.jsonl`` line as stored, oldest first (a torn last line skipped)."""
        return read_jsonl(self.history_path)

    def monitoring_history(self) -> list[dict[str, Any]]:
        """Every ``monitoring.jsonl`` line as stored, oldest first (a torn last line skipped)."""
        return read_jsonl(self.monitoring_path)

    def history_events(self) -> list[HistoryEvent]:
        """The history as typed events (:func:`models.records.registry.parse_event`), oldest first.

        Raises:
            RegistryError: a damaged line (see :meth:`history`) or one that is not an event.
        """
        return [read_record(parse_event, line, self.history_path, i) for i, line in enumerate(self.history(), 1)]

    def monitoring_records(self) -> list[MonitoringRecord]:
        """The monitoring history as typed records, oldest first.

        Raises:
            RegistryError: a damaged line or one that is not a monitoring record.
        """
        return [read_record(MonitoringRecord.from_stored, line, self.monitoring_path, i)
                for i, line in enumerate(self.monitoring_history(), 1)]

    def version_metadata(self, version: int) -> VersionMetadata:
        """A version's metadata, after :meth:`verify` has checked every hash, as a typed record.

        Raises:
            IntegrityError: see :meth:`verify`. RegistryError: the metadata is not version metadata.
        """
        return read_record(VersionMetadata.from_stored, self.verify(version), self.version_dir(version) / METADATA_FILE)

    def verify(self, version: int) -> dict[str, Any]:
        """Check every file of a version against its recorded SHA-256 (and, in signed mode, the
        history's signatures); return the metadata (:func:`models.integrity.verify_version`).

        Raises:
            IntegrityError: naming each file that is missing, changed or not recorded;
            SignatureError (signed mode): a history line that fails its signature or the chain,
            or a version committed unsigned.
        """
        return self.read_verified(version).metadata

    def read_verified(self, version: int, keep: Collection[str] | Callable[[str], bool] = ()) -> VerifiedVersion:
        """:meth:`verify`, returning the checked bytes of the files ``keep`` names (relative
        paths, or a predicate on them): deserialise those bytes, never the folder's files again."""
        return verify_version(self.version_dir(version), self.model, version, self.history_path, self.keys, keep=keep)

    def load_verified(self, ref: int | str | None = None, extra: Collection[str] = ()):
        """Verify a version and load its fitted pipeline from the bytes that were checked;
        returns ``(pipeline, VerifiedVersion)`` whose ``files`` also hold the checked bytes of
        ``extra`` (``"reference.parquet"``).

        Raises:
            IntegrityError, SignatureError (see :meth:`verify`), LibraryVersionError (other library
            versions recorded, :func:`models.compat.library_guard`): nothing is unpickled then.
        """
        from models.estimators import load_pipeline_bytes

        version = self.resolve(ref)
        verified = self.read_verified(version, lambda rel: rel.startswith("model/") or rel in extra)
        if self.keys is not None and isinstance(ref, str | None) and not is_version_name(ref or ""):
            check_signed_champion(self.model, version, alias_from_history(verified.history, ref or CHAMPION),
                                  ref or CHAMPION)
        files = {rel.removeprefix("model/"): data for rel, data in verified.files.items() if rel.startswith("model/")}
        with library_guard(self.model, version, verified.metadata):  # after the checks, before any unpickling
            return load_pipeline_bytes(files), verified

    def load_model(self, ref: int | str | None = None):
        """Verify then load a version's fitted pipeline; returns ``(pipeline, version, metadata)``."""
        pipeline, verified = self.load_verified(ref)
        return pipeline, verified.version, verified.metadata

    # ---- writing ------------------------------------------------------------------------

    def _next_version(self) -> int:
        seen = version_folders(self.versions_dir)  # an uncommitted folder's number is not reused either
        seen += [int(e["version"]) for e in self.history() if e.get("version") is not None]
        return max(seen, default=0) + 1

    def gc(self) -> list[Path]:
        """Remove, under the lock, what crashed publications left: hidden ``.tmp-*`` folders and
        version folders renamed into place that no history line commits. A committed version is
        never removed (even a damaged one: :meth:`verify` reports it). Each removed version
        folder gets an ``uncommitted_removed`` history line, so that its number is not reused.
        Also run by every :meth:`publish`.

        Returns:
            The removed folders (empty when there was nothing to remove).

        Raises:
            RegistryError: ``history.jsonl`` is missing while version folders exist (every
            version would look uncommitted: restore the history from a backup), or is damaged.
            OSError: a folder cannot be removed.
        """
        if not self.dir.is_dir():
            raise RegistryError(f"no model named {self.model!r} in the registry at {self.root.resolve()}")
        with self._lock():
            return self._gc_unlocked()

    def _gc_unlocked(self) -> list[Path]:
        stale, uncommitted = crash_debris(self.versions_dir, self.history_path, self.history)
        for path in stale:
            remove_tree(path)
        for version in uncommitted:
            remove_tree(self.versions_dir / str(version))
            self._append_history_unlocked(UncommittedRemoved(
                version=version, reason="renamed into place by a publication that stopped before its history "
                                        "line (never committed); removed by gc"))
            log.warning("%s: removed the uncommitted version folder %s", self.model, version)
        return stale + [self.versions_dir / str(v) for v in uncommitted]

    def _append_history_unlocked(self, event: HistoryEvent | Mapping[str, Any]) -> None:
        line = stored_json(event, HISTORY_SCHEMA_VERSION)
        line["ts"] = now_utc() if line.get("ts") is None else line["ts"]
        line["model"] = self.model if line.get("model") is None else line["model"]
        line["who"] = current_user() if not line.get("who") else line["who"]  # models.identity: who acted
        keys = self.keys  # signed mode: every history line is signed (a verify-only role cannot write)
        _append_jsonl(self.history_path, chain_record(line, self.history_path, keys, sign=keys is not None))

    def _champion_from_history(self) -> tuple[bool, int | None]:
        """``(known, version)``: :func:`models.registry_tree.champion_from_history` of the history."""
        return champion_from_history(self.history())

    def _write_aliases_committed(self, aliases: dict[str, int], what: str, version: int) -> None:
        """Write the aliases after a commit line. Raises AliasNotWrittenError when it fails."""
        try:
            write_json_atomic(self.aliases_path, aliases)
        except OSError as err:
            raise AliasNotWrittenError.after(self.model, what, self.aliases_path, err, version=version,
                                             champion=aliases.get(CHAMPION)) from err

    def _reconcile_unlocked(self) -> dict[str, int]:
        """The aliases, with ``aliases.json`` brought in line with the history (the commit record)
        after a crash between a history line and the alias write. Returns the aliases."""
        aliases, stale = self._aliases_in_effect("repairing the alias")
        if stale:
            write_json_atomic(self.aliases_path, aliases)
        return aliases

    def append_history(self, event: HistoryEvent | Mapping[str, Any]) -> None:
        """Append one event to ``history.jsonl`` under the lock: a record as its JSON, a mapping as
        given; stamped with ``schema_version``, ``ts`` (now) and ``model`` unless it has them."""
        with self._lock():
            self._append_history_unlocked(event)

    def append_monitoring(self, record: MonitoringRecord | Mapping[str, Any]) -> None:
        """Append one monitoring run to ``monitoring.jsonl`` under the lock: a record as its JSON,
        a mapping as given; stamped with ``schema_version``."""
        with self._lock():
            line = chain_record(stored_json(record, MONITORING_SCHEMA_VERSION), self.monitoring_path, None, False)
            _append_jsonl(self.monitoring_path, line)

    def publish(
        self,
        write: Callable[[Path, int], VersionMetadata | Mapping[str, Any]],
        *,
        promote: bool,
        history_event: HistoryEvent | Mapping[str, Any],
        expected_champion: int | None | str = "any",
        alias: str | None = None,
    ) -> int:
        """Write a new immutable version atomically and optionally make it the champion.

        Args:
            write: called as ``write(folder, version)``; writes the version's files into the
                (empty, temporary) ``folder`` and returns the metadata (a record or a mapping).
                It must not write ``metadata.json``; this method adds ``version``, ``files``
                (SHA-256 of every file) and ``schema_version`` and writes it.
            promote: move the ``champion`` alias to the new version.
            history_event: fields of the history line (``event``, ``run_id``, ``reason`` ...);
                ``version`` and ``metadata_sha256`` are added.
            expected_champion: with ``promote``, the champion the new version was judged
                against (None: there was none). If another run moved the champion since, the
                new version was never compared with the current one: nothing is written and
                ChampionChangedError is raised. ``"any"`` skips the check.
            alias: without ``promote``, an alias (``challenger``, :func:`models.aliases.check_alias_name`)
                to point at the new version; its commit line names it (``alias``).

        Returns:
            The new version number.

        Raises:
            Whatever ``write`` raises; the temporary folder is removed and nothing becomes
            visible. A hard crash leaves only a hidden ``.tmp-*`` folder, or a version folder
            without its history line (not a version; both removed by the next publish, see
            :meth:`gc`). RegistryError for a damaged alias file and ChampionChangedError (see
            ``expected_champion``), both before anything is written. AliasNotWrittenError
            (with ``promote``): the version is committed and is the champion, but
            ``aliases.json`` could not be written (see :meth:`_write_aliases_committed`).
        """
        if alias is not None:
            alias = check_alias_name(alias)
        with self._lock():
            aliases = self._reconcile_unlocked()  # raises on a damaged alias file, before any write
            if promote and expected_champion != "any" and aliases.get(CHAMPION) != expected_champion:
                raise ChampionChangedError(
                    f"{self.model}: the champion is now version {aliases.get(CHAMPION)}, but this run was judged "
                    f"against {'no champion' if expected_champion is None else f'version {expected_champion}'} "
                    "(another run promoted or rolled back meanwhile); nothing was published")
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            try:
                self._gc_unlocked()
            except (RegistryError, OSError) as err:  # a missing history, an undeletable folder: publish anyway
                log.warning("%s; uncommitted version folders not removed", err)
            open_for_append(self.history_path).close()  # gc's guard; never through a link
            version = self._next_version()
            tmp = self.versions_dir / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                metadata = stored_json(write(tmp, version), METADATA_SCHEMA_VERSION)
                if (tmp / METADATA_FILE).exists():
                    raise RegistryError(f"the version writer must not write {METADATA_FILE} itself")
                files = sorted(p for p in tmp.rglob("*") if p.is_file())
                metadata["version"] = version
                metadata["files"] = {str(p.relative_to(tmp)): sha256_file(p) for p in files}
                with open(tmp / METADATA_FILE, "w") as fh:
                    json.dump(metadata, fh, indent=2, sort_keys=True, default=json_default)
                meta_digest = sha256_file(tmp / METADATA_FILE)
                (tmp / METADATA_HASH_FILE).write_text(meta_digest + "\n")
                for path in [*files, tmp / METADATA_FILE, tmp / METADATA_HASH_FILE]:
                    fsync_path(path)
                make_read_only(tmp)  # files and folders: nothing can be written or renamed into it
                for d in sorted({p for p in tmp.rglob("*") if p.is_dir()} | {tmp}, key=lambda p: -len(p.parts)):
                    fsync_path(d)
                os.rename(tmp, self.versions_dir / str(version))  # same parent: allowed for a read-only folder
                fsync_path(self.versions_dir)
            except BaseException:
                try:
                    remove_tree(tmp)
                except OSError:
                    log.warning("%s: could not remove %s; the next publish does", self.model, tmp)
                raise
            # The commit point: from this line on the version exists for verify() and the audit.
            self._append_history_unlocked({**stored_json(history_event, HISTORY_SCHEMA_VERSION), "version": version,
                                           "metadata_sha256": meta_digest,
                                           "champion_after": version if promote else aliases.get(CHAMPION),
                                           **({"alias": alias} if alias and not promote else {})})
            if promote or alias:
                aliases[CHAMPION if promote else alias] = version
                self._write_aliases_committed(aliases, f"version {version}", version)
            return version

    def rollback(self, to: int, *, reason: str, run_id: str | None = None) -> int | None:
        """Move the champion alias back (or forward) to an existing, intact version
        (:func:`models.aliases.rollback`; the previous champion: :func:`models.aliases.rollback_previous`).

        Returns the previous champion. Raises RegistryError for an unknown version or one
        that is already the champion, IntegrityError for a damaged one, and
        AliasNotWrittenError when the rollback is committed but ``aliases.json`` could not be
        written (the rollback is in effect for every reader). A damaged ``aliases.json`` is
        rewritten from the history, and the line records ``repaired_alias_file``.
        """
        from models.aliases import rollback

        return rollback(self, to, reason=reason, run_id=run_id)

    def retire_champion(self, *, reason: str, run_id: str | None = None) -> int:
        """Remove the champion alias, so that the next training run is judged by its thresholds
        and baselines alone, as a first model is. The way out when the champion can no longer be
        compared — a spec that dropped a feature the champion needs makes every champion rule
        fail closed — without editing the registry by hand. Versions stay as they are; a
        rollback makes any intact version the champion again.

        Returns the retired champion's version. Raises RegistryError when there is no champion
        or ``reason`` is empty (it is recorded in the history), and AliasNotWrittenError when
        the retirement is committed but ``aliases.json`` could not be written.
        """
        reason = _require_reason(reason, "retiring the champion")
        if not self.exists():
            raise RegistryError(f"no model named {self.model!r} in the registry at {self.root.resolve()}")
        with self._lock():
            aliases = self._reconcile_unlocked()
            previous = aliases.get(CHAMPION)
            if previous is None:
                raise RegistryError(f"{self.model} has no champion to retire")
            self._append_history_unlocked(ChampionRetired(version=previous, reason=reason, run_id=run_id))
            del aliases[CHAMPION]
            self._write_aliases_committed(aliases, f"the retirement of version {previous}", previous)
            return previous


_UNREAD = object()


def _require_reason(reason: str, what: str) -> str:
    if not (reason or "").strip():
        raise RegistryError(f"{what} needs a reason: it is recorded in the history for the model's validators")
    return reason.strip()
