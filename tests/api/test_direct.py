"""Direct routes: the hot endpoints called past the router are the app's own routes."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import APIRoute

from api import create_app
from api.routes import DIRECT_ROUTES, ROUTERS
from engine.settings import Settings
from tests.api.conftest import Server

RECOMMEND = "/api/v1/recommend"


def test_each_direct_route_is_the_apps_post_route_with_its_dependency(tmp_path: Path) -> None:
    app = create_app(Settings(database_path=tmp_path / "unused.duckdb", api_key_pepper="p"))
    documented = app.openapi()["paths"]
    routes = {r.path: r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)}
    assert DIRECT_ROUTES
    for direct in DIRECT_ROUTES:
        assert "post" in documented[direct.path]
        route = routes[direct.path]
        assert route.methods == {"POST"}
        assert route.endpoint is direct.endpoint
        assert [d.call for d in route.dependant.dependencies] == [direct.dependency]


def test_other_path_variants_still_go_through_the_router(server: Server) -> None:
    client = server.client()
    assert client.post(RECOMMEND, json={"customerId": "c"}).status_code == 200
    redirect = client.post(RECOMMEND + "/", json={"customerId": "c"})
    assert redirect.status_code == 307 and redirect.headers["x-request-id"]
    assert client.get(RECOMMEND).status_code == 405
