"""Checks of a command's inputs that run before Prefect starts: a bad spec name, batch file or
version fails in a second with one line, not after ten seconds with a traceback."""

from __future__ import annotations

from pathlib import Path

from flows.cli.common import _error_line, _fail


def _check_spec(model: str) -> None:
    """End the command when ``model`` names no valid spec."""
    from models.settings import get_settings
    from models.spec import SpecError, find_spec

    try:
        find_spec(model, get_settings().specs_dir)
    except SpecError as err:
        _fail(str(err))


def _check_spec_or_stored(model: str, version: str | None) -> None:
    """For ``monitor`` and ``score``: like :func:`_check_spec`, except that a missing or invalid
    spec file is only a warning when the registry holds the version asked for (``version``, None:
    the champion): that version is judged with the spec stored in it."""
    from models.registry import ModelRegistry, RegistryError
    from models.settings import get_settings
    from models.spec import SpecError, find_spec

    settings = get_settings()
    try:
        find_spec(model, settings.specs_dir)
        return
    except SpecError as err:
        problem = str(err)
    try:
        number = ModelRegistry(settings.registry_dir, model).resolve(version)
    except (RegistryError, ValueError):
        _fail(problem)
    from rich.markup import escape

    from flows.cli.common import err_console

    err_console.print(f"[yellow]warning:[/] {escape(problem)}; {model} v{number} is judged with the spec stored in it",
                      highlight=False, soft_wrap=True)


def _check_batch(batch: str) -> None:
    """End the command when ``batch`` (a path, or ``out_of_time``) is a folder or no file."""
    if batch != "out_of_time" and Path(batch).is_dir():
        _fail(f"{batch}: is a directory; give a CSV or Parquet batch file")
    if batch != "out_of_time" and not Path(batch).is_file():
        _fail(f"{batch}: batch file not found")


def _check_version(model: str, version: str | None) -> None:
    """A version, alias or champion that does not exist fails before Prefect starts (1 s, not 10)."""
    from models.registry import ModelRegistry, RegistryError
    from models.settings import get_settings

    try:
        ModelRegistry(get_settings().registry_dir, model).resolve(version)
    except RegistryError as err:
        _fail(str(err))
    except ValueError:  # "²".isdigit() is True, int("²") raises
        _fail(f"--version {version!r}: not a version number or an alias name")


# --------------------------------------------------------------------------- pre-flight
# The checks `finml train`, `score` and `monitor` make before Prefect starts (tasks/preflight.py):
# a typo in a spec, a file name or a column, an unwritable folder or a version that cannot be
# loaded here fails in a second or two, not after Prefect's 45-110 s.


def _writable_roots() -> None:
    """End the command when the registry or reports folder cannot be written (they are created)."""
    from models.errors import FinmlError
    from models.registry_tree import check_writable_root
    from models.settings import get_settings

    settings = get_settings()
    try:
        check_writable_root(settings.registry_dir)
        check_writable_root(settings.reports_dir, "FINML_REPORTS_DIR")
    except FinmlError as err:
        _fail(str(err))


def preflight_train(model: str) -> None:
    """Before ``finml train MODEL`` starts Prefect: the spec is valid; its file source lies below
    the data roots, exists, is readable and its header holds every declared column and the target;
    the task runner can start here; the registry and reports folders are writable; when the gate has champion rules, the champion
    (if any) was trained with library versions that load here (else those rules could only fail
    closed on it).

    Ends the command with exit code 1 and one line naming the problem.
    """
    from models.settings import get_settings
    from models.spec import SpecError, find_spec

    settings = get_settings()
    try:
        spec = find_spec(model, settings.specs_dir)
    except SpecError as err:
        _fail(str(err))
    problem = model_problem(spec)
    if problem:
        _fail(problem)
    _preflight_run(settings)


def preflight_train_all() -> tuple[list[str], int]:
    """Before ``finml train --all`` starts Prefect: every spec of ``FINML_SPECS_DIR`` is read
    (:func:`models.spec.scan_specs`); each invalid one, and each valid one whose own pre-flight
    fails (:func:`model_problem`: its source file, its columns, its champion's libraries), is named
    once on stderr as an ``error:`` line and left out; then the checks of the run itself (the task
    runner, the registry and reports folders) as :func:`preflight_train` makes them.

    Returns:
        ``(names of the specs to train, in name order; how many specs were left out)``.

    Ends the command with exit code 1: the folder is missing or holds no ``*.yaml`` spec; no spec
    passes (each one named first); the runner or a folder cannot be used.
    """
    from models.settings import get_settings
    from models.spec import SpecError, scan_specs

    settings = get_settings()
    try:
        specs, broken = scan_specs(settings.specs_dir)
    except SpecError as err:
        _fail(str(err))
    problems = list(broken.values())
    names = []
    for spec in specs:
        problem = model_problem(spec)
        if problem:
            problems.append(problem)
        else:
            names.append(spec.name)
    for problem in problems:
        _error_line(problem)
    if not names:
        _fail(f"none of the {len(problems)} spec(s) in {settings.specs_dir} can be trained (each is named above)")
    _preflight_run(settings)
    return names, len(problems)


def scan_spec_names() -> tuple[list[str], int]:
    """For ``finml train --all --deployment``: the names of the valid specs and how many are invalid,
    each invalid one named once on stderr (an ``error:`` line). The specs' sources are the worker's
    to read, so only the specs are checked here.

    Ends the command with exit code 1 when the folder is missing, holds no ``*.yaml`` spec, or no
    valid one.
    """
    from models.settings import get_settings
    from models.spec import SpecError, scan_specs

    specs_dir = get_settings().specs_dir
    try:
        specs, broken = scan_specs(specs_dir)
    except SpecError as err:
        _fail(str(err))
    for message in broken.values():
        _error_line(message)
    if not specs:
        _fail(f"none of the {len(broken)} spec(s) in {specs_dir} is valid (each is named above)")
    return [s.name for s in specs], len(broken)


def model_problem(spec) -> str | None:
    """Why a valid spec cannot be trained here, naming the model, or None: its file source
    (:func:`tasks.preflight.source_problem`); when the gate has champion rules, a champion trained
    with library versions that do not load here (:func:`tasks.preflight.library_problem`).

    Args:
        spec: a :class:`models.spec.ModelSpec` (read by :func:`models.spec.find_spec`).
    """
    from tasks.preflight import source_problem

    problem = source_problem(spec)
    if problem:
        return f"{spec.name}: {problem}"
    if not any(rule.kind == "champion" for rule in spec.gate.rules):
        return None  # the champion is not rescored against: its libraries do not matter to this run
    return _champion_problem(spec.name)


def _champion_problem(model: str) -> str | None:
    from models.registry import ModelRegistry, RegistryError
    from models.settings import get_settings
    from tasks.preflight import library_problem

    registry = ModelRegistry(get_settings().registry_dir, model)
    try:
        champion = registry.champion() if registry.exists() else None
        metadata = registry.read_metadata(champion) if champion is not None else None
    except (RegistryError, OSError, ValueError):
        return None  # a damaged registry is the run's to report (it says which file)
    if metadata is None or not library_problem(model, champion, metadata):
        return None
    from models.compat import ALLOW_ENV, library_checks

    wrong = "; ".join(c.describe() for c in library_checks(metadata) if not c.matches)
    return (f"{model}: the champion v{champion} was trained with other library versions ({wrong}): it cannot be "
            "loaded to be rescored, so the gate's champion rules would reject every challenger (they fail closed). "
            f"Retire it first (finml registry retire {model} --reason …) and the next run is judged by its "
            f"thresholds alone; or install the recorded versions; {ALLOW_ENV}=1 loads it anyway")


def _preflight_run(settings) -> None:
    """The checks of a training run itself: the task runner can start here, then the registry and
    reports folders are writable (created). Ends the command with exit code 1 naming the problem."""
    from tasks.preflight import runner_problem

    problem = runner_problem(settings)
    if problem:
        _fail(problem)  # before the folders are created: a run that cannot start leaves nothing behind
    _writable_roots()


def _judging_spec_of(model: str, version: str | None, out_of_time: bool):
    """``(spec that judges the version, version number, its metadata)``, ending the command when the
    version does not exist or neither its stored spec nor the spec file can be read."""
    from models.errors import FinmlError
    from models.registry import ModelRegistry
    from models.settings import get_settings
    from models.stored_spec import judging_spec

    _check_version(model, version)
    settings = get_settings()
    registry = ModelRegistry(settings.registry_dir, model)
    number = registry.resolve(version)
    try:
        metadata = registry.read_metadata(number)
    except (OSError, ValueError) as err:
        _fail(f"{model} v{number}: cannot read its metadata.json ({err})")
    try:
        spec, _ = judging_spec(model, metadata, settings.specs_dir, out_of_time=out_of_time)
    except FinmlError as err:
        _fail(str(err))
    return spec, number, metadata


def _preflight_serving(model: str, version: str | None, batch: str | None, scoring: bool = False):
    """The serving checks of ``score`` and ``monitor``; returns ``(judging spec, version number, metadata)``."""
    from tasks.preflight import header_problem, library_problem, source_problem

    spec, number, metadata = _judging_spec_of(model, version, out_of_time=batch is None)
    if batch is None:  # the spec's later period, read from its source
        problem = source_problem(spec, serving=True)
    else:
        problem = header_problem(batch, spec, serving=True, what=f"(the spec stored with {model} v{number})",
                                 scoring=scoring)
    if problem:
        _fail(problem)
    problem = library_problem(model, number, metadata)
    if problem:
        _fail(problem)
    return spec, number, metadata


def preflight_score(model: str, version: str | None, batch: str, reasons: int | None = None) -> None:
    """Before ``finml score`` starts Prefect: the version exists; the batch file's header holds
    every column of the spec that judges the version (the one stored with it,
    :func:`models.stored_spec.judging_spec`) that scoring needs: not its protected and excluded
    columns, never features (:func:`tasks.expectations.scoring_optional`); the version's library
    versions load here; with reasons asked for (``--reasons``, or the spec's ``reasons.k``), the
    version has an adverse-action record (:func:`tasks.reasons.stored_reasons`: a regression
    model, or a version promoted before reasons were recorded, is refused naming ``--reasons``).

    Ends the command with exit code 1 and one line naming the problem.
    """
    spec, number, metadata = _preflight_serving(model, version, batch, scoring=True)
    k = reasons if reasons is not None else getattr(spec.reasons, "k", None)
    if k:
        from tasks.reasons import ReasonsUnavailableError, stored_reasons

        try:
            stored_reasons(metadata, model, number)
        except ReasonsUnavailableError as err:
            asked = f"--reasons {reasons}" if reasons is not None else f"reasons.k: {k} of the spec"
            _fail(f"{asked}: {err}")


def preflight_monitor(model: str, version: str | None, batch: str | None) -> None:
    """Before ``finml monitor`` starts Prefect: as :func:`preflight_score` for a ``--batch`` (None:
    the spec's later period, whose source file is checked like training's), and the registry and
    reports folders (the monitoring history, the Evidently report) are writable.

    Ends the command with exit code 1 and one line naming the problem.
    """
    _preflight_serving(model, version, batch)
    _writable_roots()
