"""Serving benchmark: Recommend and Respond over HTTP, next to a minimal FastAPI endpoint.

    .venv/bin/pytest tests/benchmarks/test_api_bench.py -m benchmark -s

Three servers run as subprocesses, each served the same way (uvicorn, uvloop, httptools,
one process, no access log): the real app (``nextbest serve``, Starbucks pack, rate limit
lifted) and a minimal FastAPI app whose one endpoint parses a small pydantic body and returns
a small JSON object. A load generator in another process (``c`` concurrent keep-alive
connections, loopback only) drives each endpoint for a fixed time after a warm-up, at
c = 1, 16 and 64, twice: with async httpx clients (one ``AsyncClient`` per connection), and
with a lean asyncio HTTP/1.1 client, because on 2 cores the httpx client saturates before
the minimal endpoint does (its ratios then understate the server's cost). Each table gives
throughput, p50/p99 latency of the 2xx answers, and the ratio of each endpoint's throughput
to the minimal endpoint's at the same concurrency.
Targets (not asserted): recommend >= 50 % of the minimal endpoint with p99 <= 50 ms at c=64;
respond >= 60 %.

Recommend asks for the explicit channels (email, social) of 1,000 customers, so the
contact policies do not empty the answers as the run goes on; Respond records clicks and
conversions (no impressions) with fresh idempotency keys, each acknowledged after its
group commit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = (1, 16, 64)
SECONDS = float(os.environ.get("NEXTBEST_BENCH_SECONDS", "4"))
WARMUP = 0.5
PEPPER = "bench-pepper"
KEY = "krn_benchmark_key_0123456789abcdef"

MINIMAL_APP = textwrap.dedent(
    """
    from fastapi import FastAPI
    from pydantic import BaseModel

    app = FastAPI()


    class Body(BaseModel):
        customerId: str
        channel: str | None = None
        limit: int = 5


    @app.post("/api/v1/recommend")
    async def recommend(body: Body) -> dict:
        return {"customerId": body.customerId, "count": 0, "decisions": []}
    """
)

LOADGEN = textwrap.dedent(  # raw: the \r\n below belong to the generated code
    r"""
    import asyncio, itertools, json, random, sys, time
    import httpx
    import orjson

    cfg = json.loads(sys.argv[1])
    rnd = random.Random(7)
    counter = itertools.count()
    CREATIVES = ["cr_bogo_5_5d_email", "cr_bogo_5_7d_email", "cr_discount_7_7d_email",
                 "cr_discount_10_10d_email"]

    def body():
        n = next(counter)
        customer = f"SBX-{rnd.randint(1, 1000):06d}"
        if cfg["kind"] == "respond":
            return {"customerId": customer, "creativeId": CREATIVES[n % 4],
                    "outcome": "click" if n % 2 else "conversion",
                    "idempotencyKey": f"{cfg['run']}-{n}"}
        return {"customerId": customer, "channel": rnd.choice(["email", "social"]), "limit": 5}

    class HttpxConnection:
        # one AsyncClient per connection: a shared pool serializes badly at concurrency
        async def open(self):
            self.client = httpx.AsyncClient(base_url=cfg["url"], headers=cfg["headers"],
                                            timeout=30, limits=httpx.Limits(max_connections=1))

        async def post(self, payload):
            return (await self.client.post(cfg["path"], json=payload)).status_code

        async def close(self):
            await self.client.aclose()

    class RawConnection:
        # a lean HTTP/1.1 keep-alive client on asyncio streams (no client library cost)
        async def open(self):
            host, port = cfg["url"].removeprefix("http://").split(":")
            self.reader, self.writer = await asyncio.open_connection(host, int(port))
            self.head = (f"POST {cfg['path']} HTTP/1.1\r\nHost: {host}\r\n"
                         + "".join(f"{k}: {v}\r\n" for k, v in cfg["headers"].items())
                         + "Content-Type: application/json\r\n").encode()

        async def post(self, payload):
            data = orjson.dumps(payload)
            self.writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(data) + data)
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await self.reader.readexactly(length)
            return int(head[9:12])

        async def close(self):
            self.writer.close()

    async def main():
        latencies, errors = [], 0
        connections = [(HttpxConnection if cfg["client"] == "httpx" else RawConnection)()
                       for _ in range(cfg["c"])]
        for conn in connections:
            await conn.open()
        start = time.perf_counter()
        measure_from = start + cfg["warmup"]
        stop = measure_from + cfg["seconds"]

        async def worker(conn):
            nonlocal errors
            while (t := time.perf_counter()) < stop:
                try:
                    ok = await conn.post(body()) < 300
                except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError):
                    ok = False
                if t >= measure_from:
                    if ok:
                        latencies.append(time.perf_counter() - t)
                    else:
                        errors += 1

        await asyncio.gather(*(worker(conn) for conn in connections))
        for conn in connections:
            await conn.close()
        latencies.sort()
        n = len(latencies)
        pct = lambda q: 1000 * latencies[min(n - 1, int(q * n))] if n else float("nan")
        print(json.dumps({"ok": n, "errors": errors, "rps": n / cfg["seconds"],
                          "p50": pct(0.50), "p99": pct(0.99)}))

    import uvloop
    uvloop.install()
    asyncio.run(main())
    """
)
CLIENTS = ("httpx", "raw")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()}")
        try:
            httpx.get(f"{url}/openapi.json", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not start:\n{log.read_text()}")


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from engine.store import Store
    from pipelines.seed import seed_starbucks

    work = tmp_path_factory.mktemp("api-bench")
    db = work / "bench.duckdb"
    store = Store(db, pepper=PEPPER)
    seed_starbucks(store, "demo", customers=1000)
    store.api_keys.create("demo", name="bench", raw_key=KEY)
    store.close()
    (work / "minimal_app.py").write_text(MINIMAL_APP)

    env = {**os.environ, "NEXTBEST_DATABASE_PATH": str(db), "NEXTBEST_API_KEY_PEPPER": PEPPER,
           "NEXTBEST_RATE_LIMIT_PER_MINUTE": str(10**9)}
    app_port, min_port = free_port(), free_port()
    procs = [
        spawn([sys.executable, "-m", "pipelines.cli", "serve", "--host", "127.0.0.1",
               "--port", str(app_port)], env, work / "app.log"),
        spawn([sys.executable, "-m", "uvicorn", "minimal_app:app", "--app-dir", str(work),
               "--host", "127.0.0.1", "--port", str(min_port), "--loop", "uvloop", "--http",
               "httptools", "--workers", "1", "--no-access-log", "--log-level", "warning",
               "--ws", "none"], env, work / "minimal.log"),
    ]
    urls = {"app": f"http://127.0.0.1:{app_port}", "minimal": f"http://127.0.0.1:{min_port}"}
    try:
        wait_ready(urls["app"], procs[0], work / "app.log")
        wait_ready(urls["minimal"], procs[1], work / "minimal.log")
        urls["work"] = str(work)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


def drive(url: str, path: str, kind: str, c: int, client: str, work: str) -> dict[str, float]:
    cfg = {"url": url, "path": path, "kind": kind, "c": c, "client": client,
           "seconds": SECONDS, "warmup": WARMUP, "run": f"{kind}-{client}-{c}-{time.time_ns()}",
           "headers": {"x-tenant-id": "demo", "x-api-key": KEY}}
    out = subprocess.run([sys.executable, "-c", LOADGEN, json.dumps(cfg)], cwd=work,
                         capture_output=True, text=True, timeout=SECONDS * 10 + 60)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(client: str, results: dict[tuple[str, int], dict[str, float]]) -> list[str]:
    lines = [
        f"load generator: {client} ({SECONDS:g} s per row after {WARMUP:g} s warm-up, "
        f"loopback, {os.cpu_count()} CPUs)",
        f"{'endpoint':<10} {'c':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'vs minimal':>11}",
    ]
    for name in ("minimal", "recommend", "respond"):
        for c in CONCURRENCY:
            r = results[name, c]
            ratio = r["rps"] / results["minimal", c]["rps"]
            lines.append(
                f"{name:<10} {c:>3} {r['rps']:>9.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} "
                f"{int(r['errors']):>7} {ratio:>10.0%}"
            )
    rec, resp = results["recommend", 64], results["respond", 64]
    base = results["minimal", 64]["rps"]
    lines.append(
        f"targets at c=64: recommend >= 50% of minimal with p99 <= 50 ms -> "
        f"{rec['rps'] / base:.0%}, p99 {rec['p99']:.1f} ms; respond >= 60% -> "
        f"{resp['rps'] / base:.0%}"
    )
    return lines


@pytest.mark.benchmark
def test_recommend_and_respond_throughput_against_a_minimal_endpoint(
    servers: dict[str, str],
) -> None:
    work = servers["work"]
    report = []
    for client in CLIENTS:
        results: dict[tuple[str, int], dict[str, float]] = {}
        for c in CONCURRENCY:  # recommend first: respond's writes do not touch its policies
            results["minimal", c] = drive(servers["minimal"], "/api/v1/recommend",
                                          "recommend", c, client, work)
            results["recommend", c] = drive(servers["app"], "/api/v1/recommend", "recommend",
                                            c, client, work)
        for c in CONCURRENCY:
            results["respond", c] = drive(servers["app"], "/api/v1/respond", "respond", c,
                                          client, work)
        report += [*table(client, results), ""]
        assert all(r["ok"] > 0 for r in results.values())
    print("\n" + "\n".join(report))
