"""The scoring service's request schema, generated from a spec's columns (tasks/serving_schema.py), and
the scoring of records through the batch path (tasks/serving.py) on small synthetic specs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression

from models.settings import BUILTIN_SPECS_DIR
from models.spec import find_spec, parse_spec
from tasks.scoring import LoadedVersion
from tasks.serving import ServedVersion, records_frame, result_rows, score_records
from tasks.serving_schema import ServingUnsupportedError, record_problems, record_schema


def _spec(columns: dict, **extra) -> object:
    return parse_spec({
        "name": "toy", "task": "binary_classification", "description": "serving schema test",
        "intended_use": "Tests only.", "limitations": ["Synthetic."], "source": {"kind": "file", "path": "unused.csv"},
        "columns": columns, "target": {"column": "y", "positive": 1, "classes": [0, 1]}, "table": {"min_rows": 10},
        "split": {"method": "stratified_holdout", "test_size": 0.25, "seed": 42},
        "candidates": [{"name": "logistic", "estimator": "logistic_regression"}],
        "gate": {"primary_metric": "roc_auc", "rules": [{"kind": "threshold", "metric": "roc_auc", "min": 0.5}]},
        **extra})


def _problems(schema, body) -> list[tuple]:
    raw = json.dumps(body).encode()
    with pytest.raises(ValidationError) as err:
        schema.validate_body(raw)
    return [(d["record"], d["field"], d["rule"]) for d in record_problems(err.value, isinstance(body, list))]


def test_the_credit_schema_follows_the_spec_columns():
    schema = record_schema(find_spec("credit_risk", BUILTIN_SPECS_DIR))
    props = schema.json_schema["properties"]
    assert props["Seniority"] == {"description": "Length of employment", "maximum": 80.0, "minimum": 0.0,
                                  "title": "Seniority", "type": "number"}
    assert props["rownames"]["type"] == "integer" and props["rownames"]["minimum"] == 1
    assert props["Records"]["enum"] == ["no", "yes"]
    assert set(schema.json_schema["required"]) == {"rownames", "Seniority", "Time", "Age", "Records", "Expenses",
                                                   "Amount", "Price"}  # max_null_share 0
    assert schema.nullable == {"Home", "Marital", "Job", "Income", "Assets", "Debt"}  # may be null or left out
    assert "Status" not in props  # the label is not sent


def test_sentinels_invalid_values_dates_and_optional_columns():
    spec = _spec({
        "id": {"role": "id"},
        "x": {"role": "numeric", "min": 0, "max": 10, "sentinels": [999], "max_null_share": 0.5},
        "z": {"role": "numeric", "min": 0, "sentinels": [-1]},
        "w": {"role": "numeric", "min": 0, "max": 5, "on_invalid": "missing", "max_null_share": 0.5},
        "c": {"role": "categorical", "allowed": ["a", "b"]},
        "d": {"role": "datetime", "date_format": "%d/%m/%Y"},
        "s": {"role": "protected", "allowed": ["f", "m"]},
        "v": {"role": "numeric", "min": 0, "max": 1, "severity": "warning"},
    })
    schema = record_schema(spec)
    good = {"id": "r1", "x": 999, "z": 3, "w": "oops", "c": "a", "d": "31/12/2025", "v": 0.5}
    assert schema.validate_body(json.dumps(good).encode()) == [dict(good, x=None)]  # the sentinel is a missing value
    assert _problems(schema, dict(good, z=-1)) == [(0, "z", "max_null_share")]
    assert _problems(schema, dict(good, v="high")) == [(0, "v", "dtype")]  # a warning column still needs its type
    from tasks.serving_schema import soft_warnings

    soft = [dict(good, v=v) for v in (0.5, 7, None, -1)]
    assert schema.validate_body(json.dumps(soft).encode())[1]["v"] == 7  # outside [0, 1]: reported, not refused
    assert soft_warnings(spec, soft) == ["v: 1 value(s) missing (max_null_share 0) (severity: warning), records [2]",
                                         "v: 2 value(s) outside [0.0, 1.0] (severity: warning), records [1, 3]"]  # a sentinel where none may be missing
    assert _problems(schema, [good, dict(good, d="2025-12-31", c="A", s="x", x="5")]) == [
        (1, "x", "dtype"), (1, "c", "allowed"), (1, "d", "date_format"), (1, "s", "allowed")]
    assert _problems(schema, dict(good, x=float("nan"))) == [(0, "x", "dtype")]  # NaN: send null for missing
    assert _problems(schema, "a record") == [(0, None, "body")]
    frame = records_frame(spec, schema, schema.validate_body(json.dumps([good, dict(good, x=4)]).encode()))
    assert list(frame.columns) == ["id", "x", "z", "w", "c", "d", "v"]  # the protected column no record carries is left out
    assert frame["x"].dtype == "float64" and np.isnan(frame["x"][0]) and frame["x"][1] == 4
    assert frame["w"].tolist() == ["oops", "oops"]  # left to the batch path, which makes it missing with a warning


def test_a_spec_with_a_feature_builder_is_not_served():
    with pytest.raises(ServingUnsupportedError, match="market_forecast.*realised_volatility.*finml score"):
        record_schema(find_spec("market_forecast", BUILTIN_SPECS_DIR))


def _served(spec, n=400, seed=1) -> tuple[ServedVersion, LogisticRegression]:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(2, 1, n), "w": rng.uniform(0, 5, n)})
    y = (X["x"] + rng.normal(0, 1, n) > 2).astype(int)
    pipeline = make_pipeline(FunctionTransformer(lambda f: f.fillna(0.0)), LogisticRegression()).fit(X, y)
    loaded = LoadedVersion(pipeline, 3, {"features": ["x", "w"]}, pd.DataFrame())
    return ServedVersion(spec, loaded, record_schema(spec), None, "2026-12-04T00:00:00+00:00"), pipeline


def test_records_of_a_time_ordered_spec_are_answered_in_request_order_with_invalid_values_made_missing():
    spec = _spec({"id": {"role": "id"}, "day": {"role": "datetime"},
                  "x": {"role": "numeric"}, "w": {"role": "numeric", "min": 0, "max": 5, "on_invalid": "missing",
                                                  "max_null_share": 0.5}}, time_column="day")
    served, pipeline = _served(spec)
    body = [{"id": "c", "day": "2026-03-01", "x": 3.0, "w": 1.0}, {"id": "a", "day": "2026-01-01", "x": 1.0, "w": 9.0},
            {"id": "b", "day": "2026-02-01", "x": 2.0, "w": 2.0}]
    scored = score_records(served, served.schema.validate_body(json.dumps(body).encode()))
    rows = result_rows(scored)
    assert [r["id"] for r in rows] == ["c", "a", "b"]  # parse_declared_types sorts by day; the answers do not
    expected = pipeline.predict_proba(pd.DataFrame({"x": [3.0, 1.0, 2.0], "w": [1.0, np.nan, 2.0]}))[:, 1]
    np.testing.assert_allclose([r["score"] for r in rows], expected, rtol=0, atol=1e-12)
    assert scored.warnings == ["w: 1 value(s) not values within [0.0, 5.0] taken as missing"]
    assert all(r["model"] == "toy" and r["version"] == 3 for r in rows) and "grade" not in rows[0]


def test_rows_the_ledger_cannot_take_are_kept_and_written_aside_at_close(tmp_path):
    from tasks.serving_ledger import LedgerBuffer

    spec = _spec({"id": {"role": "id"}, "x": {"role": "numeric"}})
    buffer = LedgerBuffer(tmp_path / "registry", "serve-test", flush_seconds=3600, reports_root=tmp_path / "reports")
    table = pd.DataFrame({"id": ["a", "b"], "x": [1.0, 2.0]})
    assert buffer.add(spec, table, np.array([0.1, 0.9]), None, 3, "2026-12-04T10:00:00.000+00:00") is None
    assert buffer.add(spec, table.iloc[:1], np.array([0.2]), None, 3, "2026-12-04T10:00:01.000+00:00") is None
    assert buffer.flush() == 0 and buffer.failures == 1 and buffer.waiting == 3  # no model folder: kept for later
    assert buffer.close() == 3
    (kept,) = (tmp_path / "reports" / "serving").glob("unledgered-toy-*.parquet")
    frame = pd.read_parquet(kept)
    assert frame["id"].tolist() == ["a", "b", "a"] and frame["score"].tolist() == [0.1, 0.9, 0.2]
    assert frame["scored_at"].tolist() == [pd.Timestamp("2026-12-04T10:00:00Z")] * 2 + [pd.Timestamp("2026-12-04T10:00:01Z")]
    assert (frame["as_of"] == frame["scored_at"]).all() and set(frame["model_version"]) == {3}
    repeated = buffer.add(spec, pd.DataFrame({"id": ["a", "a"], "x": [1.0, 1.0]}), np.array([0.1, 0.1]), None, 3,
                          "2026-12-04T10:00:02+00:00")
    assert "repeat an id" in repeated  # not ledgered, and the answer says why


def test_integers_beyond_64_bits_are_refused_and_ids_of_several_requests_keep_their_digits(tmp_path):
    """A JSON integer outside int64 would become a float (2**53 + 1 reads as 2**53) or overflow to
    -2**63 in the ledger, so two applicants could share one id: refused (422, rule dtype). Ids of
    requests ledgered in one append keep every digit whatever each request's id column type."""
    from models.ledger import read_ledger
    from tasks.serving_ledger import LedgerBuffer

    spec = _spec({"id": {"role": "id", "dtype": "integer"}, "code": {"role": "id"}, "x": {"role": "numeric"},
                  "w": {"role": "numeric", "max_null_share": 0.5}})
    schema = record_schema(spec)
    good = {"id": 2**53 + 1, "code": 7, "x": 1.0, "w": 1.0}
    assert schema.validate_body(json.dumps(good).encode())[0]["id"] == 2**53 + 1
    assert _problems(schema, [good, dict(good, id=2**63), dict(good, id=-(2**63) - 1), dict(good, code=10**30)]) == [
        (1, "id", "dtype"), (2, "id", "dtype"), (3, "code", "dtype")]
    raw = json.dumps(dict(good, id=10**30)).encode()
    with pytest.raises(ValidationError) as err:
        schema.validate_body(raw)
    assert "64-bit range" in record_problems(err.value, False)[0]["message"]
    (tmp_path / "toy").mkdir()
    buffer = LedgerBuffer(tmp_path, "serve-test", flush_seconds=3600)
    for ids in ([2**53, 2**53 + 1], ["0000017"], [3.0]):  # int64, text and float id columns, one append
        table = pd.DataFrame({"id": ids})
        assert buffer.add(spec, table, np.full(len(ids), 0.5), None, 1, "2026-12-07T10:00:00+00:00") is None
    buffer.close()
    assert read_ledger(tmp_path, "toy")["id"].tolist() == [str(2**53), str(2**53 + 1), "0000017", "3"]


def test_a_true_or_false_in_a_lenient_numeric_column_is_an_invalid_value_not_one_or_zero():
    """``on_invalid: missing`` accepts any scalar and the batch path judges it: true is not the number 1."""
    spec = _spec({"id": {"role": "id"}, "x": {"role": "numeric"},
                  "w": {"role": "numeric", "min": 0, "max": 5, "on_invalid": "missing", "max_null_share": 0.5}})
    served, pipeline = _served(spec)
    body = [{"id": "a", "x": 1.0, "w": True}, {"id": "b", "x": 1.0, "w": 1}, {"id": "c", "x": 1.0, "w": False}]
    scored = score_records(served, served.schema.validate_body(json.dumps(body).encode()))
    expected = pipeline.predict_proba(pd.DataFrame({"x": [1.0, 1.0, 1.0], "w": [np.nan, 1.0, np.nan]}))[:, 1]
    np.testing.assert_allclose(scored.scores, expected, rtol=0, atol=1e-12)
    assert scored.warnings == ["w: 2 value(s) not values are numeric taken as missing"]
    alone = score_records(served, served.schema.validate_body(json.dumps(body[0]).encode()))  # a column of booleans only
    np.testing.assert_allclose(alone.scores, expected[:1], rtol=0, atol=1e-12)
    assert alone.warnings == ["w: 1 value(s) not values are numeric taken as missing"]


def test_a_bad_date_is_named_with_its_value_and_format():
    schema = record_schema(_spec({"id": {"role": "id"}, "d": {"role": "datetime", "date_format": "%d.%m.%Y"},
                                  "x": {"role": "numeric"}}))
    with pytest.raises(ValidationError) as err:
        schema.validate_body(json.dumps({"id": "a", "d": "2025-12-31", "x": 1.0}).encode())
    assert record_problems(err.value, False)[0]["message"] == "'2025-12-31' is not a date in the format %d.%m.%Y"
