"""Integrity of the registry: the hash chain of the append-only files (``history.jsonl``,
``monitoring.jsonl``), the check of a version's files from the very bytes that are then
deserialised, and the signature checks of signed mode (:mod:`models.signing`). What each check
protects against, and what it does not: ``docs/registry.md`` (Integrity).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import RegistryError
from models.jsonl import last_line_start, open_for_read
from models.signing import SIGNATURE_KEY, SigningKeys

log = logging.getLogger(__name__)

PREV_KEY = "prev_sha256"
"""The key of a chained line that holds the SHA-256 of the line before it (its stored bytes,
without the newline); the first line of a file holds :data:`GENESIS`."""
GENESIS = "0" * 64
METADATA_FILE = "metadata.json"
METADATA_HASH_FILE = "metadata.sha256"


class IntegrityError(RegistryError):
    """A version's files do not match the SHA-256 hashes recorded when it was written, or (signed
    mode) its history line's signature does not verify."""


def line_digest(raw: bytes) -> str:
    """Hex SHA-256 of one stored line (its bytes without the final newline)."""
    return hashlib.sha256(raw).hexdigest()


def record_lines(path: Path) -> list[bytes]:
    """The non-blank lines of a JSON-lines file as stored (``[]`` when it does not exist), split
    at ``\\n`` as :func:`models.jsonl.read_jsonl` splits them."""
    if not path.is_file():
        return []
    return [line for line in path.read_bytes().split(b"\n") if line.strip()]


def _parses(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def previous_line(path: Path) -> bytes | None:
    """The stored line a new append will follow: the last non-blank line, or the one before it
    when the last does not parse (a torn line, which :func:`models.jsonl.append_jsonl` cuts off).
    Reads backwards from the end, so a long file costs only its last lines. Call under the lock."""
    if not path.is_file():
        return None
    found: list[bytes] = []
    with open(path, "rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        while end > 0 and len(found) < 2:
            start = last_line_start(fh, end)
            fh.seek(start)
            chunk = fh.read(end - start)
            line = chunk[:-1] if chunk.endswith(b"\n") else chunk
            if line.strip():
                found.append(line)
            end = start
    if found and _parses(found[0]):
        return found[0]
    return found[1] if len(found) > 1 else None


def chain_record(record: Mapping[str, Any], path: Path, keys: SigningKeys | None, sign: bool) -> dict[str, Any]:
    """``record`` with ``prev_sha256`` (the SHA-256 of the line it follows, :data:`GENESIS` for the
    first) and, with ``sign``, its signature (``keys`` must hold the private key). Call under
    the file's lock, right before the append.

    Raises:
        RegistryError: ``sign`` without a private key (see :meth:`SigningKeys.sign`).
    """
    prev = previous_line(path)
    out = {k: v for k, v in record.items() if k not in (PREV_KEY, SIGNATURE_KEY)}
    out[PREV_KEY] = GENESIS if prev is None else line_digest(prev)
    if sign and keys is not None:
        return keys.sign(out)
    return out


@dataclass
class ChainReport:
    """What :func:`check_chain` found in one JSON-lines file.

    ``lines``: every non-blank line of the file (damaged and torn ones included);
    ``damaged_lines``: lines before the last that are not a JSON object; ``legacy``: unchained
    lines before the first chained one (written before the chain existed); ``signed``: lines whose
    signature verified; ``first_signed``: the number of the first line that carries a signature
    (None: no line does); ``unsigned_before``: unsigned lines before it (signed mode; every line
    when no line is signed); ``unchecked_signatures``: signed lines read without a key; ``breaks``:
    problems, first one first (line numbers from 1).
    """

    path: Path
    lines: int = 0
    damaged_lines: int = 0
    legacy: int = 0
    signed: int = 0
    first_signed: int | None = None
    unsigned_before: int = 0
    unchecked_signatures: int = 0
    torn_last_line: bool = False
    breaks: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    signature_ok: list[bool] = field(default_factory=list)
    """Parallel to ``records``: whether the line's signature verified."""
    damaged: str | None = None
    """The first line before the last that is not a JSON object, as the readers' error names it."""

    def signed_commit(self, version: int) -> bool:
        """Signed mode: True when a line whose signature verified vouches for ``version``: its
        commit line, or a later ``attested`` line (``finml registry sign``) naming the same
        ``metadata_sha256`` as the commit line."""
        lines = [(rec, ok) for rec, ok in zip(self.records, self.signature_ok, strict=True)
                 if rec.get("version") == int(version) and rec.get("metadata_sha256")]
        return bool(lines) and any(ok and rec["metadata_sha256"] == lines[0][0]["metadata_sha256"]
                                   for rec, ok in lines)


def check_chain(path: Path, keys: SigningKeys | None = None, signed: bool = True,
                lines: list[bytes] | None = None) -> ChainReport:
    """Walk a JSON-lines file and check that every chained line names the SHA-256 of the line
    before it and, with ``keys`` and ``signed``, that every line from the first signed one on has
    a signature that verifies. A line removed, inserted, reordered or edited breaks the link of
    the line after it (or its own signature); a torn last line (a crash while appending) is
    skipped, as readers skip it.

    Args:
        lines: the file's lines already read (:func:`record_lines`), so that a caller checks the
            same bytes it then uses.
    """
    raw_lines = record_lines(path) if lines is None else lines
    report = ChainReport(path, lines=len(raw_lines))
    chained = signed_seen = False
    damaged: set[int] = set()
    for i, raw in enumerate(raw_lines):
        n = i + 1
        try:
            rec = json.loads(raw)
            if not isinstance(rec, dict):
                raise TypeError("not a JSON object")
        except (ValueError, TypeError) as err:
            if i == len(raw_lines) - 1:
                report.torn_last_line = True
                continue
            report.breaks.append(f"{path.name} line {n} is damaged ({err})")
            report.damaged_lines += 1
            damaged.add(i)
            report.damaged = report.damaged or f"{path}: line {n} is damaged ({err})"
            continue
        report.records.append(rec)
        report.signature_ok.append(False)
        if PREV_KEY in rec:
            expected = GENESIS if i == 0 else line_digest(raw_lines[i - 1])
            if rec[PREV_KEY] != expected and i - 1 not in damaged:  # after a damaged line: that break is named
                what = ("names a predecessor but this is the first line (lines removed from the start)" if i == 0
                        else f"does not match line {n - 1} (a line before it was edited, removed or reordered)")
                report.breaks.append(f"{path.name} line {n}: prev_sha256 {what}")
            chained = True
        elif chained:
            report.breaks.append(f"{path.name} line {n} has no prev_sha256 after chained lines (inserted, or "
                                 "edited without the chain)")
        else:
            report.legacy += 1
        if not signed:
            continue
        if SIGNATURE_KEY in rec and report.first_signed is None:
            report.first_signed = n
        if keys is None:
            report.unchecked_signatures += SIGNATURE_KEY in rec
            continue
        if SIGNATURE_KEY in rec or signed_seen:
            problem = keys.check(rec)
            if problem is None:
                report.signed += 1
                report.signature_ok[-1] = True
            elif problem == "not signed":
                report.breaks.append(f"{path.name} line {n} is not signed though a line before it is (written "
                                     "without the signing key, or forged)")
            else:
                report.breaks.append(f"{path.name} line {n}: {problem}")
            signed_seen = True
        else:
            report.unsigned_before += 1
    return report


@dataclass
class VerifiedVersion:
    """A version whose checks passed: its ``metadata`` (parsed from the checked bytes) and the
    checked bytes of the files asked for (relative path → bytes); load from these, never from
    the folder again."""

    version: int
    metadata: dict[str, Any]
    files: dict[str, bytes]
    history: list[dict[str, Any]] = field(default_factory=list)
    """The history lines the check read (in signed mode: whose chain and signatures it checked)."""


def _read(path: Path) -> bytes:
    with open_for_read(path) as fh:  # a link planted in a version folder is refused, never followed
        return fh.read()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read ``chunk`` bytes at a time.

    Raises:
        RegistryError: the path is a symbolic link (never followed).
        OSError: the file cannot be read.
    """
    h = hashlib.sha256()
    with open_for_read(path) as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_version(vdir: Path, model: str, version: int, history_path: Path, keys: SigningKeys | None,
                   keep: Collection[str] | Callable[[str], bool] = (), files_only: bool = False) -> VerifiedVersion:
    """Check a version: ``metadata.json`` against ``metadata.sha256`` and the SHA-256 its history
    commit line records; every recorded file against its SHA-256; no unrecorded file; and, with
    ``keys`` (signed mode), the history's chain and signatures (:func:`check_chain`), its commit
    line signed included. A file in ``keep`` is read once and the bytes hashed are the bytes
    returned; the others are hashed as they stream and never returned.

    Args:
        keep: relative paths whose checked bytes to return (the files the caller deserialises),
            or a predicate on the relative paths recorded in the metadata.
        files_only: skip the chain and signature checks (a caller that made them itself).

    Raises:
        IntegrityError: naming each problem (``SignatureError`` for a signature or chain problem
            in signed mode); RegistryError: a damaged history line.
    """
    meta_path = vdir / METADATA_FILE
    if not meta_path.is_file():
        raise IntegrityError(f"{vdir}: {METADATA_FILE} is missing")
    wanted = keep if callable(keep) else set(keep).__contains__
    history_lines = record_lines(history_path)
    chain = check_chain(history_path, None if files_only else keys, signed=not files_only, lines=history_lines)
    if chain.damaged:  # as every reader of the history refuses it (models.jsonl.read_jsonl)
        raise RegistryError(chain.damaged)
    if keys is None and chain.unchecked_signatures:
        log.warning("%s: its history is signed but no FINML_VERIFY_KEY_FILE is configured: signatures not checked",
                    model)
    commit = next((rec for rec in chain.records if rec.get("version") == int(version)
                   and rec.get("metadata_sha256")), None)
    if keys is not None and not files_only:
        _check_signed(model, version, chain, commit)
    problems = []
    meta_bytes = _read(meta_path)
    meta_digest = hashlib.sha256(meta_bytes).hexdigest()
    hash_path = vdir / METADATA_HASH_FILE
    if not hash_path.is_file():
        problems.append(f"{METADATA_HASH_FILE}: missing")
    elif _read(hash_path).decode(errors="replace").strip() != meta_digest:
        problems.append(f"{METADATA_FILE}: SHA-256 differs from {METADATA_HASH_FILE}")
    if commit is None:
        problems.append("no history.jsonl line records this version (its publication was interrupted "
                        "before the commit point), so it was never committed")
    elif commit["metadata_sha256"] != meta_digest:
        problems.append(f"{METADATA_FILE}: SHA-256 differs from the one recorded in history.jsonl")
    try:
        metadata = json.loads(meta_bytes)
    except ValueError as err:
        raise IntegrityError(f"{model} version {version}: {METADATA_FILE} is not valid JSON ({err})") from None
    recorded: dict[str, str] = metadata.get("files", {}) if isinstance(metadata, dict) else {}
    kept: dict[str, bytes] = {}
    for rel, digest in sorted(recorded.items()):
        path = vdir / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
            continue
        data = _read(path) if wanted(rel) else None  # a file that is not deserialised is hashed as it streams
        if (hashlib.sha256(data).hexdigest() if data is not None else sha256_file(path)) != digest:
            problems.append(f"{rel}: SHA-256 differs from the recorded hash")
        elif data is not None:
            kept[rel] = data
    present = {str(p.relative_to(vdir)) for p in vdir.rglob("*") if p.is_file()}
    for rel in sorted(present - set(recorded) - {METADATA_FILE, METADATA_HASH_FILE}):
        problems.append(f"{rel}: not recorded in {METADATA_FILE}")
    if problems:
        raise IntegrityError(f"{model} version {version} failed its integrity check: " + "; ".join(problems))
    missing = [] if callable(keep) else sorted(set(keep) - set(kept))
    if missing:
        raise IntegrityError(f"{model} version {version}: {', '.join(missing)} not recorded in {METADATA_FILE}")
    return VerifiedVersion(int(version), metadata, kept, chain.records)


class SignatureError(IntegrityError):
    """Signed mode: a history line's signature or the chain does not verify, or the version was
    committed unsigned; nothing of the version is deserialised."""


def _check_signed(model: str, version: int, chain: ChainReport, commit: Mapping[str, Any] | None) -> None:
    if chain.breaks:
        raise SignatureError(f"{model}: history.jsonl fails its signature check, so no version of it is loaded: "
                             f"{chain.breaks[0]}" + (f" (and {len(chain.breaks) - 1} more; run finml registry "
                                                     f"verify {model})" if len(chain.breaks) > 1 else ""))
    if commit is not None and not chain.signed_commit(version):
        raise SignatureError(
            f"{model} version {version} was committed by an unsigned history line (published before signing was "
            "turned on, or forged) and no signed line vouches for it, so it is not loaded; if it is one you trust, "
            f"vouch for it with the signing key: finml registry sign {model} (or train a new version)")


def check_signed_champion(model: str, version: int, named: tuple[bool, int | None], alias: str = "champion") -> None:
    """Signed mode: the version loaded by an alias (the champion, a challenger) must be the one the
    checked history names (``named``: :func:`models.registry_tree.champion_from_history`, or
    :func:`models.aliases.alias_from_history`, of the lines the check read), not one taken from
    ``aliases.json`` (unsigned) or from a history read before it changed.

    Raises:
        SignatureError: the checked history names another version for the alias, or none.
    """
    if named != (True, int(version)):
        raise SignatureError(f"{model}: the signed history does not name version {version} the {alias} (it names "
                             f"{named[1] if named[0] else 'none'}; aliases.json is not signed); not loaded")
