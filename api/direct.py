"""Direct calls of the hot routes, past FastAPI's generic request handling.

Per request, FastAPI's router, dependency solver and exception middlewares cost the event
loop more than Recommend's or Respond's own work there. A ``DirectRoute`` pairs a route's
one dependency (``authorized(Model)``) with its endpoint function; the serving middleware
calls the two itself for a ``POST`` to exactly the route's path, and errors render through
the app's registered exception handlers, as they do behind the router. The FastAPI route
stays the definition: the OpenAPI document and every other method or path variant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Handler = Callable[[Request, Exception], Awaitable[Response]]


@dataclass(frozen=True)
class DirectRoute:
    path: str
    dependency: Callable[[Request], Awaitable[Any]]
    endpoint: Callable[[Any], Awaitable[Response]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self.endpoint(await self.dependency(request))
        except Exception as exc:
            handler = _handler(request.app.exception_handlers, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def _handler(handlers: Mapping[Any, Handler], exc: Exception) -> Handler | None:
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
