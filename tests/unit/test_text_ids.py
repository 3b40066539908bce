"""Ids with leading zeros stay as written (tester's defect): a CSV column declared ``dtype: string``,
and an ``id`` without a dtype, are read as text, so ``"000017"`` is ``"000017"`` in training,
validation (both engines), ``finml score``'s output, the ledger (batch and served alike) and the
join of an outcomes CSV; ``dtype: integer`` ids read as numbers as before; a Parquet column of
numbers declared ``string`` is refused naming the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models.ledger import id_text, read_ledger
from models.spec import load_spec_file
from tasks.load import DataPreparationError, load_source, parse_declared_types, read_table_file
from tests.helpers import write_spec
from tests.serving_registry import train_version

ROWS = 300


def _spec_data(id_column: dict, path: str = "syn.csv") -> dict:
    return {
        "name": "syn", "task": "binary_classification", "description": "Synthetic applications.",
        "intended_use": "Tests.", "limitations": ["Synthetic."],
        "source": {"kind": "file", "path": path},
        "columns": {"app_id": id_column, "x1": {"role": "numeric"}, "x2": {"role": "numeric", "min": 0}},
        "target": {"column": "default", "positive": 1, "classes": [0, 1]},
        "table": {"min_rows": 50, "unique": ["app_id"]},
        "split": {"method": "stratified_holdout", "test_size": 0.25, "seed": 42},
        "candidates": [{"name": "logistic", "estimator": "logistic_regression"}],
        "gate": {"primary_metric": "roc_auc", "rules": [{"kind": "threshold", "metric": "roc_auc", "min": 0.5}]},
    }


def _rows(n: int = ROWS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n).round(4), rng.uniform(0, 10, n).round(3)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x1 - 0.2 * x2 + 1)))).astype(int)
    return pd.DataFrame({"app_id": [f"{i:06d}" for i in range(1, n + 1)], "x1": x1, "x2": x2, "default": y})


def _folder(tmp_path, id_column: dict, frame: pd.DataFrame | None = None):
    (_rows() if frame is None else frame).to_csv(tmp_path / "syn.csv", index=False)
    return load_spec_file(write_spec(tmp_path, _spec_data(id_column)))


@pytest.mark.parametrize("id_column", [{"role": "id", "dtype": "string"}, {"role": "id"}])
def test_a_text_id_is_read_from_csv_as_written_and_validates_with_both_engines(tmp_path, id_column):
    from tasks.data_check import check_training_data

    spec = _folder(tmp_path, id_column)
    frame = parse_declared_types(load_source(spec), spec)
    assert frame["app_id"].tolist()[:3] == ["000001", "000002", "000003"]
    assert frame["app_id"].dtype == object and frame["app_id"].iloc[16] == "000017"
    assert spec.text_columns == ["app_id"]
    for engine in ("fast", "gx"):  # finml validate [--engine gx]
        check = check_training_data(spec, engine=engine)
        assert check.ok, check.lines()
        assert check.frame["app_id"].iloc[16] == "000017"


def test_an_empty_id_cell_is_missing_and_an_integer_id_is_still_a_number(tmp_path):
    rows = _rows(60)
    rows.loc[3, "app_id"] = None  # written as an empty cell
    spec = _folder(tmp_path, {"role": "id", "dtype": "string", "max_null_share": 0.1}, rows)
    read = load_source(spec)
    assert read["app_id"].iloc[4] == "000005" and read["app_id"].isna().tolist() == [i == 3 for i in range(60)]
    assert read_table_file(tmp_path / "syn.csv", text_columns=["app_id"])["app_id"].iloc[16] == "000017"
    legacy = _folder(tmp_path, {"role": "id", "dtype": "integer", "min": 1})  # the built-in specs' rownames
    assert load_source(legacy)["app_id"].iloc[16] == 17 and legacy.text_columns == []
    bounded = load_spec_file(write_spec(tmp_path, _spec_data({"role": "id", "min": 1})))  # a number by its bound
    assert load_source(bounded)["app_id"].dtype == np.int64 and bounded.text_columns == []


def test_a_parquet_column_of_numbers_declared_string_is_refused_naming_it(tmp_path):
    from tasks.data_check import check_training_data

    rows = _rows(80).assign(app_id=lambda f: f["app_id"].astype(int))
    rows.to_parquet(tmp_path / "syn.parquet", index=False)
    spec = load_spec_file(write_spec(tmp_path, _spec_data({"role": "id", "dtype": "string"}, "syn.parquet")))
    with pytest.raises(DataPreparationError, match=r"column 'app_id': declared dtype string but the source stores "
                                                    r"numbers \(int64\), e\.g\. \[1, 2, 3, 4, 5\]") as err:
        parse_declared_types(load_source(spec), spec)
    assert err.value.column == "app_id"
    problems = check_training_data(spec).problems  # finml validate names it once, as a format problem
    assert [(p.kind, p.column) for p in problems] == [("format", "app_id")]
    assert "leading zeros are lost already" in problems[0].text
    rows.assign(app_id=rows["app_id"].map("{:06d}".format)).to_parquet(tmp_path / "syn.parquet", index=False)
    assert parse_declared_types(load_source(spec), spec)["app_id"].iloc[16] == "000017"  # text in Parquet: kept


def test_id_text_keeps_leading_zeros():
    assert id_text(pd.Series(["007", " 000017 ", "12.0", None])).tolist() == ["007", "000017", "12", None]


@pytest.fixture(scope="module", params=["string", None], ids=["dtype-string", "no-dtype"])
def trained(tmp_path_factory, request):
    """A registry with syn v1 trained from the CSV whose ids are ``000001``..``000300`` (about 2 s),
    its id declared ``dtype: string`` or without a dtype."""
    base = tmp_path_factory.mktemp("textids")
    spec = _folder(base, {"role": "id", **({"dtype": request.param} if request.param else {})})
    assert train_version(spec, base / "registry", base / "reports") == 1
    return base, spec


def _registry_copy(base, tmp_path):
    """A copy of the trained registry this test may ledger into."""
    import shutil

    shutil.copytree(base / "registry", tmp_path / "registry")
    return tmp_path / "registry"


def test_scoring_a_csv_writes_and_ledgers_the_id_as_written_and_its_outcome_joins(trained, tmp_path):
    from tasks.ledger import ledger_scored_rows
    from tasks.outcomes import join_outcomes, read_outcomes, recorded_outcomes
    from tasks.scoring import load_model_version, predictions_frame, read_validate_score, write_predictions

    base, spec = trained
    registry = _registry_copy(base, tmp_path)
    _rows(40, seed=3).drop(columns=["default"]).to_csv(tmp_path / "batch.csv", index=False)
    loaded = load_model_version.fn("syn", registry, 1)
    table, scores, *_ = read_validate_score.fn(spec, loaded, str(tmp_path / "batch.csv"))
    assert table["app_id"].iloc[16] == "000017"
    output = tmp_path / "scored.csv"
    write_predictions.fn(predictions_frame(spec, table, scores, 1, "2026-12-01T10:00:00+00:00"), output)
    lines = output.read_text().splitlines()
    assert lines[0].startswith("app_id,score,") and lines[17].startswith("000017,")
    ledgered = ledger_scored_rows.fn(spec, registry, table, scores, 1, "run-1", "2026-12-01T10:00:00+00:00",
                                     as_of="2026-11-30")
    assert ledgered["rows"] == 40
    ledger = read_ledger(registry, "syn")
    assert ledger["id"].tolist()[:3] == ["000001", "000002", "000003"] and "000017" in set(ledger["id"])
    (tmp_path / "outcomes.csv").write_text("app_id,outcome,outcome_date\n000017,1,2026-12-20\n017,0,2026-12-20\n")
    outcomes = read_outcomes(tmp_path / "outcomes.csv", spec)
    assert outcomes["id"].tolist() == ["000017", "017"]
    join = join_outcomes(ledger, outcomes, recorded_outcomes(registry, "syn"), 12, "o-1")
    assert join.joined["id"].tolist() == ["000017"] and join.counts["unknown_id"] == 1
    assert join.joined["score"].iloc[0] == pytest.approx(scores[16], abs=1e-12)


def test_serving_and_batch_scoring_ledger_the_same_id(trained, tmp_path):
    from flows.serve import ServiceConfig, create_app

    base, _ = trained
    registry = _registry_copy(base, tmp_path)
    app = create_app(["syn"], ServiceConfig(registry, base, tmp_path / "reports", flush_seconds=3600))
    with TestClient(app) as client:
        reply = client.post("/v1/models/syn/score", json=[{"app_id": "000017", "x1": 0.1, "x2": 2.0}])
        assert reply.status_code == 200, reply.text
    assert read_ledger(registry, "syn")["id"].tolist() == ["000017"]
