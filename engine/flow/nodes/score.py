"""``score``: one score per candidate (spec §10.1).

``priority_weighted`` = priority/100 x creative weight/100 x fitMultiplier; ``propensity`` =
adaptive propensity x fitMultiplier; ``formula`` = PRIE (see ``engine.scoring.prie`` for
the factor derivation), where a zero factor with positive weight eliminates the candidate.
Mandatory offers get the fixed score 1.0. ``modelKey`` and the strategy/champion-challenger
options are accepted but not applied (no model registry in the engine yet).
"""

from __future__ import annotations

import polars as pl

from engine.flow import columns as c
from engine.flow.configs import ScoreConfig
from engine.flow.nodes.base import Call, CompileContext, Node, not_mandatory
from engine.scoring.prie import PrieWeights, emphasis_expr, impact_expr, prie
from engine.scoring.priority import priority_weighted, propensity_score

ELIMINATED = c.ELIMINATED


class ScoreNode(Node):
    config: ScoreConfig

    @property
    def eliminates(self) -> bool:
        """Whether the score can eliminate a candidate (column ``_eliminated``)."""
        return self.config.method == "formula"

    @property
    def needs_propensity(self) -> bool:
        return self.config.method in ("propensity", "formula")

    def prepare(self, ctx: CompileContext) -> None:
        self.regular = not_mandatory(ctx.catalog)
        self.impact = impact_expr(ctx.catalog.offers.get_column("offer.businessValue"))
        w = self.config.formula
        self.weights = PrieWeights(
            w.propensityWeight, w.relevanceWeight, w.impactWeight, w.emphasisWeight
        )

    def _factors(self) -> dict[str, pl.Expr]:
        fit = pl.col(c.FIT)
        method = self.config.method
        if method == "priority_weighted":
            return {
                "priority": pl.col(c.PRIORITY_UNIT),
                "weight": pl.col(c.WEIGHT_UNIT),
                "fitMultiplier": fit,
            }
        if method == "propensity":
            return {"propensity": pl.col(c.PROPENSITY), "fitMultiplier": fit}
        return {
            "propensity": pl.col(c.PROPENSITY),
            "relevance": fit,
            "impact": self.impact,
            "emphasis": emphasis_expr(),
        }

    def expressions(self, call: Call) -> list[pl.Expr]:
        return self.cached(call.trace, lambda: self._exprs(call.trace))

    def _exprs(self, trace: bool) -> list[pl.Expr]:
        method = self.config.method
        fit = pl.col(c.FIT)
        if method == "priority_weighted":
            raw = priority_weighted(fit)
        elif method == "propensity":
            raw = propensity_score(pl.col(c.PROPENSITY), fit)
        else:
            f = self._factors()
            raw = prie(f["propensity"], f["relevance"], f["impact"], f["emphasis"], self.weights)
        regular = self.regular
        score = raw if regular is None else pl.when(regular).then(raw).otherwise(1.0)
        cols = [score.alias(c.SCORE)]
        # only PRIE eliminates; the rank node reads the column only then (see ``eliminates``)
        if method == "formula":
            cols.append((raw <= 0 if regular is None else regular & (raw <= 0)).alias(ELIMINATED))
        elif trace:
            cols.append(pl.lit(False).alias(ELIMINATED))
        if trace:
            cols.append(pl.struct(**self._factors()).alias(c.FACTORS))
        return cols
