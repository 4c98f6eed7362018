"""HTTP routes: each handler validates its input, makes one call, returns the result."""

from api.routes import api_keys, recommend, respond, traces

ROUTERS = (recommend.router, respond.router, traces.router, api_keys.router)
DIRECT_ROUTES = (recommend.DIRECT, respond.DIRECT)

__all__ = ["DIRECT_ROUTES", "ROUTERS"]
