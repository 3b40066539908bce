"""The monitoring verdict: the findings of a batch (faults, drift, breaches, calibration,
feature drift) in order of seriousness, the calibration test, and what the spec does on each.

Plain functions on the measurements of :mod:`tasks.drift` and :func:`tasks.monitor.performance`;
the precedence table and its reasons are in ``docs/drift.md`` ("Verdict precedence").
"""

from __future__ import annotations

from typing import Any

from models.records.monitoring import ALARM_VERDICTS, SEVERITY, VERDICTS
from models.spec import DriftSpec
from models.statistics import rate_test


def decide_verdict(dataset_drift: bool, breaches: list[str], batch_faults: list[str] | tuple = (),
                   tested: int | None = None, label_fault: str | None = None, *,
                   calibration_breach: bool = False, feature_drift: list[str] | tuple = (),
                   out_of_range: list[str] | tuple = (), var_red_zone: bool = False) -> str:
    """The monitoring verdict: the first of the findings below that holds (one of :data:`VERDICTS`).

    Args:
        dataset_drift: the PSI dataset-drift decision (:class:`tasks.drift.DriftResult`).
        breaches: the performance metrics whose worsening exceeds their tolerance.
        batch_faults: constant or all-missing features whose states moved beyond sampling
            noise and materially (:attr:`tasks.drift.FeatureDrift.batch_fault`).
        tested: features judged for drift (None: not known, taken as some).
        label_fault: the labels' event rate implausible for the spec's expected range, or None.
        calibration_breach: the observed event rate against the mean predicted probability is
            beyond noise and beyond the tolerance (:func:`judge_calibration`).
        feature_drift: the features (and ``score``) at a significant PSI
            (:func:`feature_drift_names`), whatever the drift share.
        out_of_range: features with a material share of values outside the training range
            (:func:`tasks.ranges.out_of_range_report`).
        var_red_zone: the batch's VaR back-test is in the Basel red zone
            (:func:`tasks.var_backtest.batch_var_backtest`).

    Returns:
        In this order: ``data_quality_alarm`` for feature faults (drift or a breach measured on
        a broken feed is no evidence that the model is stale; a person must look at the feed);
        ``drift_and_performance_breach`` (dataset drift with a metric or calibration breach),
        ``var_red_zone`` (the Basel red zone: the VaR model is presumed inaccurate, BCBS 1996, whatever
        the inputs did), ``drift``, ``calibration_breach`` (the probabilities themselves are off, whatever the
        ranking does), ``performance_breach``; ``data_quality_alarm`` for values outside the training range
        (with dataset drift or a breach the population moved, and those verdicts stand) or a
        label fault alone (with drift or a breach it may be the population really changing, so
        it does not hold those back); ``feature_drift`` (one characteristic or the score moved);
        ``insufficient_data`` when no feature could be judged; else ``stable``. A new finding is
        one more ``(verdict, condition)`` row at its place.
    """
    rules = (
        ("data_quality_alarm", bool(batch_faults)),
        ("drift_and_performance_breach", dataset_drift and (bool(breaches) or calibration_breach)),
        ("var_red_zone", var_red_zone),
        ("drift", dataset_drift),
        ("calibration_breach", calibration_breach),
        ("performance_breach", bool(breaches)),
        ("data_quality_alarm", bool(out_of_range)),
        ("data_quality_alarm", bool(label_fault)),
        ("feature_drift", bool(feature_drift)),
        ("insufficient_data", tested == 0),
    )
    return next((verdict for verdict, holds in rules if holds), "stable")


def feature_drift_names(drifted: list[str], score_status: str | None, score_name: str = "score") -> list[str]:
    """The characteristics at a significant PSI: the drifted features, then ``score_name`` when
    the model score's status is ``significant`` (credit practice tracks each characteristic and
    the score, Siddiqi 2006, ch. 8)."""
    return list(drifted) + ([score_name] if score_status == "significant" else [])


def event_action(verdict: str, drift_spec: DriftSpec) -> str | None:
    """What the spec does on ``verdict``: ``drift.on_feature_drift`` for ``feature_drift``,
    ``drift.on_drift`` for the other alarms, ``alert`` for ``data_quality_alarm`` (a feed needs a
    person, never a retraining), None for ``stable`` and ``insufficient_data`` (no event)."""
    if verdict == "feature_drift":
        return drift_spec.on_feature_drift
    if verdict in ALARM_VERDICTS:
        return drift_spec.on_drift
    if verdict == "data_quality_alarm":
        return "alert"
    return None


def severity(verdict: str) -> str:
    """``critical``, ``warning`` or ``info`` (:data:`models.records.monitoring.SEVERITY`)."""
    return SEVERITY[verdict]


def judge_calibration(events: int, rows: int, mean_predicted: float, drift_spec: DriftSpec) -> dict[str, Any]:
    """Calibration in the large of a labelled batch: the observed event rate against the mean
    predicted probability, beyond noise and materially.

    Args:
        events, rows: positive labels and labelled rows (``rows >= 1``).
        mean_predicted: mean predicted event probability of those rows.
        drift_spec: ``calibration_alpha`` and the ``calibration_ratio`` tolerance
            (:meth:`models.spec.DriftSpec.tolerance`).

    Returns:
        ``{events, rows, p_value, jeffreys_low, jeffreys_high, alpha, tolerance, breach}``:
        the two-sided exact binomial p-value of ``events`` under ``mean_predicted`` and the
        Jeffreys interval of the observed rate at ``1 - alpha``
        (:func:`models.statistics.rate_test`). ``breach`` when ``p_value < alpha`` and
        ``|mean_predicted / observed - 1|`` exceeds the tolerance (no events with a positive
        prediction counts as beyond any tolerance; a tolerance of None: significance alone).
        With heterogeneous PDs the count of events has a variance below the binomial's
        ``n p (1 - p)``, so the test is conservative.

    Raises:
        models.statistics.StatisticsError: counts out of range, or a mean outside [0, 1].
    """
    alpha, tolerance = drift_spec.calibration_alpha, drift_spec.tolerance("calibration_ratio")
    test = rate_test(events, rows, mean_predicted, confidence=1.0 - alpha)
    observed = test.observed
    if observed > 0:
        material = tolerance is None or abs(mean_predicted / observed - 1.0) > tolerance
    else:
        material = mean_predicted > 0
    return {"events": test.events, "rows": test.rows, "p_value": test.p_value, "jeffreys_low": test.jeffreys_low,
            "jeffreys_high": test.jeffreys_high, "alpha": alpha, "tolerance": tolerance,
            "breach": bool(test.p_value < alpha and material)}


def calibration_sentence(cal: dict[str, Any] | Any) -> str:
    """The calibration in words: both rates, the ratio, the Jeffreys interval and the p-value
    (a :class:`models.records.monitoring.Calibration` or its dict)."""
    get = cal.get if isinstance(cal, dict) else lambda k: getattr(cal, k, None)
    ratio = get("ratio")
    text = (f"mean predicted {get('mean_predicted'):.4f} against observed rate {get('observed_rate'):.4f}"
            + (f" (ratio {ratio:.2f})" if ratio is not None else ""))
    if get("p_value") is not None:
        level = 100 * (1 - get("alpha"))
        text += (f", {get('events')} events in {get('rows')} rows, Jeffreys {level:g} % interval "
                 f"[{get('jeffreys_low'):.4f}, {get('jeffreys_high'):.4f}], exact binomial p = {get('p_value'):.2g}")
    if get("brier") is not None:
        text += f", Brier score {get('brier'):.4f}"
    return text


__all__ = ["VERDICTS", "decide_verdict", "feature_drift_names", "event_action", "severity", "judge_calibration",
           "calibration_sentence"]
