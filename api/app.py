"""The FastAPI application factory.

``create_app(settings)`` wires the runtime (store, caches, writer, batcher) into a lifespan,
the error handlers, the serving middleware and the routes. ``clock`` (monotonic seconds)
drives the rate limiter, so tests can slide its window; ``config`` tunes batching and caches.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api.errors import install_error_handlers
from api.middleware import ServingMiddleware
from api.openapi import custom_openapi
from api.routes import DIRECT_ROUTES, ROUTERS, experiments, interactions, metrics
from api.routes.catalog import CATALOG_ROUTERS
from api.runtime import Runtime, ServingConfig
from api.services import Services
from engine.settings import Settings, get_settings

MAX_BODY_BYTES = 1_048_576
# Collect young objects less often than Python's default (700, 10, 10): at high concurrency
# fewer in-flight requests survive into the old generation, whose collections pause all.
GC_THRESHOLDS = (50_000, 20, 100)
# The event loop, the decide worker and the writer share the GIL; with Python's default
# 5 ms switch interval a busy event loop keeps a worker waiting up to 5 ms per hand-over.
SWITCH_INTERVAL_S = 0.0005

DESCRIPTION = """\
Next-best-action decisioning: **Recommend** runs a decision flow for a customer and returns
ranked, personalized offers; **Respond** records what the customer did with them.

Authenticate every call with `x-tenant-id` plus `x-api-key` (or `Authorization: Bearer`).
Errors share one envelope: `{"error": {"code", "message", "status", "details"?,
"recommendationId"}}`; every response carries `x-request-id`. Requests are limited per tenant
with a sliding one-minute window (`X-RateLimit-*` headers, `429` + `Retry-After`).
"""


class ServingApp(FastAPI):
    """FastAPI with ``ServingMiddleware`` outermost: every request gets its request id,
    body limit and headers there, and a POST to a direct route (``api.direct``) goes
    straight to it, past FastAPI's own middleware stack (error, telemetry and body-limit
    layers that each wrap ``send``); everything else continues into that stack."""

    serving: ServingMiddleware

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self  # what the stack would set: handlers find the app here
        await self.serving(scope, receive, send)

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], float] | None = None,
    config: ServingConfig | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    runtime = Runtime(settings, clock=clock, config=config)
    services = Services.build(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(runtime.open)
        # what is loaded at start lives as long as the app: keep it out of every collection
        gc.collect()
        gc.freeze()
        thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
        gc.set_threshold(*GC_THRESHOLDS)
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            yield
        finally:
            await asyncio.to_thread(services.recommender.close)
            await asyncio.to_thread(runtime.close)
            sys.setswitchinterval(interval)
            gc.set_threshold(*thresholds)
            gc.unfreeze()

    app = ServingApp(
        title="nextbest",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.services = services
    install_error_handlers(app)
    app.serving = ServingMiddleware(app.dispatch, max_body_bytes=MAX_BODY_BYTES,
                                    direct={route.path: route for route in DIRECT_ROUTES})
    for router in (*ROUTERS, *CATALOG_ROUTERS):
        app.include_router(router)
    for router in (metrics.router, experiments.router, interactions.router):
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        return custom_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
    return app
