"""Respond: record one interaction, exactly once per idempotency key, durably before the ack.

Idempotency lives in memory (seeded from the log at start): a key already committed replays
its result (``duplicate: true``); a key whose first request is still being written makes the
duplicate wait for that write and replay it. Both checks and the registration run on the
event loop thread with no ``await`` in between, so concurrent duplicates cannot both write.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson

from api.ids import new_id
from api.lookups import CatalogLookups
from api.runtime import Runtime
from api.schemas import RespondRequest
from api.state import DecisionRow, Recorded, TenantState
from engine.errors import NotFoundError, ValidationError
from engine.store import serving, utcnow


def _payload(rec: Recorded, duplicate: bool) -> dict[str, Any]:
    return {
        "recorded": True,
        "interactionId": rec.interaction_id,
        "outcome": rec.outcome,
        "classification": rec.classification,
        "offerId": rec.offer_id,
        "duplicate": duplicate,
    }


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts


class Responder:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def record(
        self, tenant_id: str, body: RespondRequest, header_key: str | None
    ) -> tuple[int, dict[str, Any]]:
        """``(201, result)`` for a new interaction, ``(200, result)`` for a duplicate key."""
        key = body.idempotencyKey or header_key
        if not key:
            raise ValidationError(
                "idempotencyKey is required: send it in the body or as the Idempotency-Key "
                "header",
                field="idempotencyKey",
            )
        if len(key) > 255:
            raise ValidationError("idempotencyKey must be at most 255 characters",
                                  field="idempotencyKey")
        state = await self.runtime.tenant(tenant_id)
        idem = state.idempotency
        done = idem.recall(key)
        if done is not None:
            return 200, _payload(done, True)
        while (inflight := idem.pending.get(key)) is not None:
            try:
                return 200, _payload(await asyncio.shield(inflight), True)
            except asyncio.CancelledError:
                if not inflight.cancelled():
                    raise  # this request was cancelled
                # the first request gave up before writing: this one records it
        done = idem.recall(key)
        if done is not None:
            return 200, _payload(done, True)
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        idem.pending[key] = future
        submitted: list[bool] = []
        try:
            rec = await self._record(tenant_id, state, body, key, future, submitted)
        except asyncio.CancelledError:
            # once queued, the write still commits and its on_commit settles the key
            if not submitted:
                self._forget(state, key, future, None)
            raise
        except Exception as exc:
            self._forget(state, key, future, exc)
            raise
        return 201, _payload(rec, False)

    @staticmethod
    def _forget(
        state: TenantState, key: str, future: asyncio.Future[Recorded], exc: Exception | None
    ) -> None:
        if state.idempotency.pending.get(key) is future:
            del state.idempotency.pending[key]
        if future.done():
            return
        if exc is None:
            future.cancel()
        else:
            future.set_exception(exc)
            future.exception()  # retrieved: waiting duplicates re-raise it, nobody else must

    async def _record(
        self,
        tenant_id: str,
        state: TenantState,
        body: RespondRequest,
        key: str,
        future: asyncio.Future[Recorded],
        submitted: list[bool],
    ) -> Recorded:
        lookups = self.runtime.lookups(tenant_id)
        outcome = body.outcome or body.interactionType or body.outcomeType
        if outcome is None:
            raise ValidationError("outcome is required", field="outcome")
        otype = lookups.outcomes.get(outcome)
        if otype is None:
            known = ", ".join(sorted(lookups.outcomes))
            raise ValidationError(
                f"outcome {outcome!r} is not a registered outcome type of this tenant; "
                f"registered: {known}",
                field="outcome",
            )
        offer_id, creative_id, channel_id, placement_id, rank = await self._resolve(
            tenant_id, state, lookups, body
        )
        category_id = lookups.offer_category.get(offer_id) if offer_id else None
        direction = body.direction or ("outbound" if otype.category == "impression"
                                       else "inbound")
        ts = _naive_utc(body.timestamp) if body.timestamp is not None else utcnow()
        extra = {
            name: value
            for name, value in (("context", body.context), ("metadata", body.metadata),
                                ("outcomeDetails", body.outcomeDetails),
                                ("attributes", body.attributes),
                                ("interactionId", body.interactionId))
            if value
        }
        interaction_id = new_id("ix")
        row = (
            tenant_id, interaction_id, body.customerId, offer_id, creative_id, channel_id,
            placement_id, category_id, body.recommendationId, rank, outcome,
            otype.classification, direction, ts, body.conversionValue,
            orjson.dumps(extra).decode() if extra else None, key,
        )
        rec = Recorded(interaction_id, outcome, otype.classification, offer_id)
        idem = state.idempotency

        def on_commit() -> None:
            idem.remember(key, rec)
            if idem.pending.get(key) is future:
                del idem.pending[key]
            if not future.done():
                future.set_result(rec)

        submitted.append(True)
        await self.runtime.writer.write([row], on_commit=on_commit)
        return rec

    async def _resolve(
        self, tenant_id: str, state: TenantState, lookups: CatalogLookups, body: RespondRequest
    ) -> tuple[str | None, str | None, str | None, str | None, int | None]:
        """``(offer, creative, channel, placement, rank)`` the response is about."""
        creative_id = body.creativeId or body.treatmentId
        decision = None
        if body.recommendationId is not None:
            decision = await self._decision(tenant_id, state, body, creative_id)
        if creative_id is not None:
            ref = lookups.creatives.get(creative_id)
            if ref is None:
                raise NotFoundError(f"creative {creative_id!r} not found", field="creativeId")
            if body.offerId is not None and body.offerId != ref.offer_id:
                raise ValidationError(
                    f"offerId {body.offerId!r} is not the offer of creative {creative_id!r} "
                    f"({ref.offer_id!r}); omit offerId or fix it",
                    field="offerId",
                )
            placement = body.placementId or ref.placement_id
            rank = decision.rank if decision is not None else body.rank
            return ref.offer_id, creative_id, ref.channel_id, placement, rank
        if decision is not None:
            return (decision.offer_id, decision.creative_id, decision.channel_id,
                    decision.placement_id, decision.rank)
        if body.offerId is not None:
            if body.offerId not in lookups.offer_category:
                raise NotFoundError(f"offer {body.offerId!r} not found", field="offerId")
            return body.offerId, None, body.channelId, body.placementId, body.rank
        raise ValidationError(
            "say what the customer responded to: creativeId, offerId, or recommendationId "
            "with rank",
            field="creativeId",
        )

    async def _decision(
        self, tenant_id: str, state: TenantState, body: RespondRequest, creative_id: str | None
    ) -> DecisionRow:
        rec_id = body.recommendationId
        assert rec_id is not None
        rows = state.recommendations.get(rec_id)
        if rows is None:
            frame = await asyncio.to_thread(serving.find_recommendation, self.runtime.store,
                                            tenant_id, rec_id)
            if frame.height:
                state.recommendations.put(rec_id, frame.drop("recommendation_id").iter_rows())
                rows = state.recommendations.get(rec_id)
        if not rows:
            raise NotFoundError(f"recommendation {rec_id!r} not found", field="recommendationId")
        if body.rank is not None:
            match = [r for r in rows if r.rank == body.rank]
            if not match:
                raise NotFoundError(
                    f"recommendation {rec_id!r} has no decision of rank {body.rank} "
                    f"(ranks 1..{len(rows)})",
                    field="rank",
                )
            return match[0]
        if creative_id is not None or body.offerId is not None:
            match = [r for r in rows if (creative_id is not None and r.creative_id == creative_id)
                     or (creative_id is None and r.offer_id == body.offerId)]
            if match:
                return match[0]
            what = f"creative {creative_id!r}" if creative_id else f"offer {body.offerId!r}"
            raise NotFoundError(
                f"recommendation {rec_id!r} did not recommend {what}",
                field="creativeId" if creative_id else "offerId",
            )
        if len(rows) == 1:
            return rows[0]
        raise ValidationError(
            f"recommendation {rec_id!r} has {len(rows)} decisions: send rank (1-based)",
            field="rank",
        )
