"""Helpers shared by tests."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILTIN_SPECS = ROOT / "models" / "specs"


def builtin_spec_dict(name: str) -> dict:
    """A deep copy of a built-in spec as a plain dict, to derive test specs from."""
    return copy.deepcopy(yaml.safe_load((BUILTIN_SPECS / f"{name}.yaml").read_text()))


def write_spec(folder: Path, data: dict) -> Path:
    path = Path(folder) / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
