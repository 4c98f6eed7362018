"""A flow compiled against one catalog snapshot, cached per (catalog, flow version).

Compiling validates the config, builds each node (rule and policy expressions, formula
compilation, template analysis) and the static candidate table: the inventory's offers x
active creatives with the static tie-break orders. Every call then only builds a lazy plan
from these pieces (see ``plan.py``).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import polars as pl

from engine.catalog import Catalog
from engine.errors import NotFoundError, ValidationError
from engine.flow import columns as c
from engine.flow.configs import NODE_CONFIGS, FilterConfig, GroupConfig
from engine.flow.history import CAT, category_expr, epoch_us
from engine.flow.matched import MatchedTables
from engine.flow.nodes import NODE_TYPES, CompileContext, Node
from engine.flow.nodes.compute import ComputeNode
from engine.flow.nodes.inventory import InventoryNode
from engine.flow.nodes.match_creatives import MatchCreativesNode, active_creatives
from engine.flow.nodes.qualify import QualifyNode
from engine.flow.nodes.rank import CATEGORY_INDEX, MAX_OFFERS, RankNode
from engine.flow.nodes.response import ResponseNode, normalize_placeholders
from engine.flow.nodes.score import ScoreNode
from engine.flow.validate import runnable_config, validate_flow_config
from engine.scoring.evidence import (
    DEFAULT_PROPENSITY,
    EV_N,
    EV_POS,
    EV_PRIOR,
    Evidence,
    propensity_expr,
)
from engine.scoring.priority import unit_columns

UNSUPPORTED = ("conditional", "call_flow", "optimize", "set_properties")
CACHE_SIZE = 64


@dataclass(frozen=True)
class Static:
    """Per-evidence static data of a compiled flow."""

    table: pl.DataFrame
    schema: dict[str, pl.DataType]
    matched: MatchedTables


@dataclass(eq=False)
class CompiledFlow:
    key: str | None
    version: int | str
    config: dict[str, Any]
    catalog_version: int
    inventory: InventoryNode
    match: MatchCreativesNode
    enrich: bool
    narrow: list[Node]  # phase-1 nodes that mark rows (filter, qualify, contact_policy)
    phase2: list[Node]
    phase3: list[Node]
    table: pl.DataFrame  # static candidate table: offer x creative
    slot_sizes: dict[str, int]
    offer_categories: dict[str, str | None]
    propensity_k: float | None  # smoothing weight when a node reads propensity
    dedupe_override: bool | None
    last_qualify: int  # index of the last qualify node (-1 = none)
    mandatory_cap: int
    aggs: dict[str, list[pl.Expr]]  # history aggregates of all nodes, by level
    lookback: dict[str, float | None]  # seconds of history each level reads (None = all)
    uses_segments: bool
    category: pl.Expr | None  # history category expression when category aggregates exist
    # pick each offer's best creative right after matching (no rule, policy or filter looks
    # at creative, channel or placement, so only the static preference can tell them apart)
    early_best: bool
    schedules: list[tuple[str, int | None, int | None]]  # (offer, start us, end us) if dated
    # integer keys of the candidate frame, for joining history aggregates in large calls
    offer_orders: dict[str, int] = field(default_factory=dict)  # offer id -> _oord
    category_indexes: dict[str, int] = field(default_factory=dict)  # category id -> _cati
    _statics: OrderedDict[int, tuple[Any, Static]] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def static_for(self, evidence: Evidence | None) -> Static:
        """The static table with the propensity column ``_p`` joined in, its schema and its
        matched-row cache: built once per evidence object (a caller that caches its Evidence
        pays the join once). Entries hold a weak reference to their evidence, so a recycled
        ``id()`` never returns another evidence's table."""
        if self.propensity_k is None:
            evidence = None
        key = id(evidence)
        with self._lock:
            hit = self._statics.get(key)
            if hit is not None and (hit[0] is None or hit[0]() is evidence):
                self._statics.move_to_end(key)
                return hit[1]
        if self.propensity_k is None:
            table = self.table
        elif evidence is None:
            table = self.table.with_columns(pl.lit(DEFAULT_PROPENSITY).alias(c.PROPENSITY))
        else:
            table = (
                self.table.join(evidence.frame, on=c.OFFER_ID, how="left")
                .with_columns(propensity_expr(self.propensity_k).alias(c.PROPENSITY))
                .drop(EV_N, EV_POS, EV_PRIOR)
            )
        static = Static(table, dict(table.schema), MatchedTables())
        with self._lock:
            self._statics[key] = (None if evidence is None else weakref.ref(evidence), static)
            while len(self._statics) > 4:
                self._statics.popitem(last=False)
        return static

    def table_for(self, evidence: Evidence | None) -> pl.DataFrame:
        return self.static_for(evidence).table

    @property
    def history_lookback(self) -> float | None:
        """Seconds of history any aggregate reads (None = all)."""
        values = [self.lookback.get(level) for level in self.aggs]
        return None if not values or None in values else max(v for v in values if v)

    @property
    def score_node(self) -> ScoreNode:
        node = self.phase2[0]
        assert isinstance(node, ScoreNode)
        return node

    @property
    def rank_node(self) -> RankNode:
        node = self.phase2[1]
        assert isinstance(node, RankNode)
        return node


def _node(i: int, spec: Mapping[str, Any], ctx: CompileContext) -> Node:
    ntype = spec["type"]
    if ntype in UNSUPPORTED:
        raise ValidationError(
            f"node {spec['id']!r}: node type {ntype!r} is not supported by this engine yet",
            field=f"nodes[{i}].type",
        )
    config = NODE_CONFIGS[ntype].model_validate(spec.get("config") or {})
    node = NODE_TYPES[ntype](id=spec["id"], index=i, type=ntype, config=config)
    node.prepare(ctx)
    return node


def build_compiled(
    catalog: Catalog, config: Mapping[str, Any], *, key: str | None, version: int | str
) -> CompiledFlow:
    cfg = validate_flow_config(config)
    flow_config = cfg["flowConfig"]
    creatives = active_creatives(catalog)
    creatives = creatives.with_columns(
        pl.Series(
            "creative.content",
            [normalize_placeholders(x) for x in creatives.get_column("creative.content")],
            dtype=pl.String,
        )
    )
    ctx = CompileContext(catalog=catalog, flow_config=flow_config, creatives=creatives)
    nodes = [_node(i, spec, ctx) for i, spec in enumerate(cfg["nodes"])]
    inventory = nodes[0]
    assert isinstance(inventory, InventoryNode)
    match = next((n for n in nodes if isinstance(n, MatchCreativesNode)), None)
    if match is None:  # no match node: every matching active creative, required
        match = _node(0, {"id": "_match", "type": "match_creatives", "config": {}}, ctx)
    assert isinstance(match, MatchCreativesNode)

    narrow = [n for n in nodes if n.type in ("filter", "qualify", "contact_policy")]
    # phase 2 runs as score -> rank (group and optimize have no runtime step of their own)
    score = next((n for n in nodes if isinstance(n, ScoreNode)), None) or _node(
        len(nodes), {"id": "_score", "type": "score", "config": {}}, ctx
    )
    rank = next((n for n in nodes if isinstance(n, RankNode)), None) or _node(
        len(nodes) + 1, {"id": "_rank", "type": "rank", "config": {}}, ctx
    )
    assert isinstance(score, ScoreNode) and isinstance(rank, RankNode)
    phase2: list[Node] = [score, rank]
    phase3 = [n for n in nodes if n.type in ("compute", "response")]
    fields = {f for n in phase3 if isinstance(n, ComputeNode) for f in n.fields}
    for n in phase3:
        if isinstance(n, ResponseNode):
            n.personalization = fields

    offers = catalog.offers.with_columns(
        pl.struct(-pl.col("offer.priority"), pl.col(c.OFFER_ID))
        .rank("ordinal")
        .cast(pl.Int64)
        .alias(c.OFFER_ORDER)
    )
    table = unit_columns(match.candidate_table(inventory.select_offers(offers), creatives))
    table = table.with_row_index("_trow").with_columns(
        pl.lit(None, dtype=pl.Int16).alias(c.DROP),
        pl.lit(None, dtype=pl.String).alias(c.DROP_BY),
        pl.lit(None, dtype=pl.String).alias(c.REASON),
        pl.lit(1.0).alias(c.FIT),
    )
    rank.multi_creative = bool(table.get_column(c.OFFER_ID).is_duplicated().any())
    rank.eliminates = score.eliminates
    for n in phase3:
        if isinstance(n, ComputeNode):
            table = n.precompute(table)
    for n in phase3:
        extra = n.static_columns() if isinstance(n, ResponseNode) else None
        if extra is not None:
            table = table.join(extra, on=c.CREATIVE_ID, how="left")
        if isinstance(n, ResponseNode):
            table = n.precompute(table)
    if catalog.offers.height >= MAX_OFFERS:
        raise ValidationError(f"a catalog holds at most {MAX_OFFERS - 1} offers", field="offers")
    categories = sorted({x for x in catalog.offers.get_column(c.CATEGORY_ID) if x is not None})
    category_indexes = {k: i + 1 for i, k in enumerate(categories)}
    table = table.with_columns(
        pl.col(c.CATEGORY_ID)
        .replace_strict(category_indexes, default=0, return_dtype=pl.Int64)
        .alias(CATEGORY_INDEX)
    )
    aggs: dict[str, list[pl.Expr]] = {"customer": [], "offer": [], "category": []}
    lookback = Node(id="_", index=-1, type="_", config=None)
    for n in narrow:
        for level, exprs in n.aggs.items():
            if exprs:
                aggs[level].extend(exprs)
                lookback.extend_lookback(level, n.lookback.get(level))

    needs_p = score.needs_propensity or any(
        isinstance(n, QualifyNode) and n.needs_propensity for n in narrow
    )
    group = next((n for n in nodes if n.type == "group"), None)
    offer_categories = dict(
        zip(
            catalog.offers.get_column(c.OFFER_ID).to_list(),
            catalog.offers.get_column(c.CATEGORY_ID).to_list(),
            strict=True,
        )
    )
    quals = [n.index for n in narrow if isinstance(n, QualifyNode)]
    return CompiledFlow(
        key=key,
        version=version,
        config=cfg,
        catalog_version=catalog.version,
        inventory=inventory,
        match=match,
        enrich=any(n.type == "enrich" for n in nodes),
        narrow=narrow,
        phase2=phase2,
        phase3=phase3,
        table=table,
        slot_sizes=dict(
            zip(
                catalog.placements.get_column(c.PLACEMENT_ID).to_list(),
                catalog.placements.get_column("placement.maxSlots").to_list(),
                strict=True,
            )
        ),
        offer_categories=offer_categories,
        propensity_k=score.config.smoothingWeight if needs_p else None,
        dedupe_override=group.config.deduplicate
        if group is not None and isinstance(group.config, GroupConfig)
        else None,
        last_qualify=max(quals, default=-1),
        mandatory_cap=int(flow_config.get("mandatoryDailyCap", 5)),
        aggs={level: exprs for level, exprs in aggs.items() if exprs},
        lookback=lookback.lookback,
        uses_segments=_uses_segments(catalog),
        early_best=rank.multi_creative and _creative_independent(catalog, narrow),
        schedules=_schedules(table),
        category=category_expr(offer_categories) if _reads_category(aggs) else None,
        offer_orders=dict(
            zip(
                offers.get_column(c.OFFER_ID).to_list(),
                offers.get_column(c.OFFER_ORDER).to_list(),
                strict=True,
            )
        ),
        category_indexes=category_indexes,
    )


def _schedules(table: pl.DataFrame) -> list[tuple[str, int | None, int | None]]:
    dated = table.filter(
        pl.col("offer.startDate").is_not_null() | pl.col("offer.endDate").is_not_null()
    ).unique(c.OFFER_ID)
    return [
        (oid, None if s is None else epoch_us(s), None if e is None else epoch_us(e))
        for oid, s, e in dated.select(c.OFFER_ID, "offer.startDate", "offer.endDate").iter_rows()
    ]


def _reads_category(aggs: Mapping[str, list[pl.Expr]]) -> bool:
    return bool(aggs.get("category")) or any(
        CAT in e.meta.root_names() for exprs in aggs.values() for e in exprs
    )


CREATIVE_SCOPES = ("creative", "channel", "placement")


def _creative_independent(catalog: Catalog, narrow: list[Node]) -> bool:
    docs = [
        d
        for d in (*catalog.qualification_rules, *catalog.contact_policies)
        if d.get("status", "active") == "active"
    ]
    for d in docs:
        scopes = [d.get("scope"), *(a.get("scope") for a in d.get("scopes") or [])]
        if any(s in CREATIVE_SCOPES for s in scopes):
            return False
    for n in narrow:
        if isinstance(n.config, FilterConfig) and any(
            cond.field.startswith(("creative.", "channel.", "placement.", "request."))
            for cond in n.config.conditions
        ):
            return False
    return True


def _uses_segments(catalog: Catalog) -> bool:
    docs = [*catalog.qualification_rules, *catalog.contact_policies]
    return any(
        d.get("ruleType") in ("segment_required", "segment_exclusion")
        or d.get("scope") == "segment"
        or any(a.get("scope") == "segment" for a in d.get("scopes") or [])
        for d in docs
    )


_CACHE: OrderedDict[tuple[Any, ...], tuple[weakref.ref[Catalog], CompiledFlow]] = OrderedDict()
_LOCK = threading.Lock()


def _resolve(catalog: Catalog, flow: Any) -> tuple[str | None, int | str, Mapping[str, Any]]:
    if isinstance(flow, str):
        doc = catalog.flow_by_key(flow)
        if doc is None:
            raise NotFoundError(f"decision flow {flow!r} not found", field="decisionFlowKey")
        version, config = runnable_config(doc)
        return flow, version, config
    if isinstance(flow, Mapping) and "nodes" in flow:
        digest = orjson.dumps(flow, option=orjson.OPT_SORT_KEYS, default=str)
        return None, f"adhoc:{hash(digest)}", flow
    if isinstance(flow, Mapping):
        version, config = runnable_config(flow)
        return flow.get("key"), version, config
    raise ValidationError("flow must be a flow key, a flow document or a V2 config", field="flow")


def compile_flow(catalog: Catalog, flow: Any) -> CompiledFlow:
    """The compiled form of ``flow`` (key, flow document or V2 config), cached."""
    if isinstance(flow, CompiledFlow):
        return flow
    key, version, config = _resolve(catalog, flow)
    cache_key = (id(catalog), catalog.tenant_id, catalog.version, key, version)
    with _LOCK:
        hit = _CACHE.get(cache_key)
        if hit is not None and hit[0]() is catalog:
            _CACHE.move_to_end(cache_key)
            return hit[1]
    compiled = build_compiled(catalog, config, key=key, version=version)
    with _LOCK:
        _CACHE[cache_key] = (weakref.ref(catalog), compiled)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return compiled
