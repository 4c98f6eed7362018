"""The run directory of a batch run: chunk files written atomically and a manifest.

``<out>/<run_id>/part-00000.parquet`` ... each chunk is written to a temporary name,
flushed to disk and renamed, then recorded in ``manifest.json`` (itself replaced
atomically). A chunk is finished when the manifest lists it, so a run killed at any point
leaves at most a stray temporary file or an unlisted chunk file, both redone by the rerun.
The manifest also pins the run's parameters (tenant, flow, catalog version, as-of, customer
set, chunk size, request): a rerun with the same run id and different parameters is refused,
because its chunks would not add up to one consistent run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from engine.errors import ConflictError, ValidationError
from engine.store._db import fsync_directory

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
FORMAT = 1


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise ValidationError(
            f"run id {run_id!r} must be letters, digits, '_', '-' or '.' (max 128), "
            "starting with a letter or digit",
            field="runId",
        )
    return run_id


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent)


def write_parquet_atomic(path: Path, frame: pl.DataFrame) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        frame.write_parquet(fh, compression="zstd")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent)


def _flat(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@dataclass
class ChunkRecord:
    index: int
    file: str
    customers: int
    rows: int
    first_customer: str | None
    last_customer: str | None
    funnel: dict[str, int]
    categories: dict[str, int]
    offers: dict[str, int]
    seconds: float
    logged: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "file": self.file,
            "customers": self.customers,
            "rows": self.rows,
            "firstCustomer": self.first_customer,
            "lastCustomer": self.last_customer,
            "funnel": self.funnel,
            "categories": self.categories,
            "offers": self.offers,
            "seconds": round(self.seconds, 6),
            "logged": self.logged,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChunkRecord:
        return cls(
            d["index"], d["file"], d["customers"], d["rows"], d["firstCustomer"],
            d["lastCustomer"], d["funnel"], d["categories"], d.get("offers", {}), d["seconds"],
            d.get("logged", 0),
        )


@dataclass
class Manifest:
    """What a run directory holds. ``params`` must match on every attempt of a run."""

    directory: Path
    params: dict[str, Any]
    chunks: list[ChunkRecord] = field(default_factory=list)
    complete: bool = False
    attempts: int = 0

    @property
    def path(self) -> Path:
        return self.directory / MANIFEST

    @property
    def customers(self) -> int:
        return sum(c.customers for c in self.chunks)

    @property
    def last_customer(self) -> str | None:
        for chunk in reversed(self.chunks):
            if chunk.last_customer is not None:
                return chunk.last_customer
        return None

    def files(self) -> list[Path]:
        return [self.directory / c.file for c in self.chunks]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "params": self.params,
            "attempts": self.attempts,
            "complete": self.complete,
            "chunks": [c.to_dict() for c in self.chunks],
        }

    def save(self) -> None:
        write_atomic(self.path, orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2))

    def add(self, chunk: ChunkRecord) -> None:
        if chunk.index != len(self.chunks):
            raise RuntimeError(f"chunk {chunk.index} recorded out of order")
        self.chunks.append(chunk)
        self.save()

    @classmethod
    def open(cls, directory: Path, params: dict[str, Any]) -> Manifest:
        """The run's manifest: a new one, or the one a previous attempt left (its
        parameters must be the same). Stray temporary and unlisted chunk files go."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / MANIFEST
        manifest = cls(directory, params)
        if path.exists():
            raw = orjson.loads(path.read_bytes())
            if raw.get("format") != FORMAT:
                raise ConflictError(f"{path} was written by another version of nextbest",
                                    field="runId")
            old, new = _flat(raw.get("params", {})), _flat(params)
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            if changed:
                diffs = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
                raise ConflictError(
                    f"run {directory.name!r} exists with other parameters ({diffs}). "
                    "Hint: rerun with the same parameters to resume it, or use a new run id.",
                    field="runId",
                )
            manifest.chunks = [ChunkRecord.from_dict(c) for c in raw.get("chunks", [])]
            manifest.complete = bool(raw.get("complete"))
            manifest.attempts = int(raw.get("attempts", 0))
        listed = {c.file for c in manifest.chunks}
        for stray in directory.iterdir():
            name = stray.name
            if name.endswith(".tmp") or (name.startswith("part-") and name not in listed):
                stray.unlink()
        manifest.attempts += 1
        manifest.save()
        return manifest
