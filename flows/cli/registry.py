"""``finml registry``: list the models, show a version, move or remove the champion and the other
aliases, read a model's history, verify the registry's integrity and create a signing key pair."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from flows.cli.common import cli_table, console, err_console, _existing_model, _fail, _fmt, _registry_errors


def registry_list(
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON (a damaged model with its error)."),
) -> None:
    """Every model in the registry with its champion version and primary metric."""
    from models.registry import ModelRegistry, RegistryError, list_models
    from models.settings import get_settings

    root = get_settings().registry_dir.resolve()
    if root.exists() and not root.is_dir():
        _fail(f"FINML_REGISTRY_DIR={root}: not a folder")
    names = list_models(root)
    if not names and not as_json:
        console.print(f"The registry at {root} is empty. Train a model first: finml train MODEL")
        return
    rows: list[dict] = []
    table = cli_table(f"Registry {root}", ("model", "champion", "primary metric", "value", "versions", "champion created", "last event"))
    damaged: list[str] = []
    for name in names:
        try:
            reg = ModelRegistry(root, name)
            champ = reg.champion()
            metric = value = created = "-"
            if champ is not None:
                meta = reg.version_metadata(champ)  # never show a figure from a file that fails its hash check
                metric = meta.primary_metric
                value = _fmt(meta.metrics.get(metric))
                created = meta.created_at
            history = reg.history_events()
        except (RegistryError, OSError, ValueError, KeyError) as err:  # one damaged model must not hide the others
            table.add_row(name, "?", "-", "-", "-", "-", f"damaged: {err}")
            rows.append({"model": name, "damaged": str(err)})
            damaged.append(name)
            continue
        last = f"{history[-1].event} {history[-1].ts}" if history else "-"
        table.add_row(name, f"v{champ}" if champ else "-", metric, value,
                      ", ".join(map(str, reg.list_versions())) or "-", created, last)
        rows.append({"model": name, "champion": champ, "primary_metric": None if metric == "-" else metric,
                     "value": meta.metrics.get(metric) if champ is not None else None,
                     "versions": reg.list_versions(), "champion_created": None if created == "-" else created,
                     "last_event": history[-1].event if history else None,
                     "last_event_ts": history[-1].ts if history else None})
    if as_json:
        console.print_json(json.dumps({"registry": str(root), "models": rows}))
    else:
        console.print(table)
    if damaged:  # scripts must be able to tell
        _fail(f"damaged: {', '.join(damaged)} (see the table)")


def registry_show(
    model: str = typer.Argument(..., help="Model name."),
    version: Optional[str] = typer.Option(None, "--version", "-v",
                                          help="Version number or alias (default: the champion)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full metadata as JSON."),
) -> None:
    """A version's metrics, gate verdicts and lineage (hashes are checked first), and whether its
    recorded library versions match the installed ones (a version that does not is refused by every load)."""
    from models.compat import describe_libraries
    from models.registry import ModelRegistry
    from models.settings import get_settings

    with _registry_errors():
        reg = ModelRegistry(get_settings().registry_dir, model)
        number = reg.resolve(version)
        if as_json:  # the stored JSON as it is, after the hash check
            console.print_json(json.dumps(reg.verify(number), default=str))
            return
        meta = reg.version_metadata(number)
        aliases = [a for a, v in reg.aliases().items() if v == number]
    console.print(f"[bold]{model} v{number}[/] {('(' + ', '.join(aliases) + ')') if aliases else ''}  created {meta.created_at}")
    console.print(f"  candidate: {meta.selected_candidate.name} ({meta.selected_candidate.estimator})")
    console.print(f"  data: {meta.data['rows']} rows, sha256 {meta.data['sha256'][:16]}…; "
                  f"holdout {meta.holdout.rows} rows")
    console.print("  metrics: " + ", ".join(f"{k}={_fmt(v)}" for k, v in meta.metrics.items()))
    table = cli_table("Gate verdicts", ("rule", "metric", "value", "bound", "verdict", "sentence"))
    for v in meta.gate.verdicts:
        verdict = "PASS" if v.passed else "FAIL"
        table.add_row(v.rule, v.metric, _fmt(v.value), v.bound, verdict if v.applicable else "n/a", v.sentence)
    console.print(table)
    console.print(f"  code: git {meta.lineage.git.commit}  spec sha256 {meta.spec_sha256[:16]}…")
    console.print(f"  files: {len(meta.files)} (hashes verified); {describe_libraries(meta.to_json())}  "
                  f"model card: {reg.version_dir(number) / 'model_card.md'}", highlight=False, soft_wrap=True)


def registry_rollback(
    model: str = typer.Argument(..., help="Model name."),
    to: Optional[str] = typer.Option(None, "--to", help="Version to make the champion, or an alias (challenger) "
                                                       "to roll forward to champion (the alias is then removed)."),
    previous: bool = typer.Option(False, "--previous", help="Make the previous champion the champion again."),
    reason: str = typer.Option("manual rollback", help="Recorded in the history."),
) -> None:
    """Move the champion alias to an earlier (intact) version, to the previous champion, or roll a
    challenger forward to champion; recorded in the history with who and why."""
    from models.aliases import promote_alias, rollback_previous
    from models.registry_tree import is_version_name

    if (to is None) == (not previous):
        _fail("give --to N (or --to ALIAS) or --previous" + (", not both" if previous else ""), code=2)
    with _registry_errors():
        reg = _existing_model(model)
        if previous:
            before, target = rollback_previous(reg, reason=reason)
        elif is_version_name(to):
            before, target = reg.rollback(int(to), reason=reason), int(to)
        else:
            before, target = promote_alias(reg, to, reason=reason)
            console.print(f"{model}: {to} v{target} rolled forward; the alias {to} is removed", highlight=False)
    console.print(f"{model}: champion moved from v{before} to v{target}" if before not in (None, target)
                  else f"{model}: v{target} is the champion" + (" (there was none)" if before is None else ""))


def registry_alias(
    model: str = typer.Argument(..., help="Model name."),
    name: str = typer.Argument(..., help="Alias: challenger, or a name of your own (not champion)."),
    to: Optional[int] = typer.Option(None, "--to", help="Version the alias names from now on."),
    remove: bool = typer.Option(False, "--remove", help="Remove the alias."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the history; required)."),
) -> None:
    """Set, move or remove an alias other than the champion (a challenger is monitored and scored in
    the shadow, never serving decisions); recorded in the history with who and why."""
    from models.aliases import move_alias, remove_alias

    if (to is None) == (not remove):
        _fail("give --to N or --remove" + (", not both" if remove else ""), code=2)
    with _registry_errors():
        reg = _existing_model(model)
        if remove:
            was = remove_alias(reg, name, reason=reason)
            console.print(f"{model}: alias {name} removed (it named v{was})", highlight=False)
            return
        was = move_alias(reg, name, to, reason=reason)
    console.print(f"{model}: alias {name} moved from v{was} to v{to}" if was is not None
                  else f"{model}: alias {name} set to v{to}", highlight=False)


def registry_retire(
    model: str = typer.Argument(..., help="Model name."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the history; required)."),
) -> None:
    """Remove the champion alias: the next training run is judged by its thresholds and baselines
    alone, as a first model is (for a champion that can no longer be compared, e.g. after a spec
    dropped a feature it needs). Versions are kept; `registry rollback` restores any of them."""

    with _registry_errors():
        retired = _existing_model(model).retire_champion(reason=reason)
    console.print(f"{model}: champion v{retired} retired; the next training run is judged by its thresholds and "
                  f"baselines alone (undo: finml registry rollback {model} --to {retired})")


def registry_history(
    model: str = typer.Argument(..., help="Model name."),
    as_json: bool = typer.Option(False, "--json", help="Print every history event in full, as JSON."),
) -> None:
    """The model's history: promotions, rejections, stopped runs and rollbacks, oldest first."""
    with _registry_errors():
        events = _existing_model(model).history_events()
    if as_json:
        console.print_json(json.dumps({"model": model, "events": [e.model_dump(mode="json") for e in events]}))
        return
    table = cli_table(f"History of {model}", ("time", "event", "version", "who", "run", "details"))
    for e in events:
        details = getattr(e, "gate", None) or "; ".join(getattr(e, "failed_rules", None) or []) or ""
        alias = {"registered": "as {}", "rolled_back": "from {}"}.get(e.event, "{}").format(
            getattr(e, "alias", None) or getattr(e, "from_alias", None))
        if getattr(e, "alias", None) or getattr(e, "from_alias", None):  # alias moves, a challenger registered or rolled forward
            details = alias + (f" (was v{e.previous})" if getattr(e, "previous", None) else "") + \
                (f"; {details}" if details else "")
        if e.event == "stopped":  # bad data stopped the run before its gate: the error and its cause
            details = f"{getattr(e, 'error', None) or 'error'}: {getattr(e, 'cause', '')}"
        if e.reason and e.reason not in details:  # why the run was started, or why a rollback
            details = f"{details} (reason: {e.reason})" if details else e.reason
        table.add_row(e.ts or "-", e.event, _fmt(e.version), e.who or "-", str(e.run_id or "-")[:8], details)
    console.print(table)


def registry_gc(model: Optional[str] = typer.Argument(None, help="Model name (default: every model).")) -> None:
    """Remove version folders that crashed publications left uncommitted (never a committed version)."""
    from models.errors import RegistryError
    from models.registry import ModelRegistry, list_models
    from models.settings import get_settings

    root = get_settings().registry_dir
    with _registry_errors():
        names = [model] if model else list_models(root)
        registries = [_existing_model(model)] if model else [ModelRegistry(root, name) for name in names]
    failed = []
    for name, registry in zip(names, registries):
        try:
            removed = registry.gc()
        except RegistryError as err:  # a damaged model is named; the others are still collected
            failed.append(name)
            err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
            continue
        console.print(f"{name}: removed {', '.join(p.name for p in removed)} (never committed)" if removed
                      else f"{name}: nothing to remove", highlight=False)
    if failed:
        raise typer.Exit(1)


def registry_verify(model: Optional[str] = typer.Argument(None, help="Model name (default: every model).")) -> None:
    """Check every version's files and metadata, and the hash chain (and, with a key, the
    signatures) of the history and monitoring files; exit 1 naming the first break. Also exit 1,
    NOT VERIFIED, when the history carries signatures but no key is configured
    (FINML_VERIFY_KEY_FILE or FINML_SIGNING_KEY_FILE): they were not checked."""
    from models.audit import audit_model, describe_chain, unchecked_signatures_warning
    from models.registry import ModelRegistry, RegistryError, list_models
    from models.settings import get_settings

    settings = get_settings()
    with _registry_errors():
        names = [model] if model else list_models(settings.registry_dir)
        registries = [_existing_model(model)] if model else [ModelRegistry(settings.registry_dir, n) for n in names]
        if not names:
            console.print(f"The registry at {settings.registry_dir.resolve()} is empty: nothing to verify")
            return
    broken = []
    for registry in registries:
        try:
            report = audit_model(registry)
        except RegistryError as err:  # a bad key file: nothing can be checked
            _fail(str(err))
        clauses = [describe_chain(report.history, report.signed_mode),
                   f"versions verified: {', '.join(map(str, report.verified)) or 'none'}"]
        if report.unsigned_versions:
            clauses.append(f"no valid signature: {', '.join(map(str, report.unsigned_versions))}")
        if report.unchecked_versions:
            clauses.append("versions not checked (history.jsonl is damaged, so every load refuses them): "
                           + ", ".join(map(str, report.unchecked_versions)))
        clauses.append(describe_chain(report.monitoring, False))
        warning = unchecked_signatures_warning(report)
        if report.ok and warning is None:
            console.print(f"{registry.model}: OK ({'signed' if report.signed_mode else 'unsigned'} mode); "
                          + "; ".join(clauses), highlight=False, soft_wrap=True)
            continue
        broken.append(registry.model)
        if report.breaks:
            err_console.print(f"[bold red]{registry.model}: BROKEN[/] first break: {escape(report.breaks[0])}",
                              highlight=False, soft_wrap=True)
            for problem in report.breaks[1:]:
                err_console.print(f"  also: {escape(problem)}", highlight=False, soft_wrap=True)
        if warning is not None:
            err_console.print(f"[bold red]{registry.model}: NOT VERIFIED[/] {escape(warning)}",
                              highlight=False, soft_wrap=True)
        console.print(f"{registry.model}: " + "; ".join(clauses), highlight=False, soft_wrap=True)
    if broken:
        raise typer.Exit(1)


def registry_sign(
    model: str = typer.Argument(..., help="Model name."),
    reason: str = typer.Option(..., "--reason", help="Why these versions are trusted (recorded in the history)."),
) -> None:
    """Signed mode: vouch with the signing key for the versions committed before signing was turned
    on, after their hash check (one signed `attested` line each). Run it on a registry you trust."""
    from models.audit import attest_unsigned

    with _registry_errors():
        attested = attest_unsigned(_existing_model(model), reason)
    console.print(f"{model}: attested version(s) {', '.join(map(str, attested))}" if attested
                  else f"{model}: every version is already signed", highlight=False)


def registry_keygen(
    private: Path = typer.Argument(..., help="Private key file to create (mode 0600): FINML_SIGNING_KEY_FILE."),
    public: Path = typer.Argument(..., help="Public key file to create: FINML_VERIFY_KEY_FILE."),
) -> None:
    """Create an Ed25519 key pair for signed mode; keep both files outside the registry."""
    from models.registry_tree import refuse_inside_registry
    from models.signing import generate_keypair

    for path, what in ((private, "private key"), (public, "public key")):
        refuse_inside_registry(path, None, what)
    try:
        kid = generate_keypair(private, public)
    except OSError as err:  # an existing key file, a missing folder (named by generate_keypair), no permission
        _fail(f"{err.filename}: cannot create the key file ({err.strerror})" if err.filename else str(err))
    console.print(f"key {kid}: FINML_SIGNING_KEY_FILE={private} (training role only), "
                  f"FINML_VERIFY_KEY_FILE={public} (scoring workers)", highlight=False, soft_wrap=True)
