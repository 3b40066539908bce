"""Helpers shared by tests."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILTIN_SPECS = ROOT / "models" / "specs"


def builtin_spec_dict(name: str) -> dict:
    """A deep copy of a built-in spec as a plain dict, to derive test specs from."""
    return copy.deepcopy(yaml.safe_load((BUILTIN_SPECS / f"{name}.yaml").read_text()))


def spec_error(data: dict, origin: str = "t.yaml") -> str:
    """The message of the SpecError that parsing ``data`` (a spec as a dict) raises; fails when none."""
    import pytest

    from models.spec import SpecError, parse_spec

    with pytest.raises(SpecError) as err:
        parse_spec(data, origin=origin)
    return str(err.value)


def write_spec(folder: Path, data: dict) -> Path:
    path = Path(folder) / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@lru_cache(maxsize=None)
def builtin_periods(name: str):
    """``(spec, development modelling table, later modelling table)`` of a built-in spec with an
    out-of-time period, declared types parsed; cached per name (treat the frames as read-only)."""
    from models.spec import find_spec
    from tasks.load import (
        load_source,
        modelling_table,
        parse_declared_types,
        split_out_of_time,
    )

    spec = find_spec(name, BUILTIN_SPECS)
    development, later = split_out_of_time(parse_declared_types(load_source(spec), spec), spec)
    return spec, modelling_table(development, spec), modelling_table(later, spec)
