"""Aliases of a model's versions beyond ``champion``: ``challenger`` (a version kept for shadow
scoring and monitoring, which serves no decision) and names a team chooses; and the moves of the
champion alias itself (rollback to a version, to the previous champion, or a challenger rolled
forward). Every move is one history line, hash-chained like the others (``finml registry verify``
checks it), and ``aliases.json`` is brought in line with the history by every reader.

The functions take a :class:`models.registry.ModelRegistry` and write under its lock; the rules
and the history lines are in ``docs/governance.md`` (Aliases) and ``docs/registry.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from models.errors import RegistryError
from models.records.registry import AliasMoved, AliasRemoved, RolledBack
from models.registry_tree import (  # noqa: F401 (the alias names and readers: re-exported)
    ALIAS_NAME,
    CHALLENGER,
    CHAMPION,
    alias_from_history,
    aliases_in_effect,
    champion_statement,
    check_alias_name,
    named_aliases_from_history,
)

log = logging.getLogger(__name__)

Registry = Any
"""A :class:`models.registry.ModelRegistry` (not imported here: it imports this module)."""

def champion_terms(history: Iterable[Mapping[str, Any]]) -> list[int | None]:
    """The champions in office one after the other, oldest first (None: a time without one,
    after a retirement), each change once, by the history's champion statements."""
    terms: list[int | None] = []
    for line in history:
        said, version = champion_statement(line)
        if said and (not terms or terms[-1] != version):
            terms.append(version)
    return terms


def previous_champion(history: Iterable[Mapping[str, Any]]) -> int | None:
    """The version that was the champion before the current one: the latest earlier champion
    other than it (times without a champion skipped); with no champion now (retired), the last
    one. None when there is no such version (the first champion, or none ever)."""
    terms = champion_terms(history)
    current = terms[-1] if terms else None
    for version in reversed(terms[:-1] if current is not None else terms):
        if version is not None and version != current:
            return version
    return None


def _require_reason(reason: str | None, what: str) -> str:
    if not (reason or "").strip():
        raise RegistryError(f"{what} needs a reason: it is recorded in the history for the model's validators")
    return reason.strip()


def _existing(registry: Registry) -> None:
    if not registry.exists():
        raise RegistryError(f"no model named {registry.model!r} in the registry at {registry.root.resolve()}")


def move_alias(registry: Registry, name: str, to: int, *, reason: str, run_id: str | None = None) -> int | None:
    """Point the alias ``name`` at version ``to`` (an intact version: its hashes are checked
    first); one ``alias_moved`` history line (the commit point), then ``aliases.json``.

    Returns:
        The version the alias named before (None: it was not set).

    Raises:
        RegistryError: a bad name (:func:`check_alias_name`), an empty reason, an unknown version,
            one the alias already names, or the champion as ``challenger`` (a challenger is a
            version that does not serve). IntegrityError: ``to`` fails its hash check.
            AliasNotWrittenError: committed, but ``aliases.json`` could not be written.
    """
    name = check_alias_name(name)
    reason = _require_reason(reason, f"moving the alias {name}")
    _existing(registry)
    to = int(to)
    with registry._lock():
        registry.verify(to)
        aliases = registry._reconcile_unlocked()
        previous = aliases.get(name)
        if previous == to:
            raise RegistryError(f"{registry.model}: the alias {name} already names version {to}")
        if name == CHALLENGER and aliases.get(CHAMPION) == to:
            raise RegistryError(f"{registry.model}: version {to} is the champion; a challenger is a version that "
                                "does not serve decisions")
        registry._append_history_unlocked(AliasMoved(alias=name, version=to, previous=previous, reason=reason,
                                                     run_id=run_id))
        aliases[name] = to
        registry._write_aliases_committed(aliases, f"the move of the alias {name} to version {to}", to)
        return previous


def remove_alias(registry: Registry, name: str, *, reason: str) -> int:
    """Remove the alias ``name``: one ``alias_removed`` line, then ``aliases.json``.

    Returns:
        The version it named. Raises RegistryError: a bad name, an empty reason, or no such alias.
    """
    name = check_alias_name(name)
    reason = _require_reason(reason, f"removing the alias {name}")
    _existing(registry)
    with registry._lock():
        aliases = registry._reconcile_unlocked()
        if name not in aliases:
            raise RegistryError(f"{registry.model}: no alias {name!r} (aliases: {_listed(aliases)})")
        version = aliases.pop(name)
        registry._append_history_unlocked(AliasRemoved(alias=name, version=version, reason=reason))
        registry._write_aliases_committed(aliases, f"the removal of the alias {name}", version)
        return version


def _listed(aliases: Mapping[str, int]) -> str:
    return ", ".join(f"{n}={v}" for n, v in sorted(aliases.items())) or "none"


def _rollback_unlocked(registry: Registry, to: int, *, reason: str, run_id: str | None,
                       from_alias: str | None = None) -> tuple[int | None, dict[str, int]]:
    """The champion move of :func:`rollback`, under the caller's lock: ``(previous, aliases)``
    with the aliases not yet written."""
    registry.verify(to)
    repaired = None
    try:
        aliases = registry._reconcile_unlocked()
    except RegistryError as err:  # a damaged alias file: rollback is how it is rewritten
        repaired = str(err)
        log.warning("%s; rewriting it with the aliases from history and this rollback", err)
        aliases = aliases_in_effect({}, registry.history())
    previous = aliases.get(CHAMPION)
    if previous == int(to) and not repaired:
        raise RegistryError(f"{registry.model}: version {to} is already the champion")
    registry._append_history_unlocked(RolledBack(
        version=int(to), previous_champion=previous, champion_after=int(to), reason=reason, run_id=run_id,
        repaired_alias_file=repaired, from_alias=from_alias))  # the commit point, then the alias
    aliases[CHAMPION] = int(to)
    return previous, aliases


def rollback(registry: Registry, to: int, *, reason: str, run_id: str | None = None) -> int | None:
    """Move the champion alias back (or forward) to an existing, intact version; see
    :meth:`models.registry.ModelRegistry.rollback`."""
    _existing(registry)
    with registry._lock():
        previous, aliases = _rollback_unlocked(registry, to, reason=reason, run_id=run_id)
        registry._write_aliases_committed(aliases, f"the rollback to version {to}", int(to))
        return previous


def rollback_previous(registry: Registry, *, reason: str, run_id: str | None = None) -> tuple[int | None, int]:
    """Make the previous champion (:func:`previous_champion` of the history) the champion again.

    Returns:
        ``(champion before, version rolled back to)``.

    Raises:
        RegistryError: no earlier champion to return to (named: the current champion and the
            versions); the errors of :func:`rollback`.
    """
    _existing(registry)
    target = previous_champion(registry.history())
    if target is None:
        champion = registry.champion()
        now = f"version {champion} is the first champion" if champion is not None else "it has never had a champion"
        raise RegistryError(f"{registry.model}: no previous champion to roll back to: {now} (versions: "
                            f"{registry.list_versions() or 'none'}); use --to N for a version that never was one")
    with registry._lock():
        if previous_champion(registry.history()) != target:  # another writer moved it meanwhile
            raise RegistryError(f"{registry.model}: the champion moved while rolling back; run the rollback again")
        previous, aliases = _rollback_unlocked(registry, target, reason=reason, run_id=run_id)
        registry._write_aliases_committed(aliases, f"the rollback to version {target}", target)
        return previous, target


def promote_alias(registry: Registry, name: str = CHALLENGER, *, reason: str,
                  run_id: str | None = None) -> tuple[int | None, int]:
    """Roll the version an alias names (the challenger) forward to champion, and remove the
    alias: two history lines under one lock (``rolled_back`` with ``from_alias``, then
    ``alias_removed``), then ``aliases.json`` once.

    Returns:
        ``(champion before, new champion)``.

    Raises:
        RegistryError: a bad name, an empty reason, the alias not set; the errors of :func:`rollback`.
    """
    name = check_alias_name(name)
    reason = _require_reason(reason, f"rolling the {name} forward to champion")
    _existing(registry)
    with registry._lock():
        aliases = registry._reconcile_unlocked()
        if name not in aliases:
            raise RegistryError(f"{registry.model}: no alias {name!r} to roll forward (aliases: {_listed(aliases)})")
        version = aliases[name]
        previous, aliases = _rollback_unlocked(registry, version, reason=reason, run_id=run_id, from_alias=name)
        registry._append_history_unlocked(AliasRemoved(alias=name, version=version, run_id=run_id,
                                                       reason=f"rolled forward to champion: {reason}"))
        aliases.pop(name, None)
        registry._write_aliases_committed(aliases, f"the roll forward of {name} version {version}", version)
        return previous, version
