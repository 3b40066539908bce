"""Checks of a command's inputs that run before Prefect starts: a bad spec name, batch file or
version fails in a second with one line, not after ten seconds with a traceback."""

from __future__ import annotations

from pathlib import Path

from flows.cli.common import _fail


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


def _spec_names() -> list[str]:
    """The names of every spec; ends the command when one of them is invalid."""
    from models.settings import get_settings
    from models.spec import SpecError, list_specs

    try:
        return [s.name for s in list_specs(get_settings().specs_dir)]
    except SpecError as err:
        _fail(str(err))


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
