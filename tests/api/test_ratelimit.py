"""Per-tenant sliding-window rate limit: 1,000 requests per minute by default."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from api.ratelimit import SlidingWindowLimiter
from engine.errors import RateLimitedError
from tests.api.conftest import FakeClock, Pack, asgi_client, error_of

RESPOND = "/api/v1/respond"
BODY = {"customerId": "RL-1", "offerId": "off_bogo_5_5d", "outcome": "click",
        "idempotencyKey": "rate-limit"}


def test_limiter_counts_per_tenant_and_slides() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(3, window_seconds=60, clock=clock)
    assert [limiter.hit("a").remaining for _ in range(3)] == [2, 1, 0]
    with pytest.raises(RateLimitedError) as refused:
        limiter.hit("a")
    assert refused.value.retry_after == pytest.approx(60)
    assert limiter.hit("b").remaining == 2  # another tenant has its own window
    clock.advance(59.999)
    with pytest.raises(RateLimitedError):
        limiter.hit("a")
    clock.advance(0.002)
    assert limiter.hit("a").remaining == 2  # all three expired; this one counts


async def fire(client: httpx.AsyncClient, n: int, **headers: str) -> list[int]:
    """``n`` cheap authenticated requests (replays of one respond), 16 at a time."""
    sem = asyncio.Semaphore(16)

    async def one() -> int:
        async with sem:
            return (await client.post(RESPOND, json=BODY, headers=headers)).status_code

    return list(await asyncio.gather(*(one() for _ in range(n))))


def test_the_1001st_request_in_a_minute_is_refused_and_the_window_slides(
    pack: Pack, tmp_path: Path
) -> None:
    clock = FakeClock()

    async def run() -> None:
        async with asgi_client(pack, tmp_path, clock) as (client, _):
            # t0: 500 requests (a key creation, the first respond, 498 replays)
            second = (await client.post("/api/v1/api-keys", json={})).json()["key"]
            first = await client.post(RESPOND, json=BODY)
            assert first.status_code == 201
            assert first.headers["x-ratelimit-limit"] == "1000"
            assert first.headers["x-ratelimit-remaining"] == "998"
            assert set(await fire(client, 498)) == {200}
            # t0 + 30 s: 500 more with the tenant's other key (keys share the window)
            clock.advance(30)
            assert set(await fire(client, 499, **{"x-api-key": second})) == {200}
            last = await client.post(RESPOND, json=BODY)
            assert last.status_code == 200 and last.headers["x-ratelimit-remaining"] == "0"

            refused = await client.post(RESPOND, json=BODY)
            error_of(refused, 429, "RATE_LIMITED")
            assert refused.headers["retry-after"] == "30"
            assert refused.headers["x-ratelimit-remaining"] == "0"
            assert refused.headers["x-ratelimit-reset"] == "30"
            with_second = await client.post(RESPOND, json=BODY, headers={"x-api-key": second})
            error_of(with_second, 429, "RATE_LIMITED")
            other = await client.get("/api/v1/api-keys", headers={
                "x-tenant-id": "other", "x-api-key": pack.keys["other"]})
            assert other.status_code == 200  # another tenant is not affected

            clock.advance(29.9)  # t0 + 59.9 s: nothing has left the window yet
            error_of(await client.post(RESPOND, json=BODY), 429, "RATE_LIMITED")
            clock.advance(0.2)  # t0 + 60.1 s: t0's 500 left, the 500 of t0 + 30 s stay
            statuses = await fire(client, 501)
            assert statuses.count(200) == 500 and statuses.count(429) == 1
            again = await client.post(RESPOND, json=BODY)
            error_of(again, 429, "RATE_LIMITED")
            assert again.headers["retry-after"] == "30"

    asyncio.run(run())
