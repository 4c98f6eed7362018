"""The per-customer decision request and its frame form.

One call decides for K requests. Each request's values become columns of the request frame
(``request.channel``, ``request.limit``, ``attributes.<name>`` …), so requests that arrive
together (micro-batching) may differ in everything except the flow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson
import polars as pl

from engine.errors import ValidationError
from engine.flow import columns as c

MAX_LIMIT = 50
MAX_PLACEMENTS = 32
MAX_MATCH_GROUPS = 8  # distinct match keys up to which a call joins cached matched tables


def _check_limit(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise ValidationError(f"{name} must be an integer between 1 and {MAX_LIMIT}", field=name)
    return value


def _str_tuple(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError(f"{name} must be a list of strings", field=name)
    return tuple(str(v) for v in value)


_NO_ATTRIBUTES: Mapping[str, Any] = MappingProxyType({})


def _empty_tuple(value: Any) -> bool:
    return type(value) is tuple and not value


@dataclass(frozen=True)
class PlacementRequest:
    """One slot of a multi-placement request; ``limit`` defaults to the placement's maxSlots."""

    placement_id: str
    limit: int | None = None

    def __post_init__(self) -> None:
        if not self.placement_id:
            raise ValidationError("placementId is required", field="placements.placementId")
        if self.limit is not None:
            _check_limit(self.limit, "placements.limit")


@dataclass(frozen=True)
class DecisionRequest:
    """What one caller asks for. ``customer_id=None`` makes it a template shared by every
    row of the ``customers`` frame (batch runs)."""

    customer_id: str | None = None
    channel: str | None = None  # channel type (email, web, …)
    channel_id: str | None = None
    placement: str | None = None  # placement id or slot type
    limit: int = 5
    attributes: Mapping[str, Any] = field(default_factory=dict)
    segments: tuple[str, ...] = ()
    exclude_offers: tuple[str, ...] = ()
    exclude_creatives: tuple[str, ...] = ()
    placements: tuple[PlacementRequest, ...] = ()
    deduplicate: bool = False
    debug: bool = False

    def __post_init__(self) -> None:
        # the defaults (the common request) skip their normalization: one per HTTP request
        _check_limit(self.limit, "limit")
        if not isinstance(self.attributes, Mapping):
            raise ValidationError("attributes must be an object", field="attributes")
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes))
                           if self.attributes else _NO_ATTRIBUTES)
        for name in ("segments", "exclude_offers", "exclude_creatives"):
            value = getattr(self, name)
            if not _empty_tuple(value):
                object.__setattr__(self, name, _str_tuple(value, name))
        if not _empty_tuple(self.placements):
            slots = tuple(
                p
                if isinstance(p, PlacementRequest)
                else PlacementRequest(
                    str(p.get("placementId") or p.get("placement_id") or ""), p.get("limit")
                )
                for p in (self.placements or ())
            )
            object.__setattr__(self, "placements", slots)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> DecisionRequest:
        """Build from a Recommend body (camelCase, with the Gen-1 aliases of spec §5.1)."""
        limit = body.get("limit", body.get("maxOffers", 5))
        return cls(
            customer_id=body.get("customerId"),
            channel=body.get("channel"),
            channel_id=body.get("channelId"),
            placement=body.get("placement"),
            limit=5 if limit is None else limit,
            attributes=body.get("attributes") or {},
            segments=body.get("segments") or (),
            exclude_offers=body.get("excludeOffers") or (),
            exclude_creatives=body.get("excludeCreatives") or (),
            placements=tuple(body.get("placements") or ()),
            deduplicate=bool(body.get("deduplicate", False)),
            debug=bool(body.get("debug", body.get("trace", False))),
        )


_LIST = pl.List(pl.String())
BASE_SCHEMA: dict[str, pl.DataType] = {
    c.REQ: pl.UInt32(),
    c.CUSTOMER_ID: pl.String(),
    c.R_CHANNEL: pl.String(),
    c.R_CHANNEL_ID: pl.String(),
    c.R_PLACEMENT: pl.String(),
    c.R_LIMIT: pl.Int32(),
}
SLOT_SCHEMA: dict[str, pl.DataType] = {
    c.SLOT: pl.UInt32(),
    c.SLOT_PLACEMENT: pl.String(),
    c.SLOT_LIMIT: pl.Int32(),
}
# optional request columns, present only when some request of the call uses them
LIST_FIELDS = {
    c.R_SEGMENTS: "segments",
    c.R_EXCLUDE_OFFERS: "exclude_offers",
    c.R_EXCLUDE_CREATIVES: "exclude_creatives",
}
DEBUG = "_debug"


def _attr_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return orjson.dumps(value).decode()
    return value


def _attr_series(name: str, values: list[Any]) -> pl.Series:
    values = [_attr_value(v) for v in values]
    try:
        return pl.Series(name, values, strict=False)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        return pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.String)


def _slots(req: DecisionRequest, slot_sizes: Mapping[str, int]) -> list[tuple[str | None, int]]:
    if not req.placements:
        return [(req.placement, req.limit)]
    return [(p.placement_id, p.limit or slot_sizes.get(p.placement_id, 1)) for p in req.placements]


# (channel, channel id, placement, excluded creatives, excluded offers)
MatchKey = tuple[str | None, str | None, str | None, tuple[str, ...], tuple[str, ...]]


def match_key(req: DecisionRequest) -> MatchKey | None:
    """What creative matching depends on; None for multi-placement requests."""
    if req.placements:
        return None
    return (
        req.channel,
        req.channel_id,
        req.placement,
        tuple(sorted(req.exclude_creatives)),
        tuple(sorted(req.exclude_offers)),
    )


@dataclass(frozen=True)
class RequestFrames:
    """The call's requests. Single-placement calls carry the slot columns (``_slot``,
    ``_slot.placement``, ``_slot.limit``) in ``requests``; multi-placement calls list them
    in ``slots`` (one row per request x placement, keyed by ``_req``)."""

    requests: pl.DataFrame
    slots: pl.DataFrame | None
    debug_any: bool
    max_slots: int = 1
    any_dedupe: bool = False
    match_key: MatchKey | None = None  # shared by every request of the call, else None
    # a few distinct keys (single placement): the keys, and ``_mgroup`` on ``requests``
    match_groups: tuple[MatchKey, ...] | None = None


def request_frames(
    requests: DecisionRequest | Sequence[DecisionRequest],
    customers: pl.DataFrame,
    slot_sizes: Mapping[str, int],
) -> RequestFrames:
    """Requests as frames. A template request (no customer_id) covers every customer row."""
    if isinstance(requests, DecisionRequest) and requests.customer_id is None:
        return _shared(requests, customers, slot_sizes)
    reqs = [requests] if isinstance(requests, DecisionRequest) else list(requests)
    for i, r in enumerate(reqs):
        if not isinstance(r, DecisionRequest) or not r.customer_id:
            raise ValidationError(
                f"requests[{i}] needs a customer_id when several requests are given",
                field="customerId",
            )
    multi = any(r.placements for r in reqs)
    schema = dict(BASE_SCHEMA)
    lists = [(col, a) for col, a in LIST_FIELDS.items() if any(getattr(r, a) for r in reqs)]
    schema.update({col: _LIST for col, _ in lists})
    debug = any(r.debug for r in reqs)
    dedupe = any(r.deduplicate and len(r.placements) > 1 for r in reqs)
    if debug:
        schema[DEBUG] = pl.Boolean()
    if dedupe:
        schema[c.DEDUPE] = pl.Boolean()
    if not multi:
        schema.update(SLOT_SCHEMA)
    keys = [match_key(r) for r in reqs]
    distinct = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    grouped = not multi and 1 < len(distinct) <= MAX_MATCH_GROUPS
    if grouped:
        schema[c.MATCH_GROUP] = pl.UInt32()
    rows = []
    for i, r in enumerate(reqs):
        row: list[Any] = [i, r.customer_id, r.channel, r.channel_id, r.placement, r.limit]
        row.extend(list(getattr(r, attr)) for _, attr in lists)
        if debug:
            row.append(r.debug)
        if dedupe:
            row.append(r.deduplicate)
        if not multi:
            row.extend((0, r.placement, r.limit))
        if grouped:
            row.append(distinct[keys[i]])
        rows.append(row)
    # column by column: Polars' row constructor hands the GIL over, this one does not
    columns = zip(*rows, strict=True) if rows else ([] for _ in schema)
    frame = pl.DataFrame(
        [pl.Series(name, col, dtype=dtype)
         for (name, dtype), col in zip(schema.items(), columns, strict=True)]
    )
    names = sorted({name for r in reqs for name in r.attributes})
    if names:
        frame = frame.hstack(
            [_attr_series(f"attributes.{n}", [r.attributes.get(n) for r in reqs]) for n in names]
        )
    slots = None
    if multi:
        slots = pl.DataFrame(
            [
                (i, s, placement, limit)
                for i, r in enumerate(reqs)
                for s, (placement, limit) in enumerate(_slots(r, slot_sizes))
            ],
            schema={c.REQ: pl.UInt32(), **SLOT_SCHEMA},
            orient="row",
        )
    max_slots = max((len(r.placements) or 1 for r in reqs), default=1)
    shared = keys[0] if len(distinct) == 1 else None
    groups = tuple(k for k in distinct if k is not None) if grouped else None
    return RequestFrames(frame, slots, debug, max_slots, dedupe, shared, groups)


def _shared(
    req: DecisionRequest, customers: pl.DataFrame, slot_sizes: Mapping[str, int]
) -> RequestFrames:
    k = customers.height
    cols: list[pl.Series] = [
        pl.Series(c.REQ, range(k), dtype=pl.UInt32),
        customers.get_column(c.CUSTOMER_ID).cast(pl.String),
    ]
    const: dict[str, tuple[Any, pl.DataType]] = {
        c.R_CHANNEL: (req.channel, pl.String()),
        c.R_CHANNEL_ID: (req.channel_id, pl.String()),
        c.R_PLACEMENT: (req.placement, pl.String()),
        c.R_LIMIT: (req.limit, pl.Int32()),
    }
    for col, attr in LIST_FIELDS.items():
        if getattr(req, attr):
            const[col] = (list(getattr(req, attr)), _LIST)
    if req.debug:
        const[DEBUG] = (True, pl.Boolean())
    slot_rows = _slots(req, slot_sizes)
    multi = bool(req.placements)
    if multi and req.deduplicate:
        const[c.DEDUPE] = (True, pl.Boolean())
    if not multi:
        const[c.SLOT] = (0, pl.UInt32())
        const[c.SLOT_PLACEMENT] = (req.placement, pl.String())
        const[c.SLOT_LIMIT] = (req.limit, pl.Int32())
    cols += [
        pl.Series(name, [value], dtype=dtype).new_from_index(0, k)
        for name, (value, dtype) in const.items()
    ]
    cols += [
        _attr_series(f"attributes.{n}", [v]).new_from_index(0, k)
        for n, v in sorted(req.attributes.items())
    ]
    frame = pl.DataFrame(cols)
    slots = None
    if multi:
        slots = pl.DataFrame(
            [(s, p, lim) for s, (p, lim) in enumerate(slot_rows)],
            schema=SLOT_SCHEMA,
            orient="row",
        )
    dedupe = multi and req.deduplicate and len(slot_rows) > 1
    return RequestFrames(frame, slots, req.debug, len(slot_rows), dedupe, match_key(req))


def slice_frames(frames: RequestFrames, start: int, length: int) -> RequestFrames:
    """The requests ``[start, start + length)`` of a call (for chunked batch runs)."""
    requests = frames.requests.slice(start, length)
    slots = frames.slots
    if slots is not None and c.REQ in slots.columns:
        req = pl.col(c.REQ)
        slots = slots.filter((req >= start) & (req < start + length))
    debug = bool(requests.get_column(DEBUG).any()) if DEBUG in requests.columns else False
    return RequestFrames(
        requests,
        slots,
        debug,
        frames.max_slots,
        frames.any_dedupe,
        frames.match_key,
        frames.match_groups,
    )
