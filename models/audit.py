"""The integrity audit of one model (``finml registry verify``): the hash chain and signatures of
``history.jsonl`` (alias lines included, and that they name committed versions; approval lines
and the four-eyes rule, :func:`models.approvals.approval_problems`), every version
folder's files and metadata, and the chain of
``monitoring.jsonl``, with the first break named. See ``docs/registry.md`` (Integrity)."""

from __future__ import annotations

from dataclasses import dataclass, field

from models.approvals import approval_problems
from models.errors import RegistryError
from models.integrity import ChainReport, IntegrityError, check_chain, verify_version
from models.records.registry import Attested
from models.registry import ModelRegistry
from models.registry_tree import committed_versions, version_folders
from models.signing import SIGNATURE_KEY


@dataclass
class AuditReport:
    """What :func:`audit_model` found: the two chain reports, the versions that passed, those no
    valid signature vouches for in signed mode (``unsigned_versions``), those not checked because a
    history line is damaged (``unchecked_versions``: every load refuses them), and ``breaks`` (every
    problem once, the first break first: history, then versions in ascending order, then
    monitoring)."""

    model: str
    signed_mode: bool
    history: ChainReport | None = None
    monitoring: ChainReport | None = None
    verified: list[int] = field(default_factory=list)
    unsigned_versions: list[int] = field(default_factory=list)
    unchecked_versions: list[int] = field(default_factory=list)
    breaks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No break found (see :attr:`unchecked_signatures` for what unsigned mode did not check)."""
        return not self.breaks

    @property
    def unchecked_signatures(self) -> int:
        """Unsigned mode: the history lines that carry a signature nobody checked (no key)."""
        return 0 if self.signed_mode or self.history is None else self.history.unchecked_signatures


def audit_model(registry: ModelRegistry) -> AuditReport:
    """Check everything the registry holds for one model, without stopping at the first problem.

    Raises:
        RegistryError: a bad key file (before anything is checked).
    """
    keys = registry.keys
    report = AuditReport(registry.model, keys is not None)
    report.history = check_chain(registry.history_path, keys)
    report.breaks += report.history.breaks
    committed = committed_versions(report.history.records)
    report.breaks += alias_problems(report.history.records, committed)
    report.breaks += approval_problems(report.history.records)  # four eyes: models.approvals
    for version in version_folders(registry.versions_dir):
        if report.history.damaged:  # already a break; every reader of the history refuses it, loads included
            report.unchecked_versions.append(version)
            continue
        if version not in committed:
            report.breaks.append(f"version {version}: its folder has no commit line in history.jsonl (a publication "
                                 "that crashed, which finml registry gc removes; or its commit line was removed)")
            continue
        try:
            verify_version(registry.version_dir(version), registry.model, version, registry.history_path, None,
                           files_only=True)
        except (IntegrityError, RegistryError, OSError) as err:
            report.breaks.append(str(err))
            continue
        if keys is not None and not report.history.signed_commit(version):
            report.unsigned_versions.append(version)
            commit = next(r for r in report.history.records if r.get("version") == version and r.get("metadata_sha256"))
            report.breaks.append(
                f"version {version}: the signature of its commit line does not verify: loads refuse it"
                if SIGNATURE_KEY in commit else
                f"version {version}: no signed line vouches for it (committed before signing was turned on, or "
                f"forged): loads refuse it; finml registry sign {registry.model} vouches for the versions you trust")
            continue
        report.verified.append(version)
    report.monitoring = check_chain(registry.monitoring_path, None, signed=False)
    report.breaks += report.monitoring.breaks
    report.breaks += data_store_problems(registry)
    return report


def alias_problems(records: list[dict], committed: set[int]) -> list[str]:
    """History lines that point an alias (``alias_moved``, a rolled-forward challenger, a rollback)
    at a version no line commits — an edited or forged alias line — one sentence each (line
    numbers count the whole JSON lines from 1; a damaged line is named by the chain check)."""
    problems = []
    for n, rec in enumerate(records, 1):
        kind = rec.get("event")
        if kind in ("alias_moved", "rolled_back") and rec.get("version") is not None \
                and int(rec["version"]) not in committed:
            name = rec.get("alias") or "champion"
            problems.append(f"history.jsonl record {n} ({kind}): the alias {name} names version {rec['version']}, "
                            "which no line commits (an edited or forged line)")
    return problems


def data_store_problems(registry: ModelRegistry) -> list[str]:
    """Problems of the model's scoring ledger, joined outcomes (:meth:`models.parquet_parts.PartStore.verify`)
    and back-test history (its hash chain), one sentence each; empty when intact or absent."""
    from models.ledger import BACKTESTS, ledger_store
    from models.parquet_parts import PartStore

    problems = ledger_store(registry.root, registry.model).verify()
    problems += PartStore(registry.root, registry.model, "outcomes").verify()
    if not problems:  # both stores read: every joined outcome must still find its ledger row and score
        from models.ledger import check_joined_rows, read_ledger

        try:
            joined = PartStore(registry.root, registry.model, "outcomes").read(["id", "run_id", "as_of", "score"])
            if not joined.empty:
                check_joined_rows(joined, read_ledger(registry.root, registry.model))
        except RegistryError as err:
            problems.append(f"outcomes: {err}")
    path = registry.dir / BACKTESTS
    if path.exists():
        problems += [f"{BACKTESTS}: {b}" for b in check_chain(path, None, signed=False).breaks]
    return problems


def describe_chain(chain: ChainReport, signed_mode: bool) -> str:
    """One clause for a chain report: lines (damaged ones counted and named), whether the chain holds,
    legacy lines, signatures."""
    damaged = f" ({chain.damaged_lines} damaged)" if chain.damaged_lines else ""
    parts = [f"{chain.path.name}: {chain.lines} line(s){damaged}, {'chain intact' if not chain.breaks else 'BROKEN'}"]
    if chain.legacy:
        parts.append(f"unchained legacy lines: {chain.legacy}")
    if signed_mode and chain.path.name == "history.jsonl":
        parts.append(f"signatures verified: {chain.signed}")
        if chain.first_signed is None:
            parts.append("no line carries a signature")
        elif chain.unsigned_before:
            parts.append(f"unsigned lines before the first signed one: {chain.unsigned_before}")
    if chain.torn_last_line:
        parts.append("a torn last line skipped")
    return ", ".join(parts)


def unchecked_signatures_warning(report: AuditReport) -> str | None:
    """Unsigned mode on a history whose lines carry signatures: what was not checked, in words
    (None when nothing was left unchecked)."""
    n = report.unchecked_signatures
    if not n:
        return None
    return (f"{n} history line(s) carry signatures that were NOT checked because no key is configured (set "
            "FINML_VERIFY_KEY_FILE to the public key); the hash chain and the files were checked, but the last "
            "line's content is covered only by a signature check, so an edit of it is not detected without the key")


def attest_unsigned(registry: ModelRegistry, reason: str) -> list[int]:
    """Signed mode: vouch, with the signing key, for every committed version that no signed line
    vouches for yet (committed before signing was turned on) and whose files pass their hash
    check: one signed ``attested`` line each, naming its ``metadata_sha256``. The hash check is
    unkeyed: run it only on a registry you trust as it is (``finml registry verify`` passing).

    Returns:
        The versions attested (empty when there was nothing to do).

    Raises:
        RegistryError: not in signed mode, or no signing key; IntegrityError: a version fails its
            hash check (nothing is attested then).
    """
    keys = registry.keys
    if keys is None or not keys.can_sign:
        raise RegistryError("vouching for versions needs the signing key: set FINML_SIGNING_KEY_FILE")
    chain = check_chain(registry.history_path, keys)
    if chain.breaks:
        raise RegistryError(f"{registry.model}: the history fails its check ({chain.breaks[0]}); nothing attested")
    todo = [v for v in sorted(committed_versions(chain.records)) if not chain.signed_commit(v)
            and (registry.versions_dir / str(v)).is_dir()]
    for version in todo:  # every one is checked before any is attested
        verify_version(registry.version_dir(version), registry.model, version, registry.history_path, None,
                       files_only=True)
    for version in todo:
        digest = next(r["metadata_sha256"] for r in chain.records
                      if r.get("version") == version and r.get("metadata_sha256"))
        registry.append_history(Attested(version=version, metadata_sha256=digest, reason=reason))
    return todo
