"""Durability: a server killed with SIGKILL mid-load loses no acknowledged interaction.

A real ``nextbest serve`` subprocess takes respond requests from 32 concurrent clients and is
killed with SIGKILL while they are in flight. Restarted on the same database file, it knows
every interaction whose 2xx was received (a replay of its key is a duplicate with the same
interactionId), and the log holds each of them exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from engine.store import Store
from tests.api.conftest import PEPPER, Pack, copy_pack

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(db_path: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "NEXTBEST_DATABASE_PATH": str(db_path),
           "NEXTBEST_API_KEY_PEPPER": PEPPER, "NEXTBEST_RATE_LIMIT_PER_MINUTE": "1000000"}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"server did not start:\n{log.read_text()}")


async def load_until_killed(
    url: str, headers: dict[str, str], proc: subprocess.Popen[bytes]
) -> dict[str, str]:
    """Respond requests from 32 connections; SIGKILL the server mid-load. Returns the
    acknowledged idempotency keys with their interaction ids."""
    acked: dict[str, str] = {}
    counter = iter(range(10**9))
    killed = asyncio.Event()

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
            while not killed.is_set():
                n = next(counter)
                key = f"crash-{n}"
                body = {"customerId": f"SBX-{n % 200 + 1:06d}",
                        "creativeId": "cr_bogo_5_5d_email",
                        "outcome": "click" if n % 3 else "impression", "idempotencyKey": key}
                try:
                    response = await client.post("/api/v1/respond", json=body)
                except httpx.TransportError:
                    continue
                if response.status_code in (200, 201):
                    acked[key] = response.json()["interactionId"]

    async def killer() -> None:
        while len(acked) < 300:
            await asyncio.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        killed.set()

    await asyncio.wait_for(asyncio.gather(killer(), *(client_loop() for _ in range(32))),
                           timeout=120)
    return acked


async def replay(url: str, headers: dict[str, str], acked: dict[str, str]) -> None:
    """Every acknowledged key is known after the restart: a replay is a duplicate."""
    keys = iter(list(acked))

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            for key in keys:
                response = await client.post("/api/v1/respond", json={
                    "customerId": "x", "creativeId": "cr_bogo_5_5d_email", "outcome": "click",
                    "idempotencyKey": key,
                })
                assert response.status_code == 200, (key, response.text)
                assert response.json()["duplicate"] is True
                assert response.json()["interactionId"] == acked[key]

    await asyncio.gather(*(client_loop() for _ in range(8)))


def test_acknowledged_interactions_survive_sigkill_exactly_once(pack: Pack, tmp_path: Path) -> None:
    db_path = copy_pack(pack, tmp_path)
    log = tmp_path / "server.log"
    headers = {"x-tenant-id": "demo", "x-api-key": pack.keys["demo"]}
    proc, url = start_server(db_path, log)
    try:
        acked = asyncio.run(load_until_killed(url, headers, proc))
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 300

    proc, url = start_server(db_path, log)
    try:
        asyncio.run(replay(url, headers, acked))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("the server did not stop on SIGTERM")

    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    store = Store(db_path, pepper=PEPPER)
    rows = store.db.cursor().execute(
        "SELECT idempotency_key, count(*), min(id) FROM interactions "
        "WHERE tenant_id = 'demo' AND idempotency_key LIKE 'crash-%' GROUP BY 1"
    ).fetchall()
    store.close()
    counts = {key: (n, ix) for key, n, ix in rows}
    assert all(n == 1 for n, _ in counts.values()), "an idempotency key was logged twice"
    assert {k: counts[k][1] for k in acked if k in counts} == acked
    assert set(acked) <= set(counts)
