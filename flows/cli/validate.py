"""``finml validate``: a model's training data, or a batch file, checked against its spec in
seconds, every problem reported at once (:mod:`tasks.data_check`), without Prefect.

Run by the console script (:func:`flows.cli.main`, which calls :func:`standalone`), the command
loads the pipeline's steps as plain functions (:func:`tasks.step.without_prefect`): Prefect is
neither imported nor started.
"""

from __future__ import annotations

import typer

from flows.cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    _fail,
    console,
    plain_console_logging,
)

_standalone = False


def standalone() -> None:
    """Say that this process runs one command and ends (the console script, ``python -m flows.cli``):
    ``finml validate`` may then load the steps without Prefect. Not called by an in-process caller
    (a test's ``CliRunner``), whose later commands may still need the steps as Prefect tasks."""
    global _standalone
    _standalone = True


def validate_cmd(
    model: str = typer.Argument(..., help="Model (spec) name."),
    batch: str | None = typer.Option(None, "--batch",
                                        help="A CSV or Parquet batch to check with the serving suite (as score and "
                                             "monitor read it) instead of the training data."),
    training: bool = typer.Option(False, "--training", help="Check the spec's training data (the default)."),
    engine: str = typer.Option("fast", "--engine", help="Validation engine: fast (pandas) or gx (Great Expectations)."),
    version: str | None = typer.Option(
        None, "--version",
        help="With --batch: judge it with the spec stored with this version (number or alias), as score and "
             "monitor do, instead of the current spec file."),
) -> None:
    """Check the training data (default) or a batch against the spec: every missing column, value in
    the wrong format and failed expectation at once, with examples and the id column's values of the
    bad rows. Prefect is not started.

    Exit code: 0 valid (warnings printed); 1 a check failed (or the data cannot be read); 2 bad
    arguments, an unknown model or invalid spec, a batch file or version that does not exist.
    """
    from pathlib import Path

    from models.settings import get_settings
    from models.spec import SpecError, find_spec

    if batch is not None and training:
        _fail("give --batch FILE or --training, not both", code=EXIT_USAGE)
    if engine not in ("fast", "gx"):
        _fail(f"--engine {engine!r}: use fast (pandas) or gx (Great Expectations)", code=EXIT_USAGE)
    if batch is not None and Path(batch).is_dir():
        _fail(f"{batch}: is a directory; give a CSV or Parquet batch file", code=EXIT_USAGE)
    if batch is not None and not Path(batch).is_file():
        _fail(f"{batch}: batch file not found", code=EXIT_USAGE)
    if version is not None and batch is None:
        _fail("--version judges a batch with the spec stored with that version: give --batch FILE too",
              code=EXIT_USAGE)
    judged = ""
    if version is not None:
        spec, judged = _stored_spec(model, version)
    else:
        try:
            spec = find_spec(model, get_settings().specs_dir)
        except SpecError as err:
            _fail(str(err), code=EXIT_USAGE)
    if _standalone:
        from tasks.step import without_prefect

        without_prefect()
    plain_console_logging()  # a warning the report carries is not printed again on stderr
    from tasks.data_check import check_batch, check_training_data

    check = check_training_data(spec, engine) if batch is None else check_batch(spec, batch, engine)
    print_check(spec.name, check)
    if judged:
        console.print(f"  {judged}", highlight=False, markup=False, soft_wrap=True)
    if not check.ok:
        raise typer.Exit(EXIT_ERROR)


def _stored_spec(model: str, version: str):
    """``(the spec that judges version, the sentence saying so)``
    (:func:`models.stored_spec.judging_spec`); ends the command with exit code 2 when the version
    does not exist or no spec can judge it."""
    from models.errors import FinmlError
    from models.registry import ModelRegistry
    from models.settings import get_settings
    from models.stored_spec import judging_spec

    settings = get_settings()
    registry = ModelRegistry(settings.registry_dir, model)
    try:
        number = registry.resolve(version)
        spec, compared = judging_spec(model, registry.read_metadata(number), settings.specs_dir)
    except FinmlError as err:
        _fail(str(err), code=EXIT_USAGE)
    except (ValueError, OSError) as err:  # "²".isdigit() is True, int("²") raises; an unreadable metadata.json
        _fail(f"{model} --version {version!r}: {err}", code=EXIT_USAGE)
    return spec, compared.sentence(number)


def print_check(model: str, check) -> None:
    """What ``finml validate`` prints: one line with the verdict, then each problem, the warnings,
    what was not checked and the columns the spec does not declare.

    Args:
        check: a :class:`tasks.data_check.DataCheck`.
    """
    what = "training data" if check.form == "training" else "batch (serving suite)"
    size = "" if check.rows is None else f": {check.rows} rows, {check.expectations} expectations"
    failures = check.failures
    if failures:
        columns = check.failed_columns
        named = f" in column{'s' if len(columns) > 1 else ''} {', '.join(map(repr, columns))}" if columns else ""
        verdict = f"FAILED, {len(failures)} problem{'s' if len(failures) > 1 else ''}{named}"
    else:
        verdict = "PASSED" + (f" with {len(check.warnings)} warning(s)" if check.warnings else "")
    say = {"highlight": False, "markup": False, "soft_wrap": True}
    console.print(f"{model}: {what} {check.source}{size} (engine {check.engine}): {verdict}", **say)
    for line in check.lines():
        console.print(f"  - {line}", **say)
    for note in check.notes:
        console.print(f"  not checked: {note}", **say)
    if check.ignored:
        console.print(f"  columns not in the spec (not checked): {', '.join(check.ignored)}", **say)
