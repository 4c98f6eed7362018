"""Fixtures for the API tests: a Starbucks-pack database and the real app over HTTP.

The pack is seeded once per session into a template file (tenants ``demo`` and ``other``
with the Starbucks pack, ``bare`` with nothing; one API key each). Each module copies it and
serves the real app under uvicorn in a thread on a free loopback port; tests talk HTTP to
it with httpx. The rate limiter runs on a ``FakeClock`` the tests can move.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api import create_app
from api.runtime import Runtime, ServingConfig
from engine.settings import Settings
from engine.store import Store

PEPPER = "test-pepper"
TENANTS = ("demo", "other", "bare")


@dataclass(frozen=True)
class Pack:
    path: Path
    keys: dict[str, str]


class FakeClock:
    """Monotonic seconds for the rate limiter, moved by the test."""

    def __init__(self) -> None:
        self.now = 10_000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@dataclass
class Server:
    url: str
    app: FastAPI
    clock: FakeClock
    keys: dict[str, str]
    db_path: Path
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def runtime(self) -> Runtime:
        return self.app.state.runtime

    def headers(self, tenant: str = "demo", key: str | None = None) -> dict[str, str]:
        return {"x-tenant-id": tenant, "x-api-key": key or self.keys[tenant]}

    def client(self, tenant: str | None = "demo", key: str | None = None) -> httpx.Client:
        headers = self.headers(tenant, key) if tenant is not None else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self._clients.append(client)
        return client

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Read the durable truth (the server's own DuckDB connection)."""
        return self.runtime.store.db.cursor().execute(query, params or []).fetchall()

    def close_clients(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture(scope="session")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Pack:
    from pipelines.seed import seed_starbucks

    path = tmp_path_factory.mktemp("pack") / "template.duckdb"
    store = Store(path, pepper=PEPPER)
    seed_starbucks(store, "demo", customers=200)
    seed_starbucks(store, "other", customers=50)
    store.decision_flows.create("demo", propensity_flow(store))
    store.decision_flows.create("demo", {"key": "draft-flow", "name": "Never published"})
    store.tenants.create("bare")
    keys = {t: store.api_keys.create(t, name="test")[1] for t in TENANTS}
    store.close()
    return Pack(path, keys)


def propensity_flow(store: Store) -> dict[str, Any]:
    """The pack's pipeline scored by adaptive propensity instead of priority (not default)."""
    base = store.load_catalog("demo").flow_by_key("starbucks-decision-pipeline")
    assert base is not None
    config = dict(base["publishedVersions"][0]["config"])
    config["nodes"] = [
        {**n, "config": {"method": "propensity"}} if n["type"] == "score" else n
        for n in config["nodes"]
    ]
    return {
        "key": "propensity-flow", "name": "Starbucks by propensity", "status": "active",
        "isDefault": False, "draftConfig": config,
        "publishedVersions": [{"version": 1, "config": config,
                               "publishedAt": "2026-01-01T00:00:00Z"}],
    }


def copy_pack(pack: Pack, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "nextbest.duckdb"
    shutil.copy(pack.path, target)
    wal = pack.path.with_name(pack.path.name + ".wal")
    if wal.exists():
        shutil.copy(wal, target.with_name(target.name + ".wal"))
    return target


def serve(
    pack: Pack, directory: Path, config: ServingConfig | None = None, **settings: Any
) -> Iterator[Server]:
    db_path = copy_pack(pack, directory)
    clock = FakeClock()
    app = create_app(
        Settings(database_path=db_path, api_key_pepper=PEPPER, **settings), clock=clock,
        config=config,
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            access_log=False, lifespan="on", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    running = Server(f"http://127.0.0.1:{port}", app, clock, dict(pack.keys), db_path)
    try:
        yield running
    finally:
        running.close_clients()
        server.should_exit = True
        thread.join(60)


@pytest.fixture(scope="module")
def server(pack: Pack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(pack, tmp_path_factory.mktemp("server"))


@pytest.fixture
def fresh_server(pack: Pack, tmp_path: Path) -> Iterator[Server]:
    """A server of its own (tests that change keys or exhaust the rate limit)."""
    yield from serve(pack, tmp_path / "server")


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert the error envelope and return its body."""
    assert response.status_code == status, response.text
    body = response.json()
    error = body["error"]
    assert set(body) == {"error"}
    assert error["code"] == code
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    assert error["recommendationId"] == response.headers["x-request-id"]
    return error


@asynccontextmanager
async def asgi_client(
    pack: Pack, directory: Path, clock: FakeClock, tenant: str = "demo", **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """The real app in this event loop (lifespan included), spoken to over ASGI: no sockets,
    for tests that need thousands of requests."""
    db_path = copy_pack(pack, directory)
    app = create_app(
        Settings(database_path=db_path, api_key_pepper=PEPPER, **settings), clock=clock
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"x-tenant-id": tenant, "x-api-key": pack.keys[tenant]}
        async with httpx.AsyncClient(transport=transport, base_url="http://nextbest.test",
                                     headers=headers, timeout=30) as client:
            yield client, app
