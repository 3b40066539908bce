"""Reading specs: parse, load a file, find one by name, list a folder; validation errors are
worded to name the file and the field path (``gate.rules.0.min``)."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from models.errors import SpecError, shorten
from models.features import FeaturesFrom
from models.spec.base import SAFE_NAME, close_match, did_you_mean
from models.spec.data import FileSource, Source, Split
from models.spec.gate import GateRule
from models.spec.model import ModelSpec


def _tags(union: Any) -> set[str]:
    """The discriminator values of a tagged union ``Annotated[Union[...], Field(discriminator=...)]``."""
    members, info = typing.get_args(union)[:2]
    return {typing.get_args(m.model_fields[info.discriminator].annotation)[0] for m in typing.get_args(members)}


MAX_SPEC_BYTES = 1 << 20
"""Largest spec file read (1 MiB); the built-in specs are about 5 KB."""


class _AliasRefused(yaml.YAMLError):
    def __init__(self, anchor: str, mark):
        super().__init__(anchor)
        self.anchor, self.mark = anchor, mark


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases: ``*name`` is refused where it appears. A few nested
    aliases expand to billions of values (the "billion laughs"), and a spec needs none."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasRefused(event.anchor, event.start_mark)
        return super().compose_node(parent, index)


def read_yaml(path: Path) -> Any:
    """The YAML document of a spec file, read with :class:`_SpecLoader`.

    Raises:
        SpecError: naming the file: larger than :data:`MAX_SPEC_BYTES`, not valid YAML, or an
            alias (naming its line).
    """
    size = path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: {size:,} bytes; a spec file may hold at most {MAX_SPEC_BYTES:,} bytes")
    try:
        return yaml.load(path.read_text(), Loader=_SpecLoader)
    except _AliasRefused as err:
        raise SpecError(f"{path}, line {err.mark.line + 1}: YAML alias '*{shorten(err.anchor)}' refused: a spec may "
                        "not use anchors and aliases (a few nested ones expand to gigabytes); write the value out") from None
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML: {shorten(str(err), 500)}") from None


_UNION_TAGS = {"source": _tags(Source), "split": _tags(Split), "features_from": _tags(FeaturesFrom)}
_RULE_TAGS = _tags(GateRule)


def _missing_tag_message(e: dict) -> str:
    """For a tagged union whose tag key is absent: name a misspelt key close to the tag key
    (``methd`` for ``method``, by :func:`models.spec.base.close_match`), else say the key is missing."""
    key = str(e.get("ctx", {}).get("discriminator", "")).strip("'")
    given = [k for k in e["input"] if isinstance(k, str)] if isinstance(e.get("input"), dict) else []
    close = [k for k in given if close_match(k, [key])]
    if close:
        return f"unknown key {shorten(repr(close[0]))}, did you mean {key!r}"
    return f"required field {key!r} is missing"


def _tag_value_message(e: dict) -> str:
    """For a tagged union whose tag value is none of the expected ones (``method: stratified_holdot``):
    ``unknown method 'stratified_holdot', did you mean 'stratified_holdout' (one of: ...)``, the close
    match by :func:`models.spec.base.close_match`, when there is one."""
    ctx = e.get("ctx", {})
    key = str(ctx.get("discriminator", "")).strip("'")
    tag = str(ctx.get("tag", ""))
    expected = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
    hint = did_you_mean(tag, expected)
    return f"unknown {key} {shorten(repr(tag))}{hint} (one of: {', '.join(map(repr, expected))})"


def _members(annotation: Any) -> list[Any]:
    """The concrete types an annotation stands for: ``Annotated`` unwrapped, a ``Union`` (``X | None``
    too) split into its members, ``None`` left out."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _members(a)]
    return [] if annotation is type(None) else [annotation]


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _tag_of(model: type[BaseModel], part: str) -> bool:
    """Whether ``part`` is the value of one of ``model``'s ``Literal`` fields (the tag pydantic puts in
    the location of a tagged union's member)."""
    return any(typing.get_origin(f.annotation) is typing.Literal and typing.get_args(f.annotation) == (part,)
               for f in model.model_fields.values())


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The spec model that the error location ``loc`` (pydantic's, tags of tagged unions included)
    points into: ``()`` is :class:`ModelSpec`, ``("columns", "income")`` the column's model. None
    when the path cannot be followed to one model (an untagged union, a free-form mapping)."""
    nodes: list[Any] = [ModelSpec]
    for part in loc:
        following: list[Any] = []
        for node in nodes:
            origin = typing.get_origin(node)
            if _is_model(node) and isinstance(part, str) and part in node.model_fields:
                following += _members(node.model_fields[part].annotation)
            elif _is_model(node) and isinstance(part, str) and _tag_of(node, part):
                following.append(node)  # the tag pydantic inserts after a tagged union's field
            elif isinstance(origin, type) and issubclass(origin, Mapping):  # dict[str, ColumnSpec]: part is a key
                following += _members(typing.get_args(node)[-1])
            elif origin in (list, tuple, set, frozenset) and isinstance(part, int):
                following += _members(typing.get_args(node)[0])
        nodes = following
    models = [n for n in nodes if _is_model(n)]
    return models[0] if len(models) == 1 else None


def _unknown_key_suggestion(loc: tuple) -> str | None:
    """The allowed key closest to the unknown key at the end of ``loc`` (``rol`` → ``role``, by
    :func:`models.spec.base.close_match`), among the fields of the model holding it; None
    when there is none or the model cannot be found."""
    if not loc or not isinstance(loc[-1], str):
        return None
    model = _model_at(loc[:-1])
    if model is None:
        return None
    return close_match(loc[-1], list(model.model_fields))


_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")
"""Prefixes pydantic puts before the message of an error raised in a validator."""


def _format_validation_error(err: ValidationError) -> str:
    """The errors as one line, each naming its field path. An unknown key close to an allowed one
    says so (``field 'columns.income.rol': unknown key, did you mean 'role'``) and stands for the
    required field it misspells (that field's "missing" error is not repeated)."""
    errors = err.errors()
    suggested = {}  # location of an unknown key -> the allowed key it is close to
    for e in errors:
        if e["type"] == "extra_forbidden":
            close = _unknown_key_suggestion(tuple(e["loc"]))
            if close:
                suggested[tuple(e["loc"])] = close
    explained = {loc[:-1] + (close,) for loc, close in suggested.items()}
    lines = []
    for e in errors:
        loc = _readable_loc(e["loc"])
        msg = e["msg"]
        if e["type"] == "missing" and tuple(e["loc"]) in explained:
            continue  # the misspelt key's line says it
        if e["type"] == "extra_forbidden" and tuple(e["loc"]) in suggested:
            msg = f"unknown key, did you mean {suggested[tuple(e['loc'])]!r}"
        elif e["type"] == "extra_forbidden":
            msg = "unknown key (not part of the spec schema)"
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "union_tag_not_found":
            msg = _missing_tag_message(e)
        elif e["type"] == "union_tag_invalid":
            msg = _tag_value_message(e)
        for prefix in _PYDANTIC_PREFIXES:
            msg = msg.removeprefix(prefix)
        lines.append(f"field '{loc}': {msg}" if loc else msg)
    return "; ".join(lines)


def _readable_loc(loc: tuple) -> str:
    """Drop the discriminator tags pydantic inserts into locations of tagged unions."""
    parts: list[str] = []
    for i, p in enumerate(loc):
        prev = loc[i - 1] if i else None
        if isinstance(prev, str) and p in _UNION_TAGS.get(prev, ()):
            continue
        if isinstance(prev, int) and i >= 2 and loc[i - 2] == "rules" and p in _RULE_TAGS:
            continue
        parts.append(shorten(str(p)))
    return ".".join(parts)


def parse_spec(data: Any, origin: str = "<spec>") -> ModelSpec:
    """Validate a parsed YAML mapping into a :class:`ModelSpec`.

    Raises:
        SpecError: naming ``origin`` and every offending field path.
    """
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: a spec must be a YAML mapping, got {type(data).__name__}")
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(f"{origin}: invalid spec: {_format_validation_error(err)}") from None


def load_spec_file(path: str | Path) -> ModelSpec:
    """Read and validate one spec file.

    File sources with a relative path are resolved against the spec file's folder.

    Raises:
        SpecError: the file is missing, too large, is not YAML, uses a YAML alias, or is not a
            valid spec.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found")
    spec = parse_spec(read_yaml(path), origin=str(path))
    if isinstance(spec.source, FileSource):  # a relative path is the spec folder's, the default data root
        spec = spec.model_copy(update={"source": spec.source.read_from(path)})
    return spec


def find_spec(name: str, specs_dir: str | Path) -> ModelSpec:
    """Load the spec called ``name`` from ``<specs_dir>/<name>.yaml``.

    Raises:
        SpecError: unsafe name, no such spec (listing the ones available), or an invalid spec,
            including one whose ``name`` field differs from its file name.
    """
    if not SAFE_NAME.fullmatch(name):
        raise SpecError(f"model name {shorten(repr(name))} is not a safe name (letters, digits, '_' or '-')")
    specs_dir = Path(specs_dir)
    path = specs_dir / f"{name}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in specs_dir.glob("*.yaml"))) or "none"
        raise SpecError(f"no spec named {name!r} in {specs_dir} (available: {available})")
    spec = load_spec_file(path)
    if spec.name != name:
        raise SpecError(f"{path}: field 'name' is {spec.name!r} but the file is named {name + '.yaml'!r}")
    return spec


def _spec_paths(specs_dir: Path) -> list[Path]:
    if not specs_dir.is_dir():
        raise SpecError(f"FINML_SPECS_DIR={specs_dir}: no such folder")
    paths = sorted(specs_dir.glob("*.yaml"))
    if not paths:
        others = sorted(p.name for p in specs_dir.glob("*.yml"))
        hint = f" (found {others}: rename them to .yaml)" if others else ""
        raise SpecError(f"FINML_SPECS_DIR={specs_dir}: no *.yaml spec in this folder{hint}")
    return paths


def list_specs(specs_dir: str | Path) -> list[ModelSpec]:
    """Load every ``*.yaml`` spec in ``specs_dir``, sorted by name (raises on the first invalid one).

    Raises:
        SpecError: the folder does not exist or holds no ``.yaml`` spec, or a spec is invalid.
    """
    specs_dir = Path(specs_dir)
    return [find_spec(p.stem, specs_dir) for p in _spec_paths(specs_dir)]


def scan_specs(specs_dir: str | Path) -> tuple[list[ModelSpec], dict[str, str]]:
    """Load every ``*.yaml`` spec in ``specs_dir``, keeping going past invalid ones.

    Returns:
        The valid specs sorted by name, and ``{file name: error message}`` for each invalid one
        (the message of the :class:`SpecError` :func:`find_spec` raises for it).

    Raises:
        SpecError: the folder does not exist or holds no ``.yaml`` spec.
    """
    specs_dir = Path(specs_dir)
    valid, broken = [], {}
    for path in _spec_paths(specs_dir):
        try:
            valid.append(find_spec(path.stem, specs_dir))
        except SpecError as err:
            broken[path.name] = str(err)
    return valid, broken
