"""Synthetic interaction history for the Starbucks pack, vectorized with numpy.

Each customer receives a Poisson number of impressions around an activity level (lapsed
members are contacted less, new members more); each impression shows an offer picked uniformly,
one of the offer's channels uniformly and one of that pair's creatives by creative weight, on a
uniform day at a time of day shaped like coffee-shop traffic. Clicks
follow a click-through rate that depends on offer type, channel, tier and segments; a
conversion (a completed offer, valued at the transaction amount) follows a click with a rate
that depends on offer type, difficulty and income: BOGO converts best for high incomes,
discounts for lower incomes, informational offers never convert. Impressions that are not
clicked are sometimes dismissed. Responses that would fall at or after ``as_of`` have not
happened yet and are dropped. Impressions the pack's eligibility gates forbid (members under
18, the income-gated hard BOGO) are never generated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from engine.catalog.documents import SYSTEM_OUTCOME_TYPES
from engine.catalog.snapshot import HISTORY_SCHEMA
from engine.errors import ValidationError

HISTORY_FRAME_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    **HISTORY_SCHEMA,
    "recommendation_id": pl.String(),
    "rank": pl.Int64(),
    "context": pl.String(),
}

_US = 1_000_000
_HOUR = 3_600 * _US
_DAY = 24 * _HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

OUTCOMES = ("impression", "click", "conversion", "dismiss")
_SYSTEM = {key: (cls, category) for key, cls, category in SYSTEM_OUTCOME_TYPES}
_CLASSIFICATION = [_SYSTEM[o][0] for o in OUTCOMES]
_DIRECTION = ["outbound" if _SYSTEM[o][1] == "impression" else "inbound" for o in OUTCOMES]

# Rates by offer type: P(click | impression), P(conversion | click), P(dismiss | no click).
_CTR = {"bogo": 0.11, "discount": 0.09, "informational": 0.06}
_CONVERSION = {"bogo": 0.55, "discount": 0.50, "informational": 0.0}
_DISMISS = {"bogo": 0.04, "discount": 0.05, "informational": 0.09}
# By channel type: click-through lift, dismiss lift, mean minutes from impression to click.
_CHANNEL_CTR = {"web": 0.6, "email": 1.0, "push": 1.2, "social": 1.35}
_CHANNEL_DISMISS = {"web": 1.0, "email": 0.7, "push": 1.3, "social": 1.0}
_CLICK_MINUTES = {"web": 2.0, "email": 240.0, "push": 20.0, "social": 60.0}
# Relative traffic by hour of day (UTC): breakfast peak, lunch, afternoon pick-me-up.
_HOURLY = np.array(
    [1, 1, 1, 1, 1, 2, 5, 9, 10, 8, 6, 6, 8, 7, 6, 7, 7, 6, 5, 4, 3, 2, 2, 1], dtype=np.float64
)


@dataclass(frozen=True)
class _Creatives:
    """The active creatives, one array entry each, with the probability an impression uses it."""

    ids: list[str]
    offer_ids: list[str]
    channel_ids: list[str]
    placement_ids: list[str | None]
    category_ids: list[str | None]
    offer_type: np.ndarray  # str
    channel_type: np.ndarray  # str
    difficulty: np.ndarray
    duration_days: np.ndarray
    probability: np.ndarray


@dataclass(frozen=True)
class _Customers:
    high_income: np.ndarray
    low_income: np.ndarray
    unknown: np.ndarray
    lapsed: np.ndarray
    new_member: np.ndarray
    gold: np.ndarray
    silver: np.ndarray


def _number(value: Any, default: float) -> float:
    try:
        return default if value is None else float(value)
    except (TypeError, ValueError):
        return default


def _creative_table(documents: dict[str, Any]) -> _Creatives | None:
    offers = {o["id"]: o for o in documents.get("offers", ()) if o.get("status") == "active"}
    channels = {c["id"]: c for c in documents.get("channels", ()) if c.get("status") == "active"}
    pairs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in sorted(documents.get("creatives", ()), key=lambda c: c["id"]):
        usable = c.get("status") == "active" and c.get("weight", 100) > 0
        if usable and c["offerId"] in offers and c["channelId"] in channels:
            pairs.setdefault((c["offerId"], c["channelId"]), []).append(c)
    if not pairs:
        return None
    channels_per_offer: dict[str, int] = {}
    for offer_id, _ in pairs:
        channels_per_offer[offer_id] = channels_per_offer.get(offer_id, 0) + 1
    rows: list[tuple[dict[str, Any], float]] = []
    for (offer_id, _), group in sorted(pairs.items()):
        total = sum(c.get("weight", 100) for c in group)
        share = 1.0 / len(channels_per_offer) / channels_per_offer[offer_id]
        rows.extend((c, share * c.get("weight", 100) / total) for c in group)

    def offer(c: dict[str, Any]) -> dict[str, Any]:
        return offers[c["offerId"]]

    def field(c: dict[str, Any], name: str) -> Any:
        return offer(c).get("customFields", {}).get(name)

    return _Creatives(
        ids=[c["id"] for c, _ in rows],
        offer_ids=[c["offerId"] for c, _ in rows],
        channel_ids=[c["channelId"] for c, _ in rows],
        placement_ids=[c.get("placementId") for c, _ in rows],
        category_ids=[offer(c).get("categoryId") for c, _ in rows],
        offer_type=np.array(
            [str(field(c, "offer_type") or offer(c).get("productType") or "") for c, _ in rows]
        ),
        channel_type=np.array([channels[c["channelId"]].get("channelType", "") for c, _ in rows]),
        difficulty=np.array([_number(field(c, "difficulty"), 0.0) for c, _ in rows]),
        duration_days=np.array(
            [max(_number(field(c, "duration_days"), 7.0), 1.0) for c, _ in rows]
        ),
        probability=np.array([p for _, p in rows]),
    )


def _customer_features(customers: pl.DataFrame) -> _Customers:
    n = customers.height
    cols = customers.columns
    none = np.zeros(n, dtype=bool)
    income = (
        customers["income"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        if "income" in cols
        else np.full(n, np.nan)
    )

    def segment(name: str) -> np.ndarray:
        if "segments" not in cols:
            return none
        return customers["segments"].list.contains(name).fill_null(False).to_numpy()

    def tier(name: str) -> np.ndarray:
        if "tier" not in cols:
            return none
        return (customers["tier"] == name).fill_null(False).to_numpy()

    return _Customers(
        high_income=income >= 70_000,
        low_income=income < 50_000,
        unknown=np.isnan(income),
        lapsed=segment("lapsed"),
        new_member=segment("new_member"),
        gold=tier("gold"),
        silver=tier("silver"),
    )


def _lookup(table: dict[str, float], keys: np.ndarray, default: float) -> np.ndarray:
    out = np.full(keys.shape, default)
    for key, value in table.items():
        out[keys == key] = value
    return out


def _rates(
    cust: _Customers, cr: _Creatives, ci: np.ndarray, ki: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per impression (customer index ``ci``, creative index ``ki``): click, conversion, dismiss.

    Each rate is a creative factor times a customer factor; both are computed once on the
    small tables and gathered, so the long arrays see one multiply per rate.
    """
    ctr_cr = _lookup(_CTR, cr.offer_type, 0.08) * _lookup(_CHANNEL_CTR, cr.channel_type, 1.0)
    ease = np.sqrt(np.minimum(1.0, 5.0 / np.maximum(cr.difficulty, 1.0)))
    conv_cr = _lookup(_CONVERSION, cr.offer_type, 0.3) * ease * (cr.duration_days / 7.0) ** 0.2
    dismiss_cr = _lookup(_DISMISS, cr.offer_type, 0.05) * _lookup(
        _CHANNEL_DISMISS, cr.channel_type, 1.0
    )
    type_code = np.where(cr.offer_type == "bogo", 0, np.where(cr.offer_type == "discount", 1, 2))

    high, low = cust.high_income, cust.low_income
    click_c = (
        np.where(cust.lapsed, 0.55, 1.0)
        * np.where(cust.new_member, 1.25, 1.0)
        * np.where(cust.gold, 1.2, np.where(cust.silver, 1.08, 1.0))
        * np.where(cust.unknown, 0.8, 1.0)
    )
    # income effect by offer type: BOGO pays off for high incomes, discounts for lower ones
    conv_c = np.stack(
        [
            np.where(high, 1.5, np.where(low, 0.8, 1.0)),
            np.where(low, 1.3, np.where(high, 0.9, 1.0)),
            np.ones(high.size),
        ]
    ) * (np.where(cust.lapsed, 0.6, 1.0) * np.where(cust.unknown, 0.7, 1.0))
    dismiss_c = np.where(cust.lapsed, 1.8, 1.0)
    click = np.minimum(ctr_cr[ki] * click_c[ci], 0.6)
    convert = np.minimum(conv_cr[ki] * conv_c[type_code[ki], ci], 0.95)
    dismiss = np.minimum(dismiss_cr[ki] * dismiss_c[ci], 0.5)
    return click, convert, dismiss


def _sample(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """``size`` indices drawn with probability proportional to ``weights``."""
    cumulative = np.cumsum(weights, dtype=np.float64)
    picks = np.searchsorted(cumulative, rng.random(size) * cumulative[-1], side="right")
    return np.minimum(picks, len(weights) - 1)


_COMPARE = {
    "eq": lambda s, v: s == v,
    "neq": lambda s, v: s != v,
    "gt": lambda s, v: s > v,
    "gte": lambda s, v: s >= v,
    "lt": lambda s, v: s < v,
    "lte": lambda s, v: s <= v,
    "in": lambda s, v: s.is_in(list(v)),
    "not_in": lambda s, v: ~s.is_in(list(v)),
}


def _eligible(
    customers: pl.DataFrame,
    documents: dict[str, Any],
    cr: _Creatives,
    ci: np.ndarray,
    ki: np.ndarray,
) -> np.ndarray:
    """Which impressions the pack's eligibility gates allow (a history the catalog could make).

    Honours active ``attribute_condition`` rules on a ``customer.<column>`` of ``customers``
    with global, category or offer scope; a missing attribute passes, as in the engine.
    """
    ok = np.ones(ci.size, dtype=bool)
    for rule in documents.get("qualification_rules", ()):
        config = rule.get("config", {})
        column = str(config.get("attribute", "")).removeprefix("customer.")
        compare = _COMPARE.get(config.get("operator", ""))
        scope, scope_id = rule.get("scope", "global"), rule.get("scopeId")
        if (
            rule.get("status") != "active"
            or rule.get("ruleType") != "attribute_condition"
            or compare is None
            or column not in customers.columns
            or scope not in ("global", "category", "offer")
        ):
            continue
        try:
            passes = compare(customers[column], config.get("value")).fill_null(True).to_numpy()
        except (pl.exceptions.PolarsError, TypeError):
            continue  # a value the column cannot be compared with: not a gate we can honour
        scoped = {"category": cr.category_ids, "offer": cr.offer_ids}.get(scope)
        applies = np.ones(len(cr.ids), bool) if scoped is None else np.array(scoped) == scope_id
        ok &= ~applies[ki] | passes[ci]
    return ok


def _check(customers: pl.DataFrame, days: int, as_of: datetime, per_customer: float) -> datetime:
    if "customer_id" not in customers.columns:
        raise ValidationError("customers needs a customer_id column", field="customers")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValidationError(f"days must be a positive integer, got {days!r}", field="days")
    if not math.isfinite(per_customer) or per_customer < 0:
        raise ValidationError(
            f"per_customer must be a finite number >= 0, got {per_customer!r}", field="per_customer"
        )
    if not isinstance(as_of, datetime):
        raise ValidationError(f"as_of must be a datetime, got {as_of!r}", field="as_of")
    return as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)


def generate_history(
    customers: pl.DataFrame,
    documents: dict[str, Any],
    *,
    days: int = 90,
    as_of: datetime,
    seed: int = 42,
    per_customer: float = 10.0,
) -> pl.DataFrame:
    """About ``per_customer`` interactions per customer in ``[as_of - days, as_of)``, by ``ts``.

    ``documents`` are the pack's validated documents (``load_pack_documents``); only active
    offers, channels and creatives are used. ``customers`` needs ``customer_id``; ``income``,
    ``tier`` and ``segments`` shape the rates when present. A naive ``as_of`` is taken as UTC.
    Columns are ``HISTORY_FRAME_SCHEMA``: ``id`` (``hist-<seed>-<10-digit row>``, ascending with
    ``ts``), the engine's ``HISTORY_SCHEMA`` and null ``recommendation_id``/``rank``/``context``.
    ``value`` is the transaction amount ($) of a conversion, null otherwise. The same inputs
    and seed give the same frame.
    """
    as_of = _check(customers, days, as_of, per_customer)
    creatives = _creative_table(documents)
    n = customers.height
    target = round(n * per_customer)
    if creatives is None or target == 0:
        return pl.DataFrame(schema=HISTORY_FRAME_SCHEMA)
    rng = np.random.default_rng(seed)
    cust = _customer_features(customers)
    end_us = (as_of - _EPOCH) // timedelta(microseconds=1)
    start_us = end_us - days * _DAY

    # 1. candidate impressions: a Poisson number per customer around its activity level, then
    #    drop what the pack's gates forbid and thin to leave room for the expected responses
    activity = rng.gamma(2.0, 0.5, n) * np.where(
        cust.lapsed, 0.35, np.where(cust.new_member, 1.3, 1.0)
    )
    ci = np.repeat(np.arange(n), rng.poisson(activity * (target / activity.sum())))
    ki = _sample(rng, creatives.probability, ci.size)
    ci, ki = _keep(np.flatnonzero(_eligible(customers, documents, creatives, ci, ki)), ci, ki)
    if ci.size == 0:
        return pl.DataFrame(schema=HISTORY_FRAME_SCHEMA)
    p_click, p_conv, p_dismiss = _rates(cust, creatives, ci, ki)
    per_impression = 1.0 + float(
        np.mean(p_click * (1.0 + p_conv)) + np.mean((1.0 - p_click) * p_dismiss)
    )
    share = min(1.0, target / (per_impression * ci.size))
    ci, ki, p_click, p_conv, p_dismiss = _keep(
        np.flatnonzero(rng.random(ci.size) < share), ci, ki, p_click, p_conv, p_dismiss
    )
    m = ci.size
    day = rng.integers(0, days, m)
    hour = _sample(rng, _HOURLY, m)
    imp_ts = start_us + day * _DAY + hour * _HOUR + (rng.random(m) * _HOUR).astype(np.int64)
    del day, hour

    # 2. responses to those impressions
    clicked = rng.random(m) < p_click
    converted = clicked & (rng.random(m) < p_conv)
    dismissed = ~clicked & (rng.random(m) < p_dismiss)
    del p_click, p_conv, p_dismiss
    click_i, conv_i, dismiss_i = (np.flatnonzero(x) for x in (clicked, converted, dismissed))
    click_minutes = _lookup(_CLICK_MINUTES, creatives.channel_type, 30.0)[ki[click_i]]
    click_ts = imp_ts[click_i] + _US + (rng.exponential(click_minutes) * 60 * _US).astype(np.int64)
    after_click = np.flatnonzero(converted[click_i])  # positions of conversions in click_i
    window = creatives.duration_days[ki[conv_i]] * _DAY
    conv_ts = click_ts[after_click] + _US + (rng.random(conv_i.size) ** 2 * window).astype(np.int64)
    dismiss_delay = rng.exponential(15.0, dismiss_i.size) * 60 * _US
    dismiss_ts = imp_ts[dismiss_i] + _US + dismiss_delay.astype(np.int64)

    # 3. one long log, censored at as_of and ordered by (ts, customer, creative, outcome), with
    #    the three indices packed into one int64 so the sort moves two columns, not five
    row = np.concatenate([np.arange(m), click_i, conv_i, dismiss_i])
    outcome = np.repeat(
        np.arange(4, dtype=np.int64), [m, click_i.size, conv_i.size, dismiss_i.size]
    )
    width = len(creatives.ids) * len(OUTCOMES)
    log = (
        pl.DataFrame(
            {
                "ts": np.concatenate([imp_ts, click_ts, conv_ts, dismiss_ts]),
                "code": ci[row] * width + ki[row] * len(OUTCOMES) + outcome,
            }
        )
        .filter(pl.col("ts") < end_us)
        .sort("ts", "code")
    )
    del row, outcome, imp_ts, click_ts, conv_ts, dismiss_ts
    code = log["code"].to_numpy()
    cu_i, code = np.divmod(code, width)
    cr_i, outcome = np.divmod(code, len(OUTCOMES))
    # a conversion's value is the transaction amount: at least the offer's minimum spend
    value = np.full(code.size, np.nan)
    conv_rows = np.flatnonzero(outcome == OUTCOMES.index("conversion"))
    value[conv_rows] = np.round(
        creatives.difficulty[cr_i[conv_rows]] + rng.gamma(2.0, 2.5, conv_rows.size), 2
    )
    return _frame(customers, creatives, cu_i, cr_i, outcome, log["ts"], value, seed)


def _keep(index: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(a[index] for a in arrays)


def _frame(
    customers: pl.DataFrame,
    cr: _Creatives,
    cu_i: np.ndarray,
    cr_i: np.ndarray,
    outcome: np.ndarray,
    ts: pl.Series,
    value: np.ndarray,
    seed: int,
) -> pl.DataFrame:
    size = ts.len()

    def by_creative(values: list[str | None]) -> pl.Series:
        return pl.Series(values, dtype=pl.String).gather(cr_i)

    def nulls(dtype: pl.DataType) -> pl.Series:
        return pl.Series([], dtype=dtype).extend_constant(None, size)

    # ten-digit row number (10**10 + i without its leading 1), so ids sort like timestamps
    row = (pl.int_range(size, dtype=pl.Int64) + 10**10).cast(pl.String).str.slice(1)
    return pl.DataFrame(
        {
            "id": pl.select(pl.concat_str(pl.lit(f"hist-{seed}-"), row)).to_series(),
            "customer_id": customers["customer_id"].cast(pl.String).gather(cu_i),
            "offer_id": by_creative(cr.offer_ids),
            "creative_id": by_creative(cr.ids),
            "channel_id": by_creative(cr.channel_ids),
            "placement_id": by_creative(cr.placement_ids),
            "category_id": by_creative(cr.category_ids),
            "outcome": pl.Series(OUTCOMES, dtype=pl.String).gather(outcome),
            "classification": pl.Series(_CLASSIFICATION, dtype=pl.String).gather(outcome),
            "direction": pl.Series(_DIRECTION, dtype=pl.String).gather(outcome),
            "ts": ts.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            "value": pl.Series(value, dtype=pl.Float64, nan_to_null=True),
            "recommendation_id": nulls(pl.String()),
            "rank": nulls(pl.Int64()),
            "context": nulls(pl.String()),
        },
        schema=HISTORY_FRAME_SCHEMA,
    )
