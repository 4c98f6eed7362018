"""``contact_policy``: post-qualification suppression (spec §13, hard constraints §10.7).

Policies run in priority order. An ``allow_override`` policy that matches a candidate skips
every blocking policy for it; otherwise the first blocking policy that fires removes it,
with a reason such as ``frequency_cap exceeded: 3/day at scope=global``. Mandatory offers
obey only ``frequency_cap``, ``cross_channel_cap`` and policies with ``bypassable: false``.

Counts come from the call's history (contacts = impression rows) through one ``group_by``
per level (customer; customer x offer; customer x category) joined onto the candidates. A
non-global scope without ``scopeId`` behaves as global (spec §13.3). Built in, before the
policies: the offer's ``frequencyCaps.perCustomer`` caps (§10.7) and the mandatory daily cap
(``flowConfig.mandatoryDailyCap``, default 5). The policy rules live in ``policies.py``.
"""

from __future__ import annotations

import polars as pl

from engine.flow.configs import ContactPolicyConfig
from engine.flow.nodes.base import (
    Call,
    CompileContext,
    Node,
    alive,
    any_of,
    conj,
    first_match,
    mark,
    not_mandatory,
)
from engine.flow.nodes.policies import Policy, builtin_policies, compile_policy

TRACE_PREFIX = "_cptrace"
MANDATORY_TYPES = ("frequency_cap", "cross_channel_cap")


class ContactPolicyNode(Node):
    config: ContactPolicyConfig

    def prepare(self, ctx: CompileContext) -> None:
        docs = [p for p in ctx.catalog.contact_policies if p.get("status", "active") == "active"]
        if self.config.policyIds is not None:
            docs = [p for p in docs if p.get("id") in self.config.policyIds]
        prefix = f"_cp{self.index}"
        policies = builtin_policies(ctx, prefix)
        policies += [compile_policy(f"{prefix}_{i}", d, ctx) for i, d in enumerate(docs)]
        self.policies: list[Policy] = policies
        self.regular = not_mandatory(ctx.catalog)
        self.aggs = {"customer": [], "offer": [], "category": []}
        for p in policies:
            for level, exprs in p.aggs.items():
                if exprs:
                    self.aggs[level].extend(exprs)
                    self.extend_lookback(level, p.lookback)

    def _exprs(self, call: Call) -> list[pl.Expr]:
        schema = dict(call.schema)
        overrides, hits = [], []
        for p in self.policies:
            applies = conj(p.applies, None if p.mandatory_too else self.regular)
            if p.override:
                overrides.append(pl.lit(True) if applies is None else applies)
                continue
            fires = conj(applies, p.fires(call, schema))
            assert fires is not None
            hits.append((p, fires.fill_null(False)))
        free = ~any_of(overrides) if overrides else None
        blocking = [(conj(free, h), p.policy_id, p.reason) for p, h in hits]
        extra = []
        if call.trace and hits:
            extra.append(self._trace(blocking, hits))
        return mark(self.index, blocking, extra, detail=call.trace)

    def _trace(self, blocking: list, hits: list) -> pl.Expr:
        """The first blocking policy of each removed candidate."""
        first = first_match([(h, pl.lit(i)) for i, (h, _, _) in enumerate(blocking)], pl.Int64())
        info = [
            (pl.lit(p.policy_id), pl.lit(p.name), pl.lit(p.rule_type), p.reason) for p, _ in hits
        ]

        def pick(k: int, dtype: pl.DataType) -> pl.Expr:
            return first_match([(first == i, row[k]) for i, row in enumerate(info)], dtype)

        return (
            pl.when(alive() & first.is_not_null())
            .then(
                pl.struct(
                    pick(0, pl.String()).alias("policyId"),
                    pick(1, pl.String()).alias("policyName"),
                    pick(2, pl.String()).alias("ruleType"),
                    pick(3, pl.String()).alias("reason"),
                )
            )
            .alias(f"{TRACE_PREFIX}{self.index}")
        )

    def expressions(self, call: Call) -> list[pl.Expr]:
        if not self.policies:
            return []
        # time_window policies depend on as_of, so the cache key carries it
        key = (call.schema_key, call.trace, call.as_of if self._timed else None)
        return self.cached(key, lambda: self._exprs(call))

    @property
    def _timed(self) -> bool:
        return any(p.rule_type == "time_window" for p in self.policies)
