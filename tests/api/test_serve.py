"""``nextbest serve --demo``: prepares the Starbucks demo tenant, prints working curl lines."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api.test_crash import ROOT, free_port


def test_serve_demo_prints_a_key_and_curl_commands_that_work(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "NEXTBEST_DATABASE_PATH": str(tmp_path / "demo.duckdb"),
           "NEXTBEST_DEMO_API_KEY": "krn_fixed_demo_key_for_tests_0001", "COLUMNS": "200"}
    out = tmp_path / "serve.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "serve", "--demo", "--customers", "100",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            try:
                if httpx.get(f"{url}/docs", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        text = out.read_text()
        assert "tenant: demo" in text and "krn_fixed_demo_key_for_tests_0001" in text
        curl = next(line for line in text.splitlines() if "/recommend" in line)
        args = shlex.split(curl)
        headers = dict(h.split(": ", 1) for h in (args[i + 1] for i, a in enumerate(args)
                                                  if a == "-H"))
        body = args[args.index("-d") + 1]
        response = httpx.post(re.search(r"http://\S+", curl).group(0), headers=headers,
                              content=body)
        assert response.status_code == 200, response.text
        assert response.json()["count"] >= 1 and "meta" in response.json()
        docs = httpx.get(f"{url}/openapi.json").json()
        example = docs["paths"]["/api/v1/recommend"]["post"]["requestBody"]["content"]
        assert "SBX-" in str(example)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
