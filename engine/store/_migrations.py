"""Ordered schema migrations. Append new steps; never edit a released one.

Timestamps are stored as naive UTC ``TIMESTAMP``; readers attach the UTC zone.
"""

from __future__ import annotations

CATALOG_TABLES = (
    "categories",
    "sub_categories",
    "offers",
    "channels",
    "placements",
    "creatives",
    "outcome_types",
    "qualification_rules",
    "contact_policies",
    "decision_flows",
    "flow_routes",
)


def _catalog_table(name: str) -> str:
    # No primary key: uniqueness is enforced under the store's write lock, which keeps
    # DuckDB's update path (delete + insert on indexed rows) out of the way.
    return f"""
    CREATE TABLE {name} (
        tenant_id VARCHAR NOT NULL,
        id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        status VARCHAR,
        doc JSON NOT NULL,
        version INTEGER NOT NULL,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        deleted_at TIMESTAMP
    )"""


MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE tenants (
            id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            settings JSON NOT NULL,
            created_at TIMESTAMP NOT NULL
        )""",
        """
        CREATE TABLE tenant_catalog_versions (
            tenant_id VARCHAR NOT NULL,
            version BIGINT NOT NULL,
            changed_at TIMESTAMP NOT NULL
        )""",
        """
        CREATE TABLE api_keys (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            prefix VARCHAR NOT NULL,
            key_hash VARCHAR NOT NULL,
            scopes JSON NOT NULL,
            expires_at TIMESTAMP,
            created_at TIMESTAMP NOT NULL,
            revoked_at TIMESTAMP,
            revoke_reason VARCHAR
        )""",
        *(_catalog_table(t) for t in CATALOG_TABLES),
        """
        CREATE TABLE customer_schemas (
            tenant_id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL,
            key_column VARCHAR NOT NULL,
            row_count BIGINT NOT NULL,
            loaded_at TIMESTAMP NOT NULL
        )""",
        """
        CREATE TABLE interactions (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            customer_id VARCHAR NOT NULL,
            offer_id VARCHAR,
            creative_id VARCHAR,
            channel_id VARCHAR,
            placement_id VARCHAR,
            category_id VARCHAR,
            recommendation_id VARCHAR,
            rank INTEGER,
            outcome VARCHAR NOT NULL,
            classification VARCHAR,
            direction VARCHAR,
            ts TIMESTAMP NOT NULL,
            value DOUBLE,
            context JSON,
            idempotency_key VARCHAR
        )""",
        """
        CREATE TABLE decision_traces (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            customer_id VARCHAR NOT NULL,
            flow_key VARCHAR,
            created_at TIMESTAMP NOT NULL,
            doc JSON NOT NULL
        )""",
        "CREATE TABLE packs (tenant_id VARCHAR NOT NULL, name VARCHAR NOT NULL, "
        "loaded_at TIMESTAMP NOT NULL, counts JSON NOT NULL)",
    ),
)

MIGRATIONS += (
    (
        _catalog_table("behavioral_metrics"),
        _catalog_table("experiments"),
        """
        CREATE TABLE metric_values (
            tenant_id VARCHAR NOT NULL,
            metric VARCHAR NOT NULL,
            customer_id VARCHAR NOT NULL,
            group_key VARCHAR,
            value DOUBLE,
            as_of TIMESTAMP NOT NULL
        )""",
        "ALTER TABLE interactions ADD COLUMN experiment_key VARCHAR",
        "ALTER TABLE interactions ADD COLUMN variant VARCHAR",
    ),
)
CATALOG_TABLES += ("behavioral_metrics", "experiments")

MIGRATIONS += (
    (  # the generation of the last log journal absorbed (``engine.store.journal``)
        "CREATE TABLE journal_state (generation BIGINT NOT NULL)",
        "INSERT INTO journal_state VALUES (0)",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
