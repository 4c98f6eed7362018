"""Contact-policy rule types (spec §13.2/13.3) compiled to expressions.

Config shapes (any subset where it makes sense):

- ``frequency_cap``: ``{maxPerDay, maxPerWeek, maxPerMonth, lookbackHours}`` (day window =
  lookbackHours, default 24 h; week 7 days; month 30 days, all rolling back from ``as_of``)
  or the Gen-1 ``{maxContacts, windowDays}``; counts the customer's contacts in the scope.
- ``cooldown``: ``{cooldownHours}``: no contact in the scope within that many hours.
- ``perOffer: true`` (frequency_cap, cooldown, outcome_based) counts only the candidate's own
  offer within the scope, i.e. one global policy acting per offer.
- ``outcome_based``: ``{outcomeType | outcomeTypes, lookbackDays = 30}``: that outcome in
  the scope within the lookback.
- ``segment_exclusion``: ``{excludeSegments}``.
- ``time_window``: ``{allowedDays: [1..7] (Mon=1; 0 or 7 = Sunday), allowedHours: {start,
  end}, timezone = UTC}``: ``as_of`` must fall inside.
- ``mutual_exclusion``: ``{offerIds, lookbackDays?}``: once one offer of the group was
  served, the others are suppressed.
- ``cross_channel_cap``: frequency caps on the candidate's offer summed over all channels.
- ``customer_total_cap``: ``{maxTotal | maxContacts, windowDays?}`` or the frequency-cap
  windows, over every contact of the customer.
- ``category_suppression``: ``{lookbackHours = 24 | lookbackDays, categoryIds?}``: a contact
  in the candidate's category within the lookback suppresses the whole category.
- ``allow_override``: matching candidates bypass every blocking policy.
- ``metric_condition``: ``{metric, operator, value}`` on column ``metrics.<metric>``;
  blocks when true, a missing value never blocks.
- ``budget_exhausted``: blocks offers whose ``remainingStock`` is 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from engine.flow import columns as c
from engine.flow.conditions import compare, scope_assignments, scope_label, scope_predicate
from engine.flow.history import AGE, CAT, IMP
from engine.flow.nodes.base import Call, CompileContext, any_of, conj, first_match
from engine.flow.nodes.qualify import normalize_operator

DAY = 86400.0
Fires = Callable[[Call, Mapping[str, pl.DataType]], pl.Expr]


@dataclass(frozen=True)
class Policy:
    id: str  # unique column prefix
    policy_id: str
    name: str
    rule_type: str
    applies: pl.Expr | None
    reason: pl.Expr
    fires_static: pl.Expr | None = None
    fires_fn: Fires | None = None
    aggs: dict[str, list[pl.Expr]] = field(default_factory=dict)
    override: bool = False
    mandatory_too: bool = False
    lookback: float | None = None  # seconds of history the aggregates read (None = all)

    def fires(self, call: Call, schema: Mapping[str, pl.DataType]) -> pl.Expr:
        if self.fires_fn is not None:
            return self.fires_fn(call, schema)
        return self.fires_static if self.fires_static is not None else pl.lit(False)


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def cap_windows(cfg: Mapping[str, Any]) -> list[tuple[str, float | None, int]]:
    """``(label, window seconds or None = all time, max)`` for each configured cap."""
    out: list[tuple[str, float | None, int]] = []
    lookback = _num(cfg.get("lookbackHours"))
    for key, label, seconds in (
        ("maxPerDay", "day", lookback * 3600.0 if lookback else DAY),
        ("maxPerWeek", "week", 7 * DAY),
        ("maxPerMonth", "month", 30 * DAY),
    ):
        if _num(cfg.get(key)) is not None:
            out.append((label, seconds, int(cfg[key])))
    if _num(cfg.get("maxContacts")) is not None:
        days = _num(cfg.get("windowDays"))
        out.append(
            (
                f"{days:g}d" if days else "total",
                days * DAY if days else None,
                int(cfg["maxContacts"]),
            )
        )
    if _num(cfg.get("maxTotal")) is not None:
        out.append(("total", None, int(cfg["maxTotal"])))
    return out


def _within(seconds: float | None) -> pl.Expr | None:
    """History rows younger than ``seconds``; None = all of them."""
    return None if seconds is None else pl.col(AGE) < seconds


def _count(rows: pl.Expr, *filters: pl.Expr | None) -> pl.Expr:
    """How many history rows match ``rows`` and every filter (None = no filter)."""
    counted = conj(rows, *filters)
    assert counted is not None
    return counted.sum()


def _history_scope(
    assignments: list[tuple[str, str | None]], ctx: CompileContext
) -> pl.Expr | None:
    """Which history rows fall in a policy's scope (the counting side of the scope); None =
    all of them."""
    preds = []
    for scope, sid in assignments:
        if scope in ("global", "segment"):
            return None
        if scope == "subcategory":
            offers = ctx.catalog.offers.filter(pl.col("offer.subCategoryId") == sid)
            preds.append(pl.col("offer_id").is_in(offers.get_column(c.OFFER_ID).to_list()))
        else:
            column = {
                "offer": "offer_id",
                "creative": "creative_id",
                "channel": "channel_id",
                "placement": "placement_id",
                "category": CAT,
            }.get(scope)
            preds.append(pl.col(column) == sid if column else pl.lit(False))
    return pl.any_horizontal(preds).fill_null(False)


def _longest(windows: list[tuple[str, float | None, int]]) -> float | None:
    seconds = [w for _, w, _ in windows]
    return None if not seconds or None in seconds else max(s for s in seconds if s is not None)


def _capped(
    pid: str,
    level: str,
    windows: list,
    row_filter: pl.Expr | None,
    text: Callable[[str, int], str],
) -> tuple[pl.Expr, pl.Expr, dict[str, list[pl.Expr]]]:
    aggs, cases = [], []
    for j, (label, seconds, limit) in enumerate(windows):
        name = f"{pid}_n{j}"
        aggs.append(_count(pl.col(IMP), row_filter, _within(seconds)).alias(name))
        cases.append((pl.col(name).fill_null(0) >= limit, pl.lit(text(label, limit))))
    fires = any_of([f for f, _ in cases])
    return fires, first_match(cases, pl.String()), {level: aggs}


def compile_policy(pid: str, doc: Mapping[str, Any], ctx: CompileContext) -> Policy:
    rtype = str(doc.get("ruleType", ""))
    cfg = dict(doc.get("config") or {})
    assignments = scope_assignments(doc)
    label = scope_label(assignments)
    applies = scope_predicate(assignments)
    base = {
        "id": pid,
        "policy_id": str(doc.get("id") or doc.get("name")),
        "name": str(doc.get("name", "")),
        "rule_type": rtype,
        "applies": applies,
        "mandatory_too": rtype in ("frequency_cap", "cross_channel_cap")
        or cfg.get("bypassable") is False,
    }
    hscope = _history_scope(assignments, ctx)
    # perOffer: count each candidate's own offer (one policy instead of one per offer)
    level = "offer" if cfg.get("perOffer") else "customer"
    if level == "offer":
        label += " (per offer)"

    caps = {  # rule type -> (level, counted rows, reason text for window label and limit)
        "frequency_cap": (
            level,
            hscope,
            lambda lab, m: f"frequency_cap exceeded: {m}/{lab} at scope={label}",
        ),
        "cross_channel_cap": (
            "offer",
            None,
            lambda lab, m: f"cross_channel_cap exceeded: {m}/{lab} for the offer at scope={label}",
        ),
        "customer_total_cap": (
            "customer",
            None,
            lambda lab, m: f"customer_total_cap exceeded: {m}/{lab}",
        ),
    }
    if rtype in caps:
        cap_level, counted, text = caps[rtype]
        windows = cap_windows(cfg)
        fires, reason, aggs = _capped(pid, cap_level, windows, counted, text)
        return Policy(
            **base, reason=reason, fires_static=fires, aggs=aggs, lookback=_longest(windows)
        )
    if rtype == "cooldown":
        hours = _num(cfg.get("cooldownHours"))
        if hours is None and _num(cfg.get("cooldownDays")) is not None:
            hours = float(cfg["cooldownDays"]) * 24
        name = f"{pid}_age"
        agg = pl.col(AGE).filter(conj(pl.col(IMP), hscope)).min().alias(name)
        fires = pl.col(name) < (hours or 0) * 3600.0 if hours else pl.lit(False)
        text = f"cooldown active: last contact within {hours or 0:g}h at scope={label}"
        return Policy(
            **base,
            reason=pl.lit(text),
            fires_static=fires,
            aggs={level: [agg]},
            lookback=(hours or 0) * 3600.0,
        )
    if rtype == "outcome_based":
        raw = cfg.get("outcomeTypes") or cfg.get("outcomeType") or cfg.get("outcomes") or []
        types = [raw] if isinstance(raw, str) else [str(t) for t in raw]
        days = _num(cfg.get("lookbackDays")) or 30.0
        name = f"{pid}_n"
        agg = _count(pl.col("outcome").is_in(types), hscope, _within(days * DAY)).alias(name)
        text = f"outcome_based: {', '.join(types)} within {days:g}d at scope={label}"
        return Policy(
            **base,
            reason=pl.lit(text),
            fires_static=pl.col(name).fill_null(0) > 0,
            aggs={level: [agg]},
            lookback=days * DAY,
        )
    if rtype == "segment_exclusion":
        segs = [str(s) for s in cfg.get("excludeSegments") or cfg.get("segments") or []]
        hits = [pl.col(c.SEGMENTS).list.contains(s).fill_null(False) for s in segs]
        fires = pl.any_horizontal(hits) if hits else pl.lit(False)
        text = f"segment_exclusion: customer in excluded segment ({', '.join(segs)})"
        return Policy(**base, reason=pl.lit(text), fires_static=fires)
    if rtype == "time_window":
        return Policy(
            **base,
            reason=pl.lit("time_window: outside the allowed days/hours"),
            fires_fn=lambda call, _s: pl.lit(not _time_allowed(cfg, call.as_of)),
        )
    if rtype == "mutual_exclusion":
        group = [str(o) for o in cfg.get("offerIds") or []]
        days = _num(cfg.get("lookbackDays"))
        window = _within(days * DAY if days else None)
        n_name, self_name = f"{pid}_n", f"{pid}_self"
        aggs = {
            "customer": [
                pl.col("offer_id")
                .filter(conj(pl.col(IMP), pl.col("offer_id").is_in(group), window))
                .n_unique()
                .alias(n_name)
            ],
            "offer": [_count(pl.col(IMP), window).alias(self_name)],
        }
        in_group = pl.col(c.OFFER_ID).is_in(group)
        served_self = (pl.col(self_name).fill_null(0) > 0).cast(pl.Int64)
        fires = in_group & ((pl.col(n_name).fill_null(0).cast(pl.Int64) - served_self) > 0)
        text = "mutual_exclusion: another offer of the group was already served"
        return Policy(
            **base,
            reason=pl.lit(text),
            fires_static=fires,
            aggs=aggs,
            lookback=days * DAY if days else None,
        )
    if rtype == "category_suppression":
        hours = _num(cfg.get("lookbackHours"))
        days = _num(cfg.get("lookbackDays"))
        seconds = hours * 3600 if hours else (days * DAY if days else DAY)
        name = f"{pid}_n"
        agg = _count(pl.col(IMP), _within(seconds)).alias(name)
        cats = cfg.get("categoryIds")
        if cats:
            in_cats = pl.col(c.CATEGORY_ID).is_in([str(x) for x in cats]).fill_null(False)
            base["applies"] = in_cats if applies is None else (applies & in_cats)
        text = f"category_suppression: category contacted within {seconds / 3600:g}h"
        return Policy(
            **base,
            reason=pl.lit(text),
            fires_static=pl.col(name).fill_null(0) > 0,
            aggs={"category": [agg]},
            lookback=seconds,
        )
    if rtype == "allow_override":
        offers = cfg.get("offerIds")
        if offers:
            pick = pl.col(c.OFFER_ID).is_in([str(o) for o in offers])
            base["applies"] = pick if applies is None else (applies & pick)
        return Policy(**base, reason=pl.lit(""), override=True)
    if rtype == "metric_condition":
        metric = str(cfg.get("metric") or cfg.get("metricKey") or cfg.get("metricName") or "")
        col = metric if metric.startswith("metrics.") else f"metrics.{metric}"
        op = normalize_operator(cfg.get("operator"))
        value = cfg.get("value")

        def fires_fn(_call: Call, schema: Mapping[str, pl.DataType]) -> pl.Expr:
            dtype = schema.get(col)
            expr = pl.col(col) if dtype is not None else pl.lit(None)
            return compare(expr, dtype, op, value).fill_null(False)

        text = f"metric_condition: {col} {op} {value}"
        return Policy(**base, reason=pl.lit(text), fires_fn=fires_fn)
    if rtype == "budget_exhausted":
        fires = (pl.col("offer.remainingStock") <= 0).fill_null(False)
        return Policy(
            **base, reason=pl.lit("budget_exhausted: offer stock consumed"), fires_static=fires
        )
    # Unknown types never block (they are rejected when a policy is saved).
    return Policy(**base, reason=pl.lit(""))


def _time_allowed(cfg: Mapping[str, Any], as_of: datetime) -> bool:
    tz = cfg.get("timezone") or "UTC"
    try:
        local = as_of.astimezone(ZoneInfo(str(tz)))
    except (KeyError, ValueError):
        local = as_of
    days = cfg.get("allowedDays")
    if days:
        wanted = {7 if int(d) == 0 else int(d) for d in days}
        if local.isoweekday() not in wanted:
            return False
    hours = cfg.get("allowedHours") or {}
    start = _num(hours.get("start", cfg.get("startHour")))
    end = _num(hours.get("end", cfg.get("endHour")))
    if start is None or end is None:
        return True
    now = local.hour + local.minute / 60
    return start <= now < end if start <= end else (now >= start or now < end)


def builtin_policies(ctx: CompileContext, prefix: str) -> list[Policy]:
    """Offer per-customer caps (§10.7) and the mandatory daily cap (§10.8)."""
    out: list[Policy] = []
    offers = ctx.catalog.offers
    caps = [
        ("day", DAY, "offer.capDaily"),
        ("week", 7 * DAY, "offer.capWeekly"),
        ("month", 30 * DAY, "offer.capMonthly"),
    ]
    caps = [cap for cap in caps if offers.get_column(cap[2]).is_not_null().any()]
    if caps:
        pid = f"{prefix}_offercap"
        aggs, cases = [], []
        for j, (label, seconds, column) in enumerate(caps):
            name = f"{pid}_n{j}"
            aggs.append(_count(pl.col(IMP), _within(seconds)).alias(name))
            hit = (pl.col(name).fill_null(0) >= pl.col(column)).fill_null(False)
            cases.append(
                (
                    hit,
                    pl.format("offer frequency cap exceeded: {}/{}", pl.col(column), pl.lit(label)),
                )
            )
        out.append(
            Policy(
                id=pid,
                policy_id="offer.frequencyCaps",
                name="offer frequency caps",
                rule_type="frequency_cap",
                applies=None,
                reason=first_match(cases, pl.String()),
                fires_static=pl.any_horizontal([h for h, _ in cases]),
                aggs={"offer": aggs},
                mandatory_too=True,
                lookback=max(seconds for _, seconds, _ in caps),
            )
        )
    mandatory_ids = offers.filter(pl.col(c.MANDATORY)).get_column(c.OFFER_ID).to_list()
    if mandatory_ids:
        cap = int(ctx.flow_config.get("mandatoryDailyCap", 5))
        name = f"{prefix}_mand_n"
        agg = _count(pl.col(IMP), pl.col("offer_id").is_in(mandatory_ids), _within(DAY))
        out.append(
            Policy(
                id=f"{prefix}_mand",
                policy_id="mandatoryDailyCap",
                name="mandatory daily cap",
                rule_type="mandatory_cap",
                applies=pl.col(c.MANDATORY).fill_null(False),
                reason=pl.lit(f"mandatory cap reached: {cap}/day"),
                fires_static=pl.col(name).fill_null(0) >= cap,
                aggs={"customer": [agg.alias(name)]},
                mandatory_too=True,
                lookback=DAY,
            )
        )
    return out
