"""The ``drivers`` section of a spec: how a version's global drivers are measured (permutation
importance, standardised coefficients, partial dependence); the ``reasons`` section: how the
adverse-action reasons of declined applications are chosen. Why these methods: docs/interpretability.md."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.spec.base import Strict


class DriversSpec(Strict):
    """Global drivers of the selected candidate, measured on the holdout and shown in the model card.

    Permutation importance (Breiman 2001; ``sklearn.inspection.permutation_importance``): the
    loss of the primary metric when one feature's values are shuffled, ``repeats`` times with a
    seeded generator; partial dependence (Friedman 2001): the average score when one feature is
    set to each point of a grid, all other features as observed.
    """

    repeats: int = Field(default=5, ge=2, le=50, strict=True)
    """Shuffles per feature; the card gives the mean loss and its standard deviation over them."""
    max_rows: int = Field(default=5000, ge=50, le=200_000, strict=True)
    """Holdout rows used (a seeded random sample when the holdout is larger): the cost is
    ``features × repeats`` predictions of this many rows."""
    partial_dependence_features: int = Field(default=4, ge=0, le=12, strict=True)
    """How many of the most important features get a partial-dependence curve (0: none)."""
    grid_points: int = Field(default=12, ge=3, le=50, strict=True)
    """Points of each partial-dependence grid: quantiles 5 %..95 % of a numeric feature, the most
    frequent levels of a categorical one."""
    seed: int = Field(default=0, strict=True)
    """Seed of the row sample and the shuffles, so a version's drivers can be recomputed exactly."""


class ScorecardSpec(Strict):
    """Scorecard points: the probability of the event (bad) restated on a credit team's points
    scale, ``points = offset + factor · ln(good:bad odds)`` with ``factor = pdo / ln 2`` and
    ``offset = base_points − factor · ln(base_odds)`` (the "points to double the odds" scaling;
    Siddiqi, *Credit Risk Scorecards*, Wiley 2006, "Scorecard scaling": 600 points at 50:1 with a
    pdo of 20 give a factor of 28.8539 and an offset of 487.123). Binary classification only. Scoring output gains an integer ``points`` column and the model card the
    operating cut-off in points and, for a logistic candidate, the points of each feature.
    Formula, rounding and reading: docs/interpretability.md (Scorecard points). Every
    field is a number: a boolean (``pdo: true``) or a quoted number is refused, naming the field.
    """

    base_points: float = Field(allow_inf_nan=False, strict=True)
    """The points given at ``base_odds``: an application whose good:bad odds are ``base_odds``
    scores exactly this."""
    base_odds: float = Field(gt=0, allow_inf_nan=False, strict=True)
    """The good:bad odds (``(1 − p) / p`` for the event probability p) at ``base_points``: 19
    means 19 goods per bad, a 5 % probability of default."""
    pdo: float = Field(gt=0, allow_inf_nan=False, strict=True)
    """Points to double the odds: every ``pdo`` more points, the good:bad odds double (more
    points, less risk)."""
class ReasonsSpec(Strict):
    """Adverse-action reasons of scored applications (``finml score --reasons K``): for every row
    the version declines (its score at or above the operating cut-off stored with the version),
    the features that raise its risk most against a **reference profile** stored at promotion.

    A feature's contribution is the change in the probability of the event when that feature
    alone takes the reference profile's value (the mean of a numeric feature, the most frequent
    category of a categorical one); only features that raise the risk are reasons, ranked by
    contribution, ties in spec column order. Regulation B (12 CFR 1002.9(b)(2) and its official
    commentary, comments 9(b)(2)-4 and -5) and the method: docs/interpretability.md
    (adverse-action reasons).
    """

    reference: Literal["passing_margin", "all"] = "passing_margin"
    """The applicants the reference profile is the average of: ``passing_margin``, the
    ``margin_rows`` approved holdout applicants nearest the cut-off (those at or just above the
    minimum passing score); ``all``, every holdout applicant (the two methods of comment
    9(b)(2)-5)."""
    margin_rows: int = Field(default=100, ge=10, le=100_000, strict=True)
    """With ``reference: passing_margin``: how many approved holdout rows, those with the highest
    scores below the cut-off, form the reference profile (all approved rows when fewer)."""
    k: int | None = Field(default=None, ge=1, le=5, strict=True)
    """Reasons added to every scoring run that does not ask for a number itself (``--reasons``);
    unset: reasons only when asked. Regulation B's commentary: "more than four reasons is not
    likely to be helpful" (comment 9(b)(2)-1); the FCRA allows a fifth key factor when it is the
    number of inquiries (15 U.S.C. 1681g(f)(9)); so at most 5."""
    explain: Literal["declined", "all"] = "declined"
    """Which scored rows get reasons: ``declined`` (score at or above the cut-off) or ``all``
    (every row, approved ones too: the factors that raise its risk most against the reference)."""
    min_contribution: float = Field(default=0.001, ge=0, lt=1, allow_inf_nan=False, strict=True)
    """The smallest contribution (probability of the event, 0.001 = 0.1 percentage point) a factor
    must add against the reference to be a principal reason; a smaller one is not given, and a row
    whose every factor is below it gets no reason code (the command counts such rows). Our
    materiality policy, not a regulatory figure: Regulation B asks for the principal reasons, and a
    factor that moves the probability by a thousandth of a point is not one. 0 gives every factor
    that raises the risk."""
