"""The typed records of the promotion gate: a paired comparison, a rule's verdict, the gate's
result, and the champion's re-scoring on this run's holdout.

Their JSON (``as_dict()``, the python-mode ``model_dump``) is what ``metadata.json`` holds under
``gate`` and ``champion_comparison``; a ``metadata.json`` written before these records existed
reads back into them (``GateResult.model_validate(meta["gate"])``). Rule semantics:
``docs/gates.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, computed_field, model_validator

from models.records import Record


def _drop_derived(data: Any, names: tuple[str, ...]) -> Any:
    """Derived fields are recomputed, not read back (a file holds them for its readers)."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if k not in names}
    return data


class Comparison(Record):
    """Challenger (``a``) against another model (``b``) on the same rows.

    Attributes:
        metric, change, method, confidence: as the rule asked (``confidence`` 0 for method
            ``none``).
        value_a, value_b: the metric of each model on all rows.
        diff: ``a``'s advantage in the better direction (absolute, or relative to ``b``; in loss
            units for Diebold-Mariano).
        ci_low, ci_high: the ``confidence`` interval of ``diff`` (None for method ``none``).
        rows: rows compared; replicates: bootstrap replicates used (0 otherwise).
        note: how the interval was made, in words.
    """

    metric: str
    change: str
    method: str
    confidence: float
    value_a: float
    value_b: float
    diff: float
    ci_low: float | None
    ci_high: float | None
    rows: int
    replicates: int = 0
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON object written into the metadata."""
        return self.model_dump()


class RuleVerdict(Record):
    """The outcome of one gate rule.

    Attributes:
        rule: ``sanity`` (a mandatory rule of the platform), ``threshold``, ``champion`` or ``baseline``.
        metric: the metric judged.
        value: the challenger's value (None when it could not be computed).
        bound: the bound in words (``>= 0.75``, ``advantage over champion vs margin 0.005 (...)``).
        passed: the verdict.
        sentence: the verdict in one sentence.
        applicable: False when the rule could not apply (no champion yet).
        other: what the challenger was compared with (``champion v3``, ``persistence baseline``).
        other_value: that model's value on the same rows.
        comparison: the paired comparison (difference, interval, method), for comparison rules.
    """

    rule: str
    metric: str
    value: float | None
    bound: str
    passed: bool
    sentence: str
    applicable: bool = True
    other: str | None = None
    other_value: float | None = None
    comparison: Comparison | None = None

    @model_validator(mode="before")
    @classmethod
    def _derived(cls, data: Any) -> Any:
        return _drop_derived(data, ("champion_value",))

    @computed_field
    @property
    def champion_value(self) -> float | None:
        """The champion's value on the same rows (champion rules only)."""
        return self.other_value if self.rule == "champion" else None


def _names(verdicts: list[RuleVerdict]) -> str:
    return " and the ".join(dict.fromkeys(v.other or "baseline" for v in verdicts))


class GateResult(Record):
    """All verdicts of the spec's rules; ``passed`` only if every verdict passed.

    Attributes:
        verdicts: the sanity rules first (``rule: sanity``; none in a gate recorded before they
            existed), then one per rule of ``gate.rules``, in spec order.
        champion_version: the champion judged against, None for the first model.
    """

    verdicts: list[RuleVerdict]
    champion_version: int | None

    @model_validator(mode="before")
    @classmethod
    def _derived(cls, data: Any) -> Any:
        return _drop_derived(data, ("passed", "first_model"))

    @computed_field
    @property
    def passed(self) -> bool:
        """Every rule passed."""
        return all(v.passed for v in self.verdicts)

    @computed_field
    @property
    def first_model(self) -> bool:
        """No champion: champion rules did not apply."""
        return self.champion_version is None

    @property
    def failed(self) -> list[RuleVerdict]:
        """The verdicts that failed, in spec order."""
        return [v for v in self.verdicts if not v.passed]

    def failed_sentences(self, baselines: bool = True) -> list[str]:
        """The failed rules' sentences in verdict order, each once: rules that fail for one cause
        (every champion rule when the champion cannot be re-scored) give one sentence, not one per rule.
        ``baselines``: include the baseline rules' sentences."""
        return list(dict.fromkeys(v.sentence for v in self.failed if baselines or v.rule != "baseline"))

    def reason(self) -> str:
        """Why the gate failed, or a one-line pass statement.

        The failed sentences in verdict order (the sanity rules first); the baseline rules come
        last, each with its verdict: "no edge over the naive baselines: ..." when none was
        beaten, else "no edge over the <baseline>: ...; edge over the <baseline>: ..." naming
        each."""
        if self.passed:
            if self.first_model:
                return "all rules passed (first model: judged by value thresholds and baselines alone)"
            return "all rules passed"
        parts = self.failed_sentences(baselines=False)
        baselines = [v for v in self.verdicts if v.rule == "baseline"]
        missed = [v for v in baselines if not v.passed]
        if missed:
            beaten = [v for v in baselines if v.passed]
            if not beaten:
                parts.append("no edge over the naive baselines: " + "; ".join(v.sentence for v in missed))
            else:
                parts.append(f"no edge over the {_names(missed)}: " + "; ".join(v.sentence for v in missed)
                             + f"; edge over the {_names(beaten)}: " + "; ".join(v.sentence for v in beaten))
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """The JSON object written into the metadata under ``gate``: ``passed``,
        ``champion_version``, ``first_model`` and the ``verdicts`` (each with ``champion_value``)."""
        return self.model_dump()


class ChampionRescoring(Record):
    """The champion's scores and metrics on this run's holdout rows.

    Attributes:
        version: the champion's version number.
        method: ``rescored`` (the fitted champion scored the holdout), ``recipe_refit`` (its
            recipe refitted on this run's training rows, the holdout having changed) or
            ``recipe_backtest`` (its recipe re-run through the walk-forward folds).
        same_holdout: whether this run's holdout is the champion's own (None: not recorded).
        metrics: the champion's metrics on the holdout (None when it could not be scored).
        error: why it could not be scored or evaluated (the gate then fails closed).
        scores: the champion's scores on the holdout rows, shape (n,), for the paired
            comparisons; not part of the JSON.
    """

    version: int
    method: str | None = None
    same_holdout: bool | None = None
    metrics: dict[str, float | None] | None = None
    error: str | None = None
    scores: np.ndarray | None = Field(default=None, exclude=True, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The JSON object written into the metadata under ``champion_comparison`` (no scores)."""
        return self.model_dump()
