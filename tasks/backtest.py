"""The back-test of a credit model from its ledger and its joined late outcomes: per version the
grade table with Jeffreys and binomial p-values, the AUC against the initial validation, the
Herfindahl index now against at validation; the migration of grades between the two latest
as-of dates; vintages and the long-run default rate (the tests: :mod:`models.backtest_statistics`;
the ECB's instructions for reporting the validation results of internal models, 2019)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.backtest_statistics import assign_grades, auc_change_test, migration_matrix
from models.spec import ModelSpec
from models.statistics import StatisticsError
from tasks.rating import rating_record
from tasks.step import step


def _auc_test(auc_initial: float | None, y: np.ndarray, p: np.ndarray, policy) -> dict[str, Any]:
    """The AUC change test as a record, or the reason it cannot be computed."""
    if auc_initial is None:
        return {"status": "no initial AUC recorded with the version"}
    try:
        t = auc_change_test(auc_initial, y, p)
    except StatisticsError as err:
        return {"status": f"not computed: {err}"}
    return {"status": "computed", "auc_initial": t.auc_initial, "auc_current": t.auc_current,
            "se_current": t.se_current, "statistic": t.statistic, "p_value": t.p_value,
            "light": policy.colour(t.p_value)}


def version_backtest(spec: ModelSpec, rows: pd.DataFrame, version: int, metadata: dict | None) -> dict[str, Any]:
    """The back-test of one version on its matured rows.

    Args:
        rows: the version's ledger rows with a joined outcome (``score``, ``outcome``), (n, ·).
        metadata: the version's ``metadata.json`` (its holdout ``metrics.roc_auc`` is the initial
            AUC; its ``rating.concentration`` the Herfindahl index at validation), or None.

    Returns:
        ``{version, obligors, defaults, default_rate, mean_pd, rating (tasks.rating.rating_record,
        or None without a rating scale), auc_test, concentration_initial}``.
    """
    y = rows["outcome"].to_numpy(dtype=float)
    p = rows["score"].to_numpy(dtype=float)
    policy = spec.validation.policy
    meta = metadata or {}
    rating = (rating_record(spec.rating_scale, policy, y, p, sample=f"matured outcomes of v{version}")
              if spec.rating_scale is not None and len(p) else None)
    initial = (meta.get("metrics") or {}).get("roc_auc")
    return {"version": int(version), "obligors": int(len(y)), "defaults": int(y.sum()),
            "default_rate": float(y.mean()) if len(y) else None, "mean_pd": float(p.mean()) if len(p) else None,
            "rating": rating, "auc_test": _auc_test(initial, y, p, policy),
            "concentration_initial": ((meta.get("rating") or {}).get("concentration"))}


def latest_migration(spec: ModelSpec, ledger: pd.DataFrame) -> dict[str, Any] | None:
    """The migration matrix of grades between the latest as-of date (day) of the ledger and the
    latest earlier date sharing ids with it (not necessarily the one before), for the ids scored on both (the last score of an id on a date counts); None without a
    rating scale or with fewer than two dates sharing an id.

    Returns:
        ``{first_date, second_date, obligors, grades, counts, rates, upper_mwb, lower_mwb}``.
    """
    if spec.rating_scale is None or ledger.empty:
        return None
    days = pd.to_datetime(ledger["as_of"], utc=True).dt.strftime("%Y-%m-%d")
    frame = ledger.assign(day=days)
    dates = sorted(frame["day"].unique())
    by_day = {d: rows.drop_duplicates("id", keep="last").set_index("id") for d, rows in frame.groupby("day")}
    for second_i in range(len(dates) - 1, 0, -1):
        second = by_day[dates[second_i]]
        for first_i in range(second_i - 1, -1, -1):  # the latest earlier date sharing ids, adjacent or not
            first = by_day[dates[first_i]]
            common = first.index.intersection(second.index)
            if len(common):
                scale = spec.rating_scale
                m = migration_matrix(assign_grades(first.loc[common, "score"].to_numpy(), scale),
                                     assign_grades(second.loc[common, "score"].to_numpy(), scale), scale.names)
                return {"first_date": dates[first_i], "second_date": dates[second_i], "obligors": m.obligors,
                        "grades": m.grades, "counts": m.counts, "rates": m.rates, "upper_mwb": m.upper_mwb,
                        "lower_mwb": m.lower_mwb}
    return None


def matured_segments(spec: ModelSpec, matured: pd.DataFrame) -> list[dict[str, Any]] | None:
    """The segment table of each version's matured rows (:func:`tasks.segments.measure_segments`
    with the outcomes, no reference sample, so no PSI): one dict per version and segment, the
    :class:`~models.records.segments.SegmentRow` fields plus ``version`` and ``jeffreys_light``
    (``validation.policy``). None for a spec without segments.

    Args:
        matured: ledger rows with a joined ``outcome`` (their ``segment:<column>`` values as
            scored; a row scored before the column was declared falls in ``(missing)``).

    Raises:
        DataError: an unbanded protected segment column holding numbers (see ``measure_segments``).
    """
    if not spec.segments:
        return None
    from models.ledger import ledger_segments
    from tasks.segments import measure_segments

    policy = spec.validation.policy
    out: list[dict[str, Any]] = []
    for version, part in matured.groupby("model_version", sort=True):
        frame = ledger_segments(part, spec.segment_columns).assign(
            score=part["score"].to_numpy(float), outcome=part["outcome"].to_numpy(float))
        for row in measure_segments(spec, frame, None, outcome_column="outcome", features=[]):
            record = {"version": int(version), **row.model_dump(exclude={"features", "drifted"})}
            record["jeffreys_light"] = policy.colour(record["jeffreys_p_value"])
            out.append(record)
    return out


def backtest_record(spec: ModelSpec, ledger: pd.DataFrame, rows: pd.DataFrame,
                    metadata: dict[int, dict]) -> dict[str, Any]:
    """The whole back-test: versions, migration, vintages beside the estimate from the scores,
    and the long-run default rate.

    Args:
        ledger: :func:`models.ledger.read_ledger`. rows: :func:`tasks.outcomes.backtest_rows`
            (every ledger row, ``outcome`` NaN until matured). metadata: each version's metadata.

    Returns:
        ``{policy, scored, matured, versions: [version_backtest], migration, vintages, segments}``
        (``segments``: :func:`matured_segments`, None for a spec without segments);
        ``vintages``: :meth:`tasks.vintages.VintageTable.as_dict` (its ``long_run`` is None until
        a vintage has fully matured).
    """
    from tasks.vintages import vintage_table

    matured = rows[rows["outcome"].notna()]
    versions = [version_backtest(spec, part, int(v), metadata.get(int(v)))
                for v, part in matured.groupby("model_version", sort=True)]
    policy = spec.validation.policy
    vintages = vintage_table(rows, spec.backtest.vintage, policy).as_dict()
    return {"policy": {"red": policy.red, "amber": policy.amber, "text": policy.text()},
            "scored": int(len(rows)), "matured": int(len(matured)), "versions": versions,
            "migration": latest_migration(spec, ledger), "vintages": vintages,
            "segments": matured_segments(spec, matured)}


# --------------------------------------------------------------------------- steps of the back-test flow


@step("record-outcomes")
def record_outcomes(spec: ModelSpec, registry_root, labels: str, run_id: str, received_at: str) -> dict[str, Any]:
    """Read an outcomes file, join it to the ledger and store the joined outcomes.

    Returns:
        :meth:`tasks.outcomes.OutcomeJoin.record` plus ``sentences`` (what was left out, why) and
        ``parts`` (the stored parts).

    Raises:
        OutcomesError: a bad file (named), or no outcome id the ledger knows; RegistryError.
    """
    from models.ledger import read_ledger
    from tasks.outcomes import join_outcomes, read_outcomes, recorded_outcomes, store_outcomes

    outcomes = read_outcomes(labels, spec)
    join = join_outcomes(read_ledger(registry_root, spec.name), outcomes, recorded_outcomes(registry_root, spec.name),
                         spec.backtest.outcome_window, run_id)
    parts = store_outcomes(registry_root, spec.name, join.joined, run_id, received_at,
                           {**join.record(), "file": str(labels)})
    return {**join.record(), "sentences": join.sentences(), "parts": parts, "file": str(labels)}


@step("compute-backtest")
def compute_backtest(spec: ModelSpec, registry) -> dict[str, Any]:
    """:func:`backtest_record` of the model's whole ledger and every outcome joined so far
    (``registry``: a :class:`models.registry.ModelRegistry`; each version's metadata is read from it)."""
    from models.ledger import read_ledger
    from tasks.outcomes import backtest_rows, recorded_outcomes

    ledger = read_ledger(registry.root, spec.name)
    rows = backtest_rows(ledger, recorded_outcomes(registry.root, spec.name))
    versions = sorted({int(v) for v in rows["model_version"].unique()}) if len(rows) else []
    known = set(registry.list_versions())
    metadata = {v: registry.verify(v) for v in versions if v in known}  # hash-checked before use
    return backtest_record(spec, ledger, rows, metadata)


def vintage_changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """What changed in the vintage table since the previous back-test record: one entry per
    (vintage, version) and figure (``matured``, ``events``, ``event_rate``, ``auc``) that moved,
    ``{vintage, model_version, figure, before, after}``; a new vintage has ``before`` None."""
    figures = ("matured", "events", "event_rate", "auc")
    old = {(r["vintage"], r["model_version"]): r for r in ((before or {}).get("vintages") or {}).get("rows", [])}
    out = []
    for r in after["vintages"]["rows"]:
        prev = old.get((r["vintage"], r["model_version"]))
        for f in figures:
            a, b = None if prev is None else prev.get(f), r.get(f)
            if a != b:
                out.append({"vintage": r["vintage"], "model_version": r["model_version"], "figure": f,
                            "before": a, "after": b})
    return out
