"""Reads of batch scoring runs: customers page by page, and one chunk's history in one query.

A batch run walks a customer set in ``customer_id`` order with keyset pagination
(``customer_id > last ORDER BY customer_id LIMIT n``), so a page never depends on how many
pages came before it: a rerun that starts after the last finished page reads exactly the
pages an uninterrupted run would have. The customer set is one of

- a customer table of the tenant (a "schema"; the first one by name when not given),
- a Parquet file: every column it has (``customer_id`` plus attributes), or only ids, whose
  attributes are then looked up in the tenant's customer table,
- either of those filtered to a segment: rows whose segment column (a list, or a plain
  value) contains / equals the segment.

Pages come back as Arrow tables with ``customer_id`` (string) and ``customer.<column>``
attributes, the shape ``engine.decide`` reads. Only identifiers read from the catalog of
the database itself (customer tables, column names) are spliced into SQL; values travel as
parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from engine.catalog.snapshot import HISTORY_SCHEMA
from engine.errors import NotFoundError, ValidationError
from engine.store.store import Store

# Log rows no decision node reads (the serving working set leaves them out too).
SKIPPED_OUTCOMES: tuple[str, ...] = ("recommendation",)
_HISTORY_COLUMNS = ", ".join(HISTORY_SCHEMA)
_IDS = "_batch_ids"


@dataclass(frozen=True)
class CustomerSource:
    """Which customers a batch run scores.

    ``schema``: a customer table of the tenant (default: its first one). ``parquet``: a file
    with a ``customer_id`` column (and attributes, or only ids). ``segment``: keep rows whose
    ``segment_column`` contains it (list column) or equals it (plain column).
    """

    schema: str | None = None
    parquet: Path | None = None
    segment: str | None = None
    segment_column: str = "segments"

    def describe(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "parquet": None if self.parquet is None else str(self.parquet),
            "segment": self.segment,
            "segmentColumn": self.segment_column if self.segment is not None else None,
        }


def _naive(ts: datetime) -> datetime:
    return ts if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table(store: Store, tenant_id: str, schema: str | None, *, required: bool) -> str | None:
    schemas = store.customers.schemas(tenant_id)
    if schema is None:
        if schemas:
            return schemas[0]["table"]
        if required:
            raise NotFoundError(
                f"tenant {tenant_id!r} has no customer data; load a customer table or pass "
                "a Parquet file of customers",
                field="customers",
            )
        return None
    for s in schemas:
        if s["name"] == schema:
            return s["table"]
    known = ", ".join(s["name"] for s in schemas) or "none"
    raise NotFoundError(f"customer schema {schema!r} not found (known: {known})", field="customers")


def _columns(cur: Any, sql: str, params: list[Any]) -> list[tuple[str, str]]:
    rows = cur.execute(f"DESCRIBE {sql}", params).fetchall()
    return [(r[0], str(r[1])) for r in rows]


def _base(store: Store, tenant_id: str, source: CustomerSource) -> tuple[str, list[Any]]:
    """``SELECT`` of the whole customer set: ``customer_id`` (string) + attribute columns
    (attribute names without the ``customer.`` prefix)."""
    cur = store.db.cursor()
    if source.parquet is None:
        table = _table(store, tenant_id, source.schema, required=True)
        return f"SELECT * FROM {_quote(str(table))}", []
    path = Path(source.parquet)
    if not path.exists():
        raise ValidationError(f"customer file {str(path)!r} does not exist", field="customers")
    raw = "SELECT * FROM read_parquet(?)"
    cols = _columns(cur, raw, [str(path)])
    names = [n for n, _ in cols]
    if "customer_id" not in names:
        raise ValidationError(
            f"customer file {path.name!r} has no customer_id column", field="customers"
        )
    attrs = [n for n in names if n != "customer_id"]
    if attrs:
        select = ", ".join(f"{_quote(n)} AS {_quote(n.removeprefix('customer.'))}" for n in attrs)
        return (
            f"SELECT CAST(customer_id AS VARCHAR) AS customer_id, {select} FROM read_parquet(?)",
            [str(path)],
        )
    ids = (
        "SELECT DISTINCT CAST(customer_id AS VARCHAR) AS customer_id FROM read_parquet(?) "
        "WHERE customer_id IS NOT NULL"
    )
    table = _table(store, tenant_id, source.schema, required=False)
    if table is None:
        return ids, [str(path)]
    return (
        f"SELECT p.customer_id, t.* EXCLUDE (customer_id) FROM ({ids}) p "
        f"LEFT JOIN {_quote(table)} t USING (customer_id)",
        [str(path)],
    )


def _customer_set(store: Store, tenant_id: str, source: CustomerSource) -> tuple[str, list[Any]]:
    sql, params = _base(store, tenant_id, source)
    if source.segment is None:
        return sql, params
    cols = dict(_columns(store.db.cursor(), sql, params))
    column = source.segment_column.removeprefix("customer.")
    dtype = cols.get(column)
    if dtype is None:
        raise ValidationError(
            f"the customers have no column {column!r} to filter segment "
            f"{source.segment!r} on (columns: {', '.join(sorted(cols))})",
            field="segment",
        )
    if dtype.endswith("[]"):
        pred = f"coalesce(list_contains(CAST({_quote(column)} AS VARCHAR[]), ?), false)"
    else:
        pred = f"coalesce(CAST({_quote(column)} AS VARCHAR) = ?, false)"
    return f"SELECT * FROM ({sql}) WHERE {pred}", [*params, source.segment]


def count_customers(store: Store, tenant_id: str, source: CustomerSource) -> int:
    """How many customers the source holds (after the segment filter). A file of customer
    rows must name each customer once (a file of ids only may repeat them)."""
    sql, params = _customer_set(store, tenant_id, source)
    rows, distinct, ids = (
        store.db.cursor()
        .execute(
            f"SELECT count(*), count(DISTINCT customer_id), count(customer_id) FROM ({sql})", params
        )
        .fetchall()[0]
    )
    if rows != distinct or rows != ids:
        name = Path(source.parquet).name if source.parquet is not None else "the customer table"
        raise ValidationError(
            f"customer ids must be present and unique in {name} "
            f"({rows - ids} missing, {ids - distinct} repeated)",
            field="customers",
        )
    return int(rows)


def customer_pages(
    store: Store,
    tenant_id: str,
    source: CustomerSource,
    *,
    after: str | None,
    page_size: int,
    limit: int | None = None,
) -> Iterator[pa.Table]:
    """The customers with ``customer_id > after`` in id order (at most ``limit``), as Arrow
    pages of exactly ``page_size`` rows (the last may be shorter): ``customer_id`` +
    ``customer.<attribute>`` columns. One sorted query streamed on a cursor of its own, so
    other reads (a chunk's history) can run meanwhile on the thread's usual cursor."""
    if page_size < 1:
        raise ValidationError("a page holds at least one customer", field="chunkSize")
    sql, params = _customer_set(store, tenant_id, source)
    where = ""
    if after is not None:
        where = " WHERE customer_id > ?"
        params = [*params, after]
    tail = ""
    if limit is not None:
        tail = " LIMIT ?"
        params = [*params, limit]
    cur = _own_cursor(store)
    try:
        reader = cur.sql(
            f"SELECT * FROM ({sql}){where} ORDER BY customer_id{tail}", params=params
        ).to_arrow_reader(page_size)
        names: list[str] | None = None
        buffered: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            buffered.append(batch)
            rows += batch.num_rows
            while rows >= page_size:
                table = pa.Table.from_batches(buffered)
                page, rest = table.slice(0, page_size), table.slice(page_size)
                buffered, rows = rest.to_batches(), rest.num_rows
                names = names or _prefixed(page.column_names)
                yield page.rename_columns(names).combine_chunks()
        if rows:
            table = pa.Table.from_batches(buffered)
            yield table.rename_columns(_prefixed(table.column_names)).combine_chunks()
    finally:
        cur.close()


def _own_cursor(store: Store) -> Any:
    """A cursor nobody else uses: a partly fetched DuckDB result blocks its cursor, and the
    thread's usual cursor (``Database.cursor``) is shared by every read on that thread."""
    return store.db._con.cursor()  # same package: the Database owns the connection


def _prefixed(columns: Sequence[str]) -> list[str]:
    return ["customer_id" if n == "customer_id" else f"customer.{n}" for n in columns]


def history_for_customers(
    store: Store,
    tenant_id: str,
    customer_ids: pa.Array | pa.ChunkedArray | Sequence[str] | None,
    *,
    since: datetime | None,
    until: datetime,
    skip_outcomes: Sequence[str] = SKIPPED_OUTCOMES,
) -> pa.Table:
    """The interactions of the given customers (all when None) with ``since <= ts <= until``
    as Arrow in ``HISTORY_SCHEMA`` column order (``ts`` naive UTC), in ONE query: the ids are
    registered as an Arrow table and semi-joined, never sent as a parameter list."""
    where = ["tenant_id = ?", "ts <= ?"]
    params: list[Any] = [tenant_id, _naive(until)]
    if since is not None:
        where.append("ts >= ?")
        params.append(_naive(since))
    if skip_outcomes:
        where.append("outcome NOT IN (SELECT unnest(?))")
        params.append(list(skip_outcomes))
    cur = store.db.cursor()
    sql = f"SELECT {_HISTORY_COLUMNS} FROM interactions WHERE {' AND '.join(where)}"
    if customer_ids is None:
        return cur.sql(sql, params=params).to_arrow_table()
    ids = pa.table(
        {
            "customer_id": pa.array(customer_ids, type=pa.string())
            if not isinstance(customer_ids, pa.Array | pa.ChunkedArray)
            else customer_ids.cast(pa.string())
        }
    )
    cur.register(_IDS, ids)
    try:
        return cur.sql(
            f"{sql} AND customer_id IN (SELECT customer_id FROM {_IDS})", params=params
        ).to_arrow_table()
    finally:
        cur.unregister(_IDS)


def count_logged(store: Store, tenant_id: str, recommendation_prefix: str) -> int:
    """Recommendation rows whose ``recommendation_id`` starts with the prefix (a batch run
    checks this before logging a chunk a crashed attempt may already have logged)."""
    return int(
        store.db.cursor()
        .execute(
            "SELECT count(*) FROM interactions WHERE tenant_id = ? AND outcome = 'recommendation' "
            "AND starts_with(recommendation_id, ?)",
            [tenant_id, recommendation_prefix],
        )
        .fetchall()[0][0]
    )


__all__ = [
    "SKIPPED_OUTCOMES",
    "CustomerSource",
    "count_customers",
    "count_logged",
    "customer_pages",
    "history_for_customers",
]
