"""Hostile specs refused cheaply (issue 13 §3): YAML aliases, oversized free-form ``params``, names
with a trailing newline, huge values echoed in error messages, oversized spec files."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from flows.cli import app
from models.errors import short_examples, shorten
from models.registry import ModelRegistry, RegistryError
from models.spec import SpecError, find_spec, load_spec_file, parse_spec
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict, write_spec


def _alias_bomb_spec(folder, levels: int = 9) -> str:
    """The built-in credit_risk spec with a "billion laughs" in a hyperparameter: ``levels``
    anchors, each a list of nine aliases of the previous one (9**levels strings when expanded)."""
    lists = ['&l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lists += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    text = (BUILTIN_SPECS / "credit_risk.yaml").read_text()
    assert "    params: {C: 1.0}" in text
    text = text.replace("    params: {C: 1.0}", "    params: {C: 1.0, class_weight: [" + ", ".join(lists) + "]}")
    path = folder / "credit_risk.yaml"
    path.write_text(text)
    return path


def test_a_yaml_alias_bomb_in_params_is_refused_naming_the_file_and_line(tmp_path):
    path = _alias_bomb_spec(tmp_path)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "class_weight" in t)
    with pytest.raises(SpecError) as err:
        load_spec_file(path)
    assert str(err.value).startswith(f"{path}, line {line}: YAML alias '*l0' refused")
    assert "\n" not in str(err.value)


def test_finml_models_refuses_the_bomb_without_importing_the_data_libraries(tmp_path):
    """The refusal happens while the file is read: the command never expands the value, and it
    does not even import pandas or scikit-learn (which took most of the command's second)."""
    _alias_bomb_spec(tmp_path)
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from flows.cli import app\n"
        "result = CliRunner().invoke(app, ['models'])\n"
        "print(result.exit_code)\n"
        "print(result.output.strip().splitlines()[-1])\n"
        "print(','.join(m for m in ('pandas', 'sklearn') if m in sys.modules) or 'none')\n"
    )
    env = {"FINML_SPECS_DIR": str(tmp_path), "COLUMNS": "400", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=BUILTIN_SPECS.parents[1], check=False)
    code_, message, imported = out.stdout.strip().splitlines()
    assert code_ == "1", out.stdout + out.stderr
    assert "YAML alias '*l0' refused" in message
    assert imported == "none"


def test_any_alias_is_refused_and_an_anchor_alone_is_harmless(tmp_path):
    data = builtin_spec_dict("credit_risk")
    path = write_spec(tmp_path, data)
    text = path.read_text()
    anchored = text.replace("description:", "description: &d", 1)
    path.write_text(anchored)
    assert load_spec_file(path).name == "credit_risk"  # an anchor without alias changes nothing
    path.write_text(anchored + "x_extra: *d\n")
    with pytest.raises(SpecError, match=r"line \d+: YAML alias '\*d' refused"):
        load_spec_file(path)


@pytest.mark.parametrize(("value", "message"), [
    ({"a": {"b": {"c": {"d": {"e": 1}}}}}, r"nested deeper than 5 levels \(at class_weight\.a\.b\.c\.d\)"),
    (list(range(2_000)), r"holds more than 1,000 values"),
    ("x" * 1_000_000, r"a string of 1,000,000 characters \(at class_weight\): at most 1,000 allowed"),
])
def test_free_form_params_are_bounded_naming_the_field(value, message):
    data = builtin_spec_dict("credit_risk")
    data["candidates"][0]["params"]["class_weight"] = value
    with pytest.raises(SpecError, match=r"field 'candidates\.0\.params': " + message) as err:
        parse_spec(data)
    assert len(str(err.value)) < 400


def test_a_shared_reference_bomb_built_in_python_is_refused_without_expanding_it():
    """A spec built in Python (``parse_spec``) bypasses YAML: 9**30 values by shared references."""
    bomb = ["lol"] * 9
    for _ in range(30):
        bomb = [bomb] * 9
    data = builtin_spec_dict("credit_risk")
    data["candidates"][0]["params"]["class_weight"] = bomb
    with pytest.raises(SpecError, match=r"candidates\.0\.params.*nested deeper than 5 levels"):
        parse_spec(data)


def test_the_builtin_hyperparameters_fit_the_bounds():
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    assert spec.candidates[2].params["hidden_units"] == [64, 32]


@pytest.mark.parametrize("name", ["credit_risk\n", "credit_risk\r\n", "\ncredit_risk"])
def test_a_name_with_a_newline_is_refused_everywhere(tmp_path, name):
    data = builtin_spec_dict("credit_risk")
    data["name"] = name
    with pytest.raises(SpecError, match="field 'name'.*is not a safe name"):
        parse_spec(data)
    with pytest.raises(SpecError, match="is not a safe name"):
        find_spec(name, BUILTIN_SPECS)
    with pytest.raises(RegistryError, match="is not a model name"):
        ModelRegistry(tmp_path, name)
    data = builtin_spec_dict("credit_risk")
    data["candidates"][0]["name"] = name
    with pytest.raises(SpecError, match="candidate name .* is not a safe name"):
        parse_spec(data)


def test_a_huge_value_is_not_echoed_whole_in_a_spec_error():
    data = builtin_spec_dict("credit_risk")
    data["gate"]["primary_metric"] = "y" * 1_000_000
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert len(str(err.value)) < 1_000
    assert "…(1,000,002 chars)" in str(err.value)  # the repr's quotes count
    data = builtin_spec_dict("credit_risk")
    data["columns"]["z" * 100_000] = {"role": "no-such-role"}  # the location names the column
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert len(str(err.value)) < 2_000


def test_an_oversized_spec_file_is_refused_before_it_is_parsed(tmp_path):
    path = write_spec(tmp_path, builtin_spec_dict("credit_risk"))
    path.write_text(path.read_text() + "#" * (1 << 20) + "\n")
    with pytest.raises(SpecError, match=r"credit_risk\.yaml: 1,0\d\d,\d\d\d bytes; a spec file may hold at most 1,048,576"):
        load_spec_file(path)


def test_examples_are_shortened_and_counted():
    assert shorten("abc") == "abc"
    assert shorten("a" * 100) == "a" * 80 + "…(100 chars)"
    assert short_examples(["x" * 200, 3, None, 2.5, ("t",) * 100, "ok", "more"]) == [
        "x" * 80 + "…(200 chars)", 3, None, 2.5, repr(("t",) * 100)[:80] + f"…({len(repr(('t',) * 100))} chars)", ]
    assert short_examples(iter(range(10**9))) == [0, 1, 2, 3, 4]  # reads no further than it needs


def test_cli_models_names_the_alias_in_one_line(finml_env):
    _alias_bomb_spec(finml_env["specs"])
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "400"})
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "YAML alias '*l0' refused" in lines[0]
