"""The CLI as a user runs it: a real subprocess on a real database file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.store import Store


def nextbest(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEXTBEST_DATABASE_PATH": str(db), "NEXTBEST_API_KEY_PEPPER": "cli",
           "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.duckdb"


def test_init_tenants_and_keys(db: Path) -> None:
    assert nextbest(db, "init").returncode == 0
    assert nextbest(db, "tenants", "create", "acme").returncode == 0
    made = nextbest(db, "keys", "create", "--tenant", "acme", "--name", "ci")
    assert made.returncode == 0, made.stderr
    raw = next(line for line in made.stdout.splitlines() if line.startswith("krn_"))
    store = Store(db, pepper="cli")
    assert store.api_keys.verify("acme", raw) is not None
    store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("keys", "create", "--tenant", "nobody"), "tenant 'nobody' not found"),
        (("tenants", "create", "bad id!"), "tenant id must be"),
        (("keys", "create", "--tenant", "acme", "--expires-at", "soon"), "not an ISO-8601"),
    ],
)
def test_errors_are_one_clear_line_without_traceback(db: Path, args, message) -> None:
    nextbest(db, "tenants", "create", "acme")
    result = nextbest(db, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_seed_prints_a_summary_and_refuses_a_second_load(db: Path) -> None:
    first = nextbest(db, "seed", "starbucks", "--tenant", "t1", "--customers", "100")
    assert first.returncode == 0, first.stderr
    assert "starbucks-decision-pipeline" in first.stdout
    assert "customers" in first.stdout
    again = nextbest(db, "seed", "starbucks", "--tenant", "t1")
    assert again.returncode == 1
    assert "--force" in again.stderr and "Traceback" not in again.stderr
