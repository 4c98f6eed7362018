"""Properties over random logs and random metric definitions.

* Realtime is a batch of one: each customer's values computed from that customer's rows alone
  equal the batch values, whatever the row order.
* The batch equals a plain-Python oracle of the documented semantics (windows, edges, nulls,
  ratio with a zero denominator, grouping).
* Counters kept live equal the rebuild: replaying the log event by event and incrementing
  count/sum counters (as Respond would) gives, after every event, what ``realtime_values``
  computes from the rows so far, and at the end what the batch computes once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from engine.metrics import compute_metrics, realtime_values
from tests.engine.metrics.conftest import AS_OF, DAY, event, history

CUSTOMERS = ["c1", "c2", "c3"]
OFFERS = ["off_a", "off_b", None]
CHANNELS = ["ch_web", "ch_email", None]
OUTCOMES = ["impression", "click", "conversion", "dismiss", "convert", "purchase", "defer"]
SOURCES = [*OUTCOMES, "impressions", "positive", "negative", "neutral", "converts", "totalValue"]
SORT = ["metric", "customer_id", "group_key"]

# timestamps: anywhere in the last 40 days or up to 2 days after as_of, with extra weight on
# the exact window edges (as_of - n days) and on as_of itself
offsets = st.one_of(
    st.integers(-40 * 86_400, 2 * 86_400).map(lambda s: timedelta(seconds=s)),
    st.sampled_from([0, 1, 3, 7, 30]).map(lambda d: -d * DAY),
    st.sampled_from([1, 7]).map(lambda d: -d * DAY + timedelta(microseconds=1)),
)
# quarters are exact in binary floating point, so sums do not depend on their order
values = st.one_of(st.none(), st.integers(-40, 400).map(lambda q: q / 4))


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    return event(
        draw(st.sampled_from(CUSTOMERS)),
        draw(st.sampled_from(OUTCOMES)),
        AS_OF + draw(offsets),
        offer=draw(st.sampled_from(OFFERS)),
        channel=draw(st.sampled_from(CHANNELS)),
        value=draw(values),
    )


# (filterConditions, the same test written by hand in Python)
FILTERS: list[tuple[dict[str, Any] | None, Any]] = [
    (None, lambda r: True),
    ({"field": "channelId", "operator": "eq", "value": "ch_web"},
     lambda r: r["channel_id"] == "ch_web"),
    ({"field": "channelId", "operator": "neq", "value": "ch_email"},
     lambda r: r["channel_id"] != "ch_email"),
    ({"field": "offerId", "operator": "not_in", "value": ["off_b"]},
     lambda r: r["offer_id"] != "off_b"),
    ({"or": [{"field": "value", "operator": "gte", "value": 10},
             {"field": "outcomeType", "operator": "in", "value": ["click", "dismiss"]}]},
     lambda r: (r["value"] is not None and r["value"] >= 10) or r["outcome"] in ("click",
                                                                                "dismiss")),
    ({"and": [{"field": "direction", "operator": "neq", "value": "outbound"},
              {"field": "offerId", "operator": "contains", "value": "a"}]},
     lambda r: r["direction"] != "outbound" and r["offer_id"] is not None and "a" in r["offer_id"]),
]
FILTER_TESTS = {i: test for i, (_, test) in enumerate(FILTERS)}


def source_matches(source: str, r: dict[str, Any]) -> bool:
    """The sourceField table of ``engine.metrics.compile``, by hand."""
    if source == "impressions":
        return r["outcome"] == "impression"
    if source in ("positive", "negative"):
        return r["classification"] == source
    if source == "neutral":
        return r["classification"] == "neutral" and r["outcome"] != "impression"
    if source == "converts":
        return r["outcome"] in ("conversion", "convert")
    if source == "totalValue":
        return r["value"] is not None
    return r["outcome"] == source


@st.composite
def metric_defs(draw: st.DrawFn, functions: tuple[str, ...] | None = None,
                windows: bool = True) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 4))
    out = []
    for i in range(n):
        fn = draw(st.sampled_from(functions or ("count", "sum", "avg", "min", "max", "ratio")))
        doc: dict[str, Any] = {
            "name": f"m{i}",
            "aggregateFunction": fn,
            "sourceField": draw(st.sampled_from(SOURCES)),
            "windowDays": draw(st.sampled_from([None, 1, 7, 30])) if windows else None,
            "groupByDimensions": draw(st.sampled_from(
                [[], ["offerId"], ["channelId"], ["outcomeType"], ["offerId", "channelId"]])),
        }
        if fn == "ratio":
            doc["denominatorField"] = draw(st.sampled_from(SOURCES))
        which = draw(st.integers(0, len(FILTERS) - 1))
        doc["_filter"] = which
        if FILTERS[which][0] is not None:
            doc["filterConditions"] = FILTERS[which][0]
        out.append(doc)
    return out


PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(rows=st.lists(events(), max_size=40), metrics=metric_defs(), seed=st.integers(0, 99))
def test_realtime_per_customer_equals_batch(rows: list[dict], metrics: list[dict],
                                            seed: int) -> None:
    metrics = _docs(metrics)
    log = history(rows)
    batch = compute_metrics(log, metrics, as_of=AS_OF).sort(SORT)
    shuffled = log.sample(fraction=1.0, shuffle=True, seed=seed)
    parts = [realtime_values(shuffled.filter(pl.col("customer_id") == c), metrics, AS_OF)
             for c in CUSTOMERS]
    assert_frame_equal(pl.concat(parts).sort(SORT), batch)


def _matches(doc: dict[str, Any], row: dict[str, Any]) -> bool:
    return source_matches(doc["sourceField"], row) and FILTER_TESTS[doc["_filter"]](row)


def _docs(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in m.items() if k != "_filter"} for m in metrics]


def _key(doc: dict[str, Any], row: dict[str, Any]) -> str | None:
    cols = {"offerId": "offer_id", "channelId": "channel_id", "outcomeType": "outcome"}
    dims = doc["groupByDimensions"]
    if any(row[cols[d]] is None for d in dims):
        return "<skip>"
    return "|".join(f"{d}={row[cols[d]]}" for d in dims) or None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(events(), max_size=25),
       metrics=metric_defs(functions=("count", "sum"), windows=False))
def test_live_counters_equal_the_rebuild(rows: list[dict], metrics: list[dict]) -> None:
    docs = _docs(metrics)
    ordered = sorted((r for r in rows if r["ts"] <= AS_OF), key=lambda r: r["ts"])
    counters: dict[tuple[str, str, str | None], float] = {}
    seen: list[dict] = []
    for row in ordered:
        # Respond: append the event, bump the realtime counters
        seen.append(row)
        for doc in metrics:
            key = _key(doc, row)
            if key == "<skip>" or not _matches(doc, row):
                continue
            inc = 1.0 if doc["aggregateFunction"] == "count" else (row["value"] or 0.0)
            k = (doc["name"], row["customer_id"], key)
            counters[k] = counters.get(k, 0.0) + inc
        # recomputing that customer's values from its rows so far gives the live counters
        mine = history([r for r in seen if r["customer_id"] == row["customer_id"]])
        now = realtime_values(mine, docs, row["ts"])
        live = {k: v for k, v in counters.items() if k[1] == row["customer_id"]}
        assert {(m, c, g): v for m, c, g, v in now.iter_rows()} == live
    batch = compute_metrics(history(rows), docs, as_of=AS_OF)
    assert {(m, c, g): v for m, c, g, v in batch.iter_rows()} == counters


def oracle(rows: list[dict[str, Any]], docs: list[dict[str, Any]]) -> dict[tuple, float | None]:
    """The documented semantics, row by row, in plain Python."""
    out: dict[tuple, float | None] = {}
    for doc in docs:
        window = doc["windowDays"]
        groups: dict[tuple[str, str | None], list[list[dict]]] = {}
        for r in rows:
            if r["ts"] > AS_OF or (window is not None and r["ts"] <= AS_OF - window * DAY):
                continue
            key = _key(doc, r)
            if key == "<skip>":
                continue
            num = _matches(doc, r)
            den = doc["aggregateFunction"] == "ratio" and source_matches(
                doc["denominatorField"], r) and FILTER_TESTS[doc["_filter"]](r)
            if num or den:
                sides = groups.setdefault((r["customer_id"], key), [[], []])
                if num:
                    sides[0].append(r)
                if den:
                    sides[1].append(r)
        for (customer, key), (num_rows, den_rows) in groups.items():
            fn = doc["aggregateFunction"]
            vals = [r["value"] for r in num_rows if r["value"] is not None]
            if fn == "ratio":
                def side(src: str, rs: list[dict]) -> float:
                    if src == "totalValue":
                        return float(sum(r["value"] for r in rs))
                    return float(len(rs))
                n, d = side(doc["sourceField"], num_rows), side(doc["denominatorField"], den_rows)
                value = None if d == 0 else n / d
            elif not num_rows:
                continue
            elif fn == "count":
                value = float(len(num_rows))
            elif fn == "sum":
                value = float(sum(vals))
            elif not vals:
                value = None
            else:
                value = {"avg": sum(vals) / len(vals), "min": min(vals), "max": max(vals)}[fn]
            out[(doc["name"], customer, key)] = value
    return out


@PROPERTY
@given(rows=st.lists(events(), max_size=40), metrics=metric_defs())
def test_batch_equals_a_python_oracle(rows: list[dict], metrics: list[dict]) -> None:
    batch = compute_metrics(history(rows), _docs(metrics), as_of=AS_OF)
    got = {(m, c, g): v for m, c, g, v in batch.iter_rows()}
    want = oracle(rows, metrics)
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert (got[k] is None) == (v is None), k
        if v is not None:
            assert abs(got[k] - v) <= 1e-9 * max(1.0, abs(v)), k
