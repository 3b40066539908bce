"""Spec errors in the user's words (models/spec/loading.py): an unknown key close to an allowed key
of its model, at any depth, and a tag value close to an expected one, are suggested; values are
printed as written (``'e_wrongname.yaml'``, not ``'e_wrongname'.yaml``)."""

from __future__ import annotations

import pytest

from models.spec import SpecError, find_spec
from tests.helpers import builtin_spec_dict, spec_error, write_spec


def _error(data: dict) -> str:
    return spec_error(data, "t.yaml")


def test_a_misspelt_column_key_is_suggested_and_its_missing_field_not_repeated():
    data = builtin_spec_dict("credit_risk")
    data["columns"]["Income"]["rol"] = data["columns"]["Income"].pop("role")
    assert _error(data) == "t.yaml: invalid spec: field 'columns.Income.rol': unknown key, did you mean 'role'"


def test_a_misspelt_top_level_key_is_suggested():
    data = builtin_spec_dict("credit_risk")
    data["colums"] = data.pop("columns")
    assert _error(data) == "t.yaml: invalid spec: field 'colums': unknown key, did you mean 'columns'"
    data["columns"] = data.pop("colums")
    data["zzzq"] = 1  # far from every allowed key: no suggestion
    assert _error(data) == "t.yaml: invalid spec: field 'zzzq': unknown key (not part of the spec schema)"


@pytest.mark.parametrize(("where", "key", "meant"), [
    ("split", "test_sise", "test_size"),  # a member of a tagged union
    ("gate.rules.0", "mni", "min"),  # a list item of a tagged union
    ("target", "positve", "positive"),
    ("candidates.0", "estimatr", "estimator"),
])
def test_a_misspelt_optional_key_is_suggested_at_its_path(where, key, meant):
    data = builtin_spec_dict("credit_risk")
    node = data
    for part in where.split("."):
        node = node[int(part)] if part.isdigit() else node[part]
    node[key] = 1
    assert f"field '{where}.{key}': unknown key, did you mean '{meant}'" in _error(data)


def test_a_misspelt_split_method_is_suggested_with_the_methods():
    data = builtin_spec_dict("credit_risk")
    data["split"]["method"] = "stratified_holdot"
    assert _error(data) == ("t.yaml: invalid spec: field 'split': unknown method 'stratified_holdot', did you mean "
                            "'stratified_holdout' (one of: 'stratified_holdout', 'walk_forward')")


def test_an_unknown_rule_kind_far_from_every_kind_lists_them():
    data = builtin_spec_dict("credit_risk")
    data["gate"]["rules"][0]["kind"] = "zzz"
    assert ("field 'gate.rules.0': unknown kind 'zzz' (one of: 'threshold', 'champion', 'baseline', 'monotonic', 'mcs')"
            in _error(data))


def test_a_name_that_differs_from_the_file_name_quotes_the_file_name_whole(tmp_path):
    data = builtin_spec_dict("credit_risk")
    data["name"] = "e_name"
    write_spec(tmp_path, data).rename(tmp_path / "e_wrongname.yaml")
    with pytest.raises(SpecError) as err:
        find_spec("e_wrongname", tmp_path)
    assert str(err.value) == (f"{tmp_path / 'e_wrongname.yaml'}: field 'name' is 'e_name' but the file is named "
                              "'e_wrongname.yaml'")
