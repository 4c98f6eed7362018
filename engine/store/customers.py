"""Customer tables: one DuckDB table per (tenant, customer schema), loaded from a frame,
CSV or Parquet. The engine sees attributes as ``customer.<column>``."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import NotFoundError, ValidationError
from engine.store._db import Database, utcnow
from engine.store.tenants import require_tenant

SCHEMA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _table_name(tenant_id: str, schema: str) -> str:
    digest = hashlib.sha256(tenant_id.encode()).hexdigest()[:10]
    return f"cust_{digest}_{schema}"


class Customers:
    def __init__(self, db: Database) -> None:
        self.db = db

    def load(
        self,
        tenant_id: str,
        schema: str,
        source: pl.DataFrame | str | Path,
        *,
        key_column: str = "customer_id",
    ) -> int:
        """Create or replace the schema's table from a frame or a CSV/Parquet file."""
        if not SCHEMA_NAME.match(schema):
            raise ValidationError(
                "schema name must be lowercase letters, digits and '_' (max 63)", field="schema"
            )
        frame = _read(source)
        if key_column not in frame.columns:
            raise ValidationError(f"customer data has no {key_column!r} column", field="keyColumn")
        frame = frame.rename({key_column: "customer_id"}) if key_column != "customer_id" else frame
        if frame["customer_id"].null_count() or frame["customer_id"].n_unique() != frame.height:
            raise ValidationError("customer ids must be present and unique", field="customer_id")
        table = _table_name(tenant_id, schema)
        arrow = frame.with_columns(pl.col("customer_id").cast(pl.String)).to_arrow()
        with self.db.transaction() as cur:
            require_tenant(cur, tenant_id)
            cur.register("_customers_batch", arrow)
            cur.execute(f'DROP TABLE IF EXISTS "{table}"')
            cur.execute(f'CREATE TABLE "{table}" AS SELECT * FROM _customers_batch')
            cur.unregister("_customers_batch")
            cur.execute(
                "DELETE FROM customer_schemas WHERE tenant_id = ? AND name = ?", [tenant_id, schema]
            )
            cur.execute(
                "INSERT INTO customer_schemas VALUES (?, ?, ?, ?, ?, ?)",
                [tenant_id, schema, table, key_column, frame.height, utcnow()],
            )
        return frame.height

    def schemas(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = (
            self.db.cursor()
            .execute(
                "SELECT name, table_name, key_column, row_count FROM customer_schemas "
                "WHERE tenant_id = ? ORDER BY name",
                [tenant_id],
            )
            .fetchall()
        )
        return [{"name": r[0], "table": r[1], "keyColumn": r[2], "rowCount": r[3]} for r in rows]

    def fetch(
        self,
        tenant_id: str,
        customer_ids: Sequence[str] | None = None,
        *,
        schema: str | None = None,
    ) -> pl.DataFrame:
        """Rows of the given customers (all when None) as ``customer_id`` + ``customer.*``."""
        table = self._table(tenant_id, schema)
        where, params = "", []
        if customer_ids is not None:
            where = " WHERE customer_id IN (SELECT unnest(?))"
            params.append(list(customer_ids))
        frame = (
            self.db.cursor()
            .sql(f'SELECT * FROM "{table}"{where} ORDER BY customer_id', params=params)
            .pl()
        )
        return frame.rename({c: f"customer.{c}" for c in frame.columns if c != "customer_id"})

    def count(self, tenant_id: str, schema: str | None = None) -> int:
        table = self._table(tenant_id, schema)
        return self.db.cursor().execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0]

    def _table(self, tenant_id: str, schema: str | None) -> str:
        schemas = self.schemas(tenant_id)
        if schema is None:
            if not schemas:
                raise NotFoundError(f"tenant {tenant_id!r} has no customer data", field="schema")
            return schemas[0]["table"]
        for s in schemas:
            if s["name"] == schema:
                return s["table"]
        raise NotFoundError(f"customer schema {schema!r} not found", field="schema")


def _read(source: pl.DataFrame | str | Path) -> pl.DataFrame:
    if isinstance(source, pl.DataFrame):
        return source
    path = Path(source)
    if not path.exists():
        raise ValidationError(f"file {str(path)!r} does not exist", field="source")
    if path.suffix.lower() == ".parquet":
        return pl.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pl.read_csv(path, try_parse_dates=True)
    raise ValidationError("customer data must be a .csv or .parquet file", field="source")
