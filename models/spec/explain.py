"""The ``drivers`` section of a spec: how a version's global drivers are measured (permutation
importance, standardised coefficients, partial dependence). Why these methods: docs/interpretability.md."""

from __future__ import annotations

from pydantic import Field

from models.spec.base import Strict


class DriversSpec(Strict):
    """Global drivers of the selected candidate, measured on the holdout and shown in the model card.

    Permutation importance (Breiman 2001; ``sklearn.inspection.permutation_importance``): the
    loss of the primary metric when one feature's values are shuffled, ``repeats`` times with a
    seeded generator; partial dependence (Friedman 2001): the average score when one feature is
    set to each point of a grid, all other features as observed.
    """

    repeats: int = Field(default=5, ge=2, le=50)
    """Shuffles per feature; the card gives the mean loss and its standard deviation over them."""
    max_rows: int = Field(default=5000, ge=50, le=200_000)
    """Holdout rows used (a seeded random sample when the holdout is larger): the cost is
    ``features × repeats`` predictions of this many rows."""
    partial_dependence_features: int = Field(default=4, ge=0, le=12)
    """How many of the most important features get a partial-dependence curve (0: none)."""
    grid_points: int = Field(default=12, ge=3, le=50)
    """Points of each partial-dependence grid: quantiles 5 %..95 % of a numeric feature, the most
    frequent levels of a categorical one."""
    seed: int = 0
    """Seed of the row sample and the shuffles, so a version's drivers can be recomputed exactly."""
