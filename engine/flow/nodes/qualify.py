"""``qualify``: qualification rules, the decisioning gates of spec §12.

Rules run in priority order (highest first). Stages: ``eligibility`` and ``fit`` are hard
(a failing candidate is removed; the first failing hard rule is the recorded reason),
``match`` is soft (the candidate's fitMultiplier is multiplied by the rule's ``decay``,
config ``decay`` default 0.5, clamped to 0.1-1.0), ``ranking`` is stored but ignored.
Legacy stage names map qualification -> eligibility, applicability -> fit,
suitability -> match; the default stage depends on the rule type.

Rule types and config:

- ``segment_required`` ``{requiredSegments: [...]}``: the customer has all of them (request
  ``segments`` plus enriched ``customer.segment(s)``); reason ``Missing required segments: …``.
- ``attribute_condition`` ``{attribute, operator, value}``: operators eq, neq, gt, gte, lt,
  lte, in, not_in, exists, not_exists. ``customer.age`` / ``attributes.tier`` are columns; a
  schema-prefixed ``starbucks_customers.age`` or bare ``age`` resolves to ``customer.age``
  then ``attributes.age``. A missing attribute passes, except for the exists operators.
- ``propensity_threshold`` ``{minPropensity}`` (alias ``threshold``): adaptive propensity >=
  threshold; the offer's own ``propensityThreshold`` takes precedence when set.
- ``recency_check`` ``{minDaysSinceLastContact | minHoursSinceLastContact,
  maxDaysSinceLastContact | maxHoursSinceLastContact, outcomeTypes?, level: offer|customer}``:
  time since the last contact (or given outcome) of the offer (or any offer); never
  contacted passes.
- ``metric_condition`` ``{metric, operator, value}``: reads column ``metrics.<metric>``;
  a missing column or null value passes.
- any other type counts as not passed (spec §12.1).

Scopes: global, category, subcategory, offer, creative, channel, placement, segment, or a
``scopes[]`` list (any assignment matches). Mandatory offers skip qualification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from engine.catalog.rule_configs import COMPARISONS, OPERATOR_ALIASES
from engine.flow import columns as c
from engine.flow.conditions import (
    compare,
    resolve_attribute,
    scope_assignments,
    scope_predicate,
)
from engine.flow.configs import QualifyConfig
from engine.flow.history import AGE, IMP
from engine.flow.nodes.base import Call, CompileContext, Node, alive, conj, mark, not_mandatory

STAGE_ALIASES = {"qualification": "eligibility", "applicability": "fit", "suitability": "match"}
DEFAULT_STAGES = {
    "segment_required": "eligibility",
    "attribute_condition": "eligibility",
    "metric_condition": "eligibility",
    "propensity_threshold": "match",
    "recency_check": "match",
}
ATTRIBUTE_OPERATORS = frozenset(COMPARISONS)
TRACE_PREFIX = "_qtrace"


def normalize_operator(op: Any) -> str:
    op = str(op or "eq").strip().lower()
    return OPERATOR_ALIASES.get(op, op)


@dataclass(frozen=True)
class Rule:
    index: int
    id: str
    name: str
    type: str
    stage: str
    decay: float
    config: dict[str, Any]
    applies: pl.Expr | None

    @property
    def hard(self) -> bool:
        return self.stage in ("eligibility", "fit")


def _rule(i: int, doc: dict[str, Any]) -> Rule:
    rtype = doc.get("ruleType", "")
    stage = doc.get("stage") or DEFAULT_STAGES.get(rtype, "eligibility")
    stage = STAGE_ALIASES.get(stage, stage)
    config = dict(doc.get("config") or {})
    try:
        decay = float(config.get("decay", 0.5))
    except (TypeError, ValueError):
        decay = 0.5
    return Rule(
        index=i,
        id=str(doc.get("id") or doc.get("name")),
        name=str(doc.get("name", "")),
        type=rtype,
        stage=stage,
        decay=min(max(decay, 0.1), 1.0),
        config=config,
        applies=scope_predicate(scope_assignments(doc)),
    )


def _seconds(cfg: dict[str, Any], prefix: str) -> float | None:
    days, hours = (
        cfg.get(f"{prefix}DaysSinceLastContact"),
        cfg.get(f"{prefix}HoursSinceLastContact"),
    )
    if days is not None:
        return float(days) * 86400.0
    return float(hours) * 3600.0 if hours is not None else None


class QualifyNode(Node):
    config: QualifyConfig

    def prepare(self, ctx: CompileContext) -> None:
        docs = [r for r in ctx.catalog.qualification_rules if r.get("status", "active") == "active"]
        if self.config.ruleIds is not None:
            docs = [r for r in docs if r.get("id") in self.config.ruleIds]
        rules = [_rule(i, d) for i, d in enumerate(docs)]
        self.rules = [r for r in rules if r.stage != "ranking"]
        self.needs_propensity = any(r.type == "propensity_threshold" for r in self.rules)
        self.regular = not_mandatory(ctx.catalog)  # mandatory offers skip qualification
        self.aggs = {"customer": [], "offer": []}
        for r in self.rules:
            if r.type == "recency_check":
                outcomes = r.config.get("outcomeTypes") or r.config.get("outcomeType")
                if outcomes:
                    wanted = [outcomes] if isinstance(outcomes, str) else list(outcomes)
                    pred = pl.col("outcome").is_in(wanted)
                else:
                    pred = pl.col(IMP)
                level = "customer" if r.config.get("level") == "customer" else "offer"
                self.aggs[level].append(pl.col(AGE).filter(pred).min().alias(self._age_col(r)))
                lo, hi = _seconds(r.config, "min"), _seconds(r.config, "max")
                # a max-age condition must see contacts of any age
                self.extend_lookback(level, None if hi is not None or lo is None else lo)

    def _age_col(self, r: Rule) -> str:
        return f"_q{self.index}_{r.index}_age"

    def _passes(self, r: Rule, schema: dict[str, pl.DataType]) -> tuple[pl.Expr, pl.Expr]:
        """(passes, reason); ``passes`` null means the rule is skipped (passes)."""
        cfg = r.config
        if r.type == "segment_required":
            required = [str(s) for s in cfg.get("requiredSegments") or []]
            if not required:
                return pl.lit(True), pl.lit("")
            segs = pl.col(c.SEGMENTS)
            has = [segs.list.contains(s).fill_null(False) for s in required]
            missing = pl.concat_str(
                [pl.when(~h).then(pl.lit(s)) for h, s in zip(has, required, strict=True)],
                separator=", ",
                ignore_nulls=True,
            )
            return pl.all_horizontal(has), pl.lit("Missing required segments: ") + missing
        if r.type == "attribute_condition":
            attr = str(cfg.get("attribute") or cfg.get("field") or "")
            op = normalize_operator(cfg.get("operator"))
            value = cfg.get("value")
            text = f"Attribute condition failed: {attr} {op}" + (
                "" if value is None else f" {value}"
            )
            if op not in ATTRIBUTE_OPERATORS:
                return pl.lit(False), pl.lit(f"Unknown operator {op!r} in rule {r.name!r}")
            found = resolve_attribute(attr, schema)
            expr, dtype = found if found else (pl.lit(None), None)
            return compare(expr, dtype, op, value), pl.lit(text)
        if r.type == "propensity_threshold":
            raw = cfg.get("minPropensity", cfg.get("threshold", cfg.get("minScore")))
            threshold = pl.coalesce(
                pl.col("offer.propensityThreshold"),
                pl.lit(None if raw is None else float(raw), dtype=pl.Float64),
            )
            text = pl.format(
                "Propensity {} below threshold {}", pl.col(c.PROPENSITY).round(4), threshold
            )
            return pl.col(c.PROPENSITY) >= threshold, text
        if r.type == "recency_check":
            age = pl.col(self._age_col(r))
            lo, hi = _seconds(cfg, "min"), _seconds(cfg, "max")
            ok = pl.lit(True)
            if lo is not None:
                ok &= age >= lo
            if hi is not None:
                ok &= age <= hi
            return ok, pl.lit(f"Recency check failed: {r.name}")
        if r.type == "metric_condition":
            metric = str(cfg.get("metric") or cfg.get("metricKey") or cfg.get("metricName") or "")
            op = normalize_operator(cfg.get("operator"))
            name = metric if metric.startswith("metrics.") else f"metrics.{metric}"
            dtype = schema.get(name)
            expr = pl.col(name) if dtype is not None else pl.lit(None)
            text = f"Metric condition failed: {name} {op} {cfg.get('value')}"
            return compare(expr, dtype, op, cfg.get("value")), pl.lit(text)
        return pl.lit(False), pl.lit(f"Unknown rule type {r.type!r} (not passed)")

    def _exprs(self, call: Call) -> list[pl.Expr]:
        schema = dict(call.schema)
        regular = self.regular
        hard: list[tuple[pl.Expr, str, pl.Expr]] = []
        decay: pl.Expr | None = None
        fails: list[tuple[Rule, pl.Expr, pl.Expr, pl.Expr]] = []
        for r in self.rules:
            passes, reason = self._passes(r, schema)
            applies = conj(regular, r.applies)
            fail = ~passes.fill_null(True)
            if applies is not None:
                fail = (applies & fail).fill_null(False)
            fails.append((r, applies, fail, reason))
            if r.hard:
                hard.append((fail, r.id, reason))
            else:
                factor = pl.when(fail).then(r.decay).otherwise(1.0)
                decay = factor if decay is None else decay * factor
        extra = []
        if decay is not None:
            fit = pl.when(alive()).then(pl.col(c.FIT) * decay).otherwise(pl.col(c.FIT))
            extra.append(fit.alias(c.FIT))
        if call.trace and fails:
            extra.append(self._trace(fails))
        return mark(self.index, hard, extra, detail=call.trace)

    def _trace(self, fails: list[tuple[Rule, pl.Expr, pl.Expr, pl.Expr]]) -> pl.Expr:
        """Per-candidate list of rule results up to the first hard failure."""
        first = pl.min_horizontal(
            [pl.when(f).then(pl.lit(r.index)) for r, _, f, _ in fails if r.hard]
            or [pl.lit(None, dtype=pl.Int64)]
        ).fill_null(len(self.rules) + 1)
        items = [
            pl.struct(
                pl.lit(r.id).alias("ruleId"),
                pl.lit(r.name).alias("ruleName"),
                pl.lit(r.type).alias("ruleType"),
                pl.lit(r.stage).alias("stage"),
                (~f).alias("passed"),
                pl.when(f).then(reason).otherwise(None).alias("reason"),
                conj(alive(), applies, pl.lit(r.index) <= first).alias("shown"),
                pl.lit(r.index).alias("_i"),
            )
            for r, applies, f, reason in fails
        ]
        return pl.concat_list(items).alias(f"{TRACE_PREFIX}{self.index}")

    def expressions(self, call: Call) -> list[pl.Expr]:
        if not self.rules:
            return []
        return self.cached((call.schema_key, call.trace), lambda: self._exprs(call))
