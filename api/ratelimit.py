"""Per-tenant sliding-window rate limit (exact sliding log, in process).

Each tenant has a deque of the monotonic times of its admitted requests inside the window;
a request is admitted when fewer than ``limit`` remain after dropping the expired ones. All
keys of a tenant share its window; tenants are independent. The clock is injectable so tests
can slide the window without waiting a minute.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import RateLimitedError


@dataclass(frozen=True)
class Quota:
    """What the ``X-RateLimit-*`` headers report after a decision."""

    limit: int
    remaining: int
    reset_seconds: int  # until the oldest counted request leaves the window

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_seconds).encode()),
        ]


class SlidingWindowLimiter:
    def __init__(
        self,
        limit: int,
        *,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, tenant_id: str) -> Quota:
        """Admit one request of ``tenant_id`` or raise ``RateLimitedError`` (with the quota
        attached as ``exc.quota``)."""
        now = self.clock()
        horizon = now - self.window
        with self._lock:
            hits = self._hits.get(tenant_id)
            if hits is None:
                hits = self._hits[tenant_id] = deque()
            while hits and hits[0] <= horizon:
                hits.popleft()
            if len(hits) >= self.limit:
                wait = hits[0] + self.window - now
                quota = Quota(self.limit, 0, max(1, math.ceil(wait)))
                exc = RateLimitedError(
                    f"rate limit of {self.limit} requests per {self.window:g} s exceeded for "
                    f"tenant {tenant_id!r}; retry in {quota.reset_seconds} s",
                    retry_after=wait,
                )
                exc.quota = quota  # type: ignore[attr-defined]
                raise exc
            hits.append(now)
            reset = hits[0] + self.window - now
            return Quota(self.limit, self.limit - len(hits), max(0, math.ceil(reset)))
