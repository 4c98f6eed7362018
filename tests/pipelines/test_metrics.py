from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.errors import NotFoundError, ValidationError
from engine.metrics import compute_metrics, realtime_values
from engine.store import Store
from engine.store.metric_values import read_metric_values, value_counts
from pipelines.metrics import refresh, run
from pipelines.seed import seed_starbucks

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
SORT = ["metric", "customer_id", "group_key"]

METRICS = [
    {"name": "clicks_7d", "aggregateFunction": "count", "sourceField": "click", "windowDays": 7,
     "computeMode": "realtime"},
    {"name": "ctr_30d", "aggregateFunction": "ratio", "sourceField": "click",
     "denominatorField": "impression", "windowDays": 30},
    {"name": "revenue_90d", "aggregateFunction": "sum", "sourceField": "converts",
     "windowDays": 90, "computeMode": "realtime"},
    {"name": "avg_order", "aggregateFunction": "avg", "sourceField": "conversion"},
    {"name": "offer_impressions_7d", "aggregateFunction": "count", "sourceField": "impressions",
     "windowDays": 7, "groupByDimensions": ["offerId"]},
    {"name": "email_negative", "aggregateFunction": "count", "sourceField": "negative",
     "groupByDimensions": ["offerId", "channelId"],
     "filterConditions": {"or": [{"field": "channelId", "operator": "eq", "value": "ch_email"},
                                 {"field": "offerId", "operator": "contains", "value": "bogo"}]}},
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store(tmp_path_factory.mktemp("metrics") / "m.duckdb", pepper="p")
    seed_starbucks(s, "demo", customers=300, as_of=AS_OF)
    for doc in METRICS:
        s.behavioral_metrics.create("demo", doc)
    s.behavioral_metrics.create("demo", {"name": "paused_one", "aggregateFunction": "count",
                                         "sourceField": "click", "status": "paused"})
    yield s
    s.close()


def table(store: Store, tenant: str = "demo") -> pl.DataFrame:
    return store.db.cursor().sql(
        "SELECT * FROM metric_values WHERE tenant_id = ? ORDER BY ALL", params=[tenant]
    ).pl()


def test_refresh_writes_every_active_metric_and_is_idempotent(store: Store) -> None:
    first = refresh(store, "demo", as_of=AS_OF, progress=False)
    assert first.metrics == tuple(m["name"] for m in METRICS)  # not the paused one
    assert first.rows == sum(value_counts(store, "demo").values()) > 0
    assert set(value_counts(store, "demo")) == {m["name"] for m in METRICS}
    assert first.interactions == store.interactions.count("demo")
    before = table(store)
    again = refresh(store, "demo", as_of=AS_OF, progress=False)
    assert again.rows == first.rows
    assert_frame_equal(table(store), before)


def test_refresh_equals_compute_metrics_over_the_log(store: Store) -> None:
    refresh(store, "demo", as_of=AS_OF, progress=False)
    log = store.interactions.history("demo")
    want = compute_metrics(log, METRICS, as_of=AS_OF).sort(SORT)
    assert_frame_equal(read_metric_values(store, "demo", as_of=AS_OF).sort(SORT), want)


def test_realtime_values_equal_the_refreshed_ones(store: Store) -> None:
    refresh(store, "demo", as_of=AS_OF, progress=False)
    stored = read_metric_values(store, "demo", as_of=AS_OF)
    customers = stored["customer_id"].unique().sort().head(25).to_list()
    for customer in customers:
        mine = store.interactions.history("demo", [customer])
        assert_frame_equal(
            realtime_values(mine, METRICS, AS_OF).sort(SORT),
            stored.filter(pl.col("customer_id") == customer).sort(SORT),
        )


def test_snapshots_at_other_times_are_kept_unless_pruned(store: Store) -> None:
    earlier = AS_OF - timedelta(days=10)
    refresh(store, "demo", as_of=AS_OF, progress=False)
    result = refresh(store, "demo", as_of=earlier, progress=False)
    stamps = store.db.cursor().execute(
        "SELECT DISTINCT as_of FROM metric_values WHERE tenant_id = 'demo' ORDER BY 1"
    ).fetchall()
    assert [s[0] for s in stamps] == [earlier.replace(tzinfo=None), AS_OF.replace(tzinfo=None)]
    assert result.interactions < store.interactions.count("demo")
    refresh(store, "demo", as_of=AS_OF, progress=False, prune_older=True)
    stamps = store.db.cursor().execute(
        "SELECT DISTINCT as_of FROM metric_values WHERE tenant_id = 'demo'").fetchall()
    assert stamps == [(AS_OF.replace(tzinfo=None),)]


def test_parquet_output_matches_the_table(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "out" / "metrics.parquet"
    result = run(store=store, tenant_id="demo", as_of=AS_OF, parquet=target, progress=False)
    assert result.parquet == target and "parquet" in result.seconds
    written = pl.read_parquet(target).sort(SORT)
    stored = table(store).filter(pl.col("as_of") == AS_OF.replace(tzinfo=None)).sort(SORT)
    assert_frame_equal(written, stored, check_dtypes=False)
    assert result.to_dict()["rows"] == written.height
    with pytest.raises(ValidationError):
        refresh(store, "demo", as_of=AS_OF, parquet=tmp_path, progress=False)


def test_progress_bar_goes_to_stderr(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    refresh(store, "demo", as_of=AS_OF, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "metrics refreshed" in captured.err


def test_a_tenant_without_metrics_gets_an_empty_snapshot(tmp_path: Path) -> None:
    s = Store(tmp_path / "empty.duckdb", pepper="p")
    s.tenants.create("bare")
    result = refresh(s, "bare", as_of=AS_OF, progress=False)
    assert (result.rows, result.metrics, result.interactions) == (0, (), 0)
    with pytest.raises(NotFoundError):
        refresh(s, "nope", as_of=AS_OF, progress=False)
    s.close()


def test_a_deleted_metric_disappears_from_the_next_refresh(tmp_path: Path) -> None:
    s = Store(tmp_path / "del.duckdb", pepper="p")
    seed_starbucks(s, "t", customers=50, as_of=AS_OF)
    keep = s.behavioral_metrics.create("t", METRICS[0])
    gone = s.behavioral_metrics.create("t", METRICS[2])
    refresh(s, "t", as_of=AS_OF, progress=False)
    assert set(value_counts(s, "t")) == {keep["name"], gone["name"]}
    s.behavioral_metrics.delete("t", gone["id"])
    refresh(s, "t", as_of=AS_OF, progress=False)
    assert set(value_counts(s, "t")) == {keep["name"]}
    s.close()


def test_parse_as_of() -> None:
    from pipelines.metrics import parse_as_of

    assert parse_as_of("2026-06-01T00:00:00Z") == AS_OF
    assert parse_as_of("2026-06-01") == AS_OF  # naive = UTC
    assert parse_as_of("2026-06-01T02:00:00+02:00") == AS_OF
    assert parse_as_of(None, now=AS_OF) == AS_OF
    assert parse_as_of(None).tzinfo is not None
    with pytest.raises(ValidationError) as exc:
        parse_as_of("yesterday")
    assert exc.value.field == "asOf"


def test_refresh_command_prints_a_summary(store: Store) -> None:
    from rich.console import Console

    from pipelines.metrics import refresh_command

    console = Console(record=True, width=120)
    result = refresh_command(store, "demo", as_of="2026-06-01T00:00:00Z", progress=False,
                             console=console)
    text = console.export_text()
    assert result.as_of == AS_OF
    assert "clicks_7d" in text and f"{result.rows:,} values" in text


def test_a_definition_that_does_not_compile_is_skipped_with_its_reason(tmp_path: Path) -> None:
    s = Store(tmp_path / "bad.duckdb", pepper="p")
    seed_starbucks(s, "t", customers=30, as_of=AS_OF)
    s.behavioral_metrics.create("t", METRICS[0])
    good = s.behavioral_metrics.create("t", {"name": "bad", "aggregateFunction": "count",
                                              "sourceField": "click"})
    # The store refuses such a definition now; one written before that check still exists.
    bad_filter = {"field": "customer.age", "operator": "gt", "value": 30}
    with s.db.transaction() as cur:
        cur.execute(
            "UPDATE behavioral_metrics SET doc = json_merge_patch(doc, ?) WHERE id = ?",
            [json.dumps({"filterConditions": bad_filter}), good["id"]],
        )
    s._forget_version("t")
    result = refresh(s, "t", as_of=AS_OF, progress=False)
    assert result.metrics == ("clicks_7d",)
    assert "customer.age" in result.skipped["bad"]
    assert set(value_counts(s, "t")) == {"clicks_7d"}
    s.close()
