"""Batch scoring on a real store file: chunking, sources, the log, the summary, the kernel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal
from rich.console import Console

from engine.decide import DecisionRequest, decide
from engine.errors import ConflictError, NotFoundError, ValidationError
from engine.experiments import assign_frame
from engine.store import Store
from pipelines.batch_score import OUTPUT_SCHEMA, read_output, run, score_chunk, score_command
from pipelines.seed import CUSTOMER_SCHEMA, seed_starbucks

TENANT = "demo"
FLOW = "starbucks-decision-pipeline"
AS_OF = datetime(2026, 5, 1, 15, 0, tzinfo=UTC)
CUSTOMERS = 400
KEY = ["customer_id", "rank"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("batch") / "nextbest.duckdb"
    store = Store(path, pepper="test")
    # a busy history, so the contact policies (24 h cooldown, 3 a day) have work to do
    seed_starbucks(store, TENANT, customers=CUSTOMERS, as_of=AS_OF, history_per_customer=60)
    yield store
    store.close()


def score(store: Store, out: Path, **kwargs) -> tuple[pl.DataFrame, dict]:
    params = {"store": store, "tenant_id": TENANT, "flow_key": FLOW, "as_of": AS_OF,
              "out": out, "progress": False} | kwargs
    summary = run(**params)
    frame = read_output(summary.directory)
    doc = json.loads((summary.directory / "summary.json").read_text())
    return frame, doc


def log_state(store: Store) -> tuple:
    return store.db.cursor().execute(
        "SELECT count(*), sum(hash(id, customer_id, offer_id, outcome, ts)) FROM interactions "
        "WHERE tenant_id = ?", [TENANT]).fetchall()[0]


def test_results_do_not_depend_on_chunk_size(store: Store, tmp_path: Path) -> None:
    whole, _ = score(store, tmp_path, run_id="whole", chunk_size=10_000)
    assert whole.schema == pl.Schema(pl.from_arrow(OUTPUT_SCHEMA.empty_table()).schema)
    assert whole.get_column("customer_id").n_unique() > CUSTOMERS * 0.8
    for size, workers in ((64, 1), (7, 3)):
        parts, doc = score(store, tmp_path, run_id=f"c{size}", chunk_size=size, workers=workers)
        assert doc["chunks"] == -(-CUSTOMERS // size)
        assert_frame_equal(parts.drop("run_id"), whole.drop("run_id"))
    assert whole.select(pl.struct(KEY).is_duplicated().any()).item() is False
    # chunks come in id order, ranks are 1..n per customer
    assert whole.get_column("customer_id").is_sorted()
    ranks = whole.group_by("customer_id").agg(pl.col("rank"))
    assert all(r == list(range(1, len(r) + 1)) for r in ranks.get_column("rank").to_list())


def test_batch_rows_are_what_decide_returns(store: Store, tmp_path: Path) -> None:
    """The batch drops only the rendered content: decisions, scores and personalization are
    those of one ``decide`` call with the published flow (response node included)."""
    frame, _ = score(store, tmp_path, run_id="r", chunk_size=150)
    catalog = store.load_catalog(TENANT)
    people = store.customers.fetch(TENANT)
    history = store.interactions.history(TENANT)
    want = decide(catalog, people, history, DecisionRequest(), as_of=AS_OF, flow=FLOW).decisions
    want = want.select(
        "customer_id", pl.int_range(1, pl.len() + 1).over("request_index").cast(pl.Int32)
        .alias("rank"), "offer_id", "creative_id", "channel_id", "placement_id", "score",
        "personalization",
    )
    assert_frame_equal(frame.select(want.columns), want)
    assert frame.get_column("personalization").str.starts_with("{").all()


def test_content_is_written_on_request(store: Store, tmp_path: Path) -> None:
    frame, _ = score(store, tmp_path, run_id="content", content=True, limit=30)
    assert "content" in frame.columns
    assert all(isinstance(json.loads(c), dict) for c in frame.get_column("content"))
    plain, _ = score(store, tmp_path, run_id="plain", limit=30)
    assert_frame_equal(frame.drop("content", "run_id"), plain.drop("run_id"))


def test_summary_adds_up(store: Store, tmp_path: Path) -> None:
    frame, doc = score(store, tmp_path, run_id="sum", chunk_size=100)
    assert doc["customers"] == CUSTOMERS
    assert doc["decisions"] == frame.height
    funnel = doc["funnel"]
    assert funnel["candidateCount"] >= funnel["afterQualification"] >= \
        funnel["afterContactPolicy"] >= funnel["finalCount"] > 0
    assert funnel["afterQualification"] > funnel["afterContactPolicy"]  # policies bite
    assert funnel["finalCount"] == frame.height  # one row per distinct offer, one slot
    assert sum(doc["offersByCategory"].values()) == frame.height
    counts = frame.group_by("offer_id").len()
    assert doc["offersById"] == dict(counts.iter_rows()) | {}
    assert doc["candidatePairs"] == funnel["candidateCount"]
    assert doc["customersPerSecond"] > 0 and doc["candidatePairsPerSecond"] > 0
    assert doc["asOf"] == "2026-05-01T15:00:00Z" and doc["flowKey"] == FLOW


def test_segment_and_parquet_sources(store: Store, tmp_path: Path) -> None:
    everyone, _ = score(store, tmp_path, run_id="all")
    people = store.customers.fetch(TENANT)
    high = people.filter(pl.col("customer.segments").list.contains("high_income"))
    assert 0 < high.height < people.height
    seg, doc = score(store, tmp_path, run_id="seg", segment="high_income", chunk_size=33)
    assert doc["customers"] == high.height
    assert set(seg.get_column("customer_id")) <= set(high.get_column("customer_id"))
    want = everyone.filter(pl.col("customer_id").is_in(high.get_column("customer_id")))
    assert_frame_equal(seg.drop("run_id"), want.drop("run_id"))

    # a file of ids only: attributes come from the customer table
    ids = people.get_column("customer_id").sample(57, seed=1)
    pl.DataFrame({"customer_id": ids}).write_parquet(tmp_path / "ids.parquet")
    picked, doc = score(store, tmp_path, run_id="ids", customers=tmp_path / "ids.parquet")
    assert doc["customers"] == 57
    want = everyone.filter(pl.col("customer_id").is_in(ids))
    assert_frame_equal(picked.drop("run_id"), want.drop("run_id"))

    # a file with attributes (unprefixed names, as exported), filtered to a segment
    plain = people.rename(lambda c: c.removeprefix("customer."))
    plain.write_parquet(tmp_path / "people.parquet")
    same, _ = score(store, tmp_path, run_id="file", customers=str(tmp_path / "people.parquet"),
                    segment="high_income")
    assert_frame_equal(same.drop("run_id"), seg.drop("run_id"))

    # the customer table by schema name
    named, _ = score(store, tmp_path, run_id="named", customers=CUSTOMER_SCHEMA, limit=40)
    assert_frame_equal(named.drop("run_id"), everyone.filter(
        pl.col("customer_id").is_in(people.get_column("customer_id").head(40))).drop("run_id"))


def test_bad_sources_name_the_problem(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="customer schema 'nope' not found"):
        score(store, tmp_path, run_id="x1", customers="nope")
    with pytest.raises(ValidationError, match="does not exist"):
        score(store, tmp_path, run_id="x2", customers=tmp_path / "missing.parquet")
    twice = store.customers.fetch(TENANT).head(3)
    pl.concat([twice, twice.head(1)]).write_parquet(tmp_path / "twice.parquet")
    with pytest.raises(ValidationError, match="unique in twice.parquet .0 missing, 1 repeated"):
        score(store, tmp_path, run_id="x7", customers=tmp_path / "twice.parquet")
    with pytest.raises(ValidationError, match="schema name or a .parquet file"):
        score(store, tmp_path, run_id="x6", customers="people.csv")
    with pytest.raises(ValidationError, match="no column 'tags'"):
        score(store, tmp_path, run_id="x3", segment="vip", segment_column="tags")
    with pytest.raises(NotFoundError, match="decision flow 'nope' not found"):
        score(store, tmp_path, run_id="x4", flow_key="nope")
    with pytest.raises(ValidationError, match="run id"):
        score(store, tmp_path, run_id="../escape")
    with pytest.raises(ValidationError, match="chunk_size"):
        score(store, tmp_path, run_id="x5", chunk_size=0)
    with pytest.raises(ValidationError, match="workers"):
        score(store, tmp_path, run_id="x6", workers=0)


def test_limit_takes_the_first_customers(store: Store, tmp_path: Path) -> None:
    frame, doc = score(store, tmp_path, run_id="lim", limit=25, chunk_size=10)
    assert doc["customers"] == 25 and doc["chunks"] == 3
    first = store.customers.fetch(TENANT).get_column("customer_id").head(25)
    assert set(frame.get_column("customer_id")) <= set(first)


def test_the_log_is_untouched_without_log_decisions(store: Store, tmp_path: Path) -> None:
    before = log_state(store)
    score(store, tmp_path, run_id="ro", chunk_size=50)
    assert log_state(store) == before


def test_log_decisions_appends_recommendation_rows_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.duckdb", pepper="test")
    try:
        seed_starbucks(store, TENANT, customers=60, as_of=AS_OF)
        before = store.interactions.count(TENANT)
        frame, doc = score(store, tmp_path, run_id="logged", chunk_size=25, log_decisions=True)
        assert doc["loggedRows"] == frame.height > 0
        assert store.interactions.count(TENANT) == before + frame.height
        rows = store.db.cursor().sql(
            "SELECT id, customer_id, offer_id, creative_id, rank, recommendation_id, outcome, "
            "direction, ts, category_id, context FROM interactions WHERE tenant_id = ? "
            "AND outcome = 'recommendation'", params=[TENANT]).pl()
        assert rows.height == frame.height
        assert rows.get_column("id").n_unique() == rows.height
        assert rows.get_column("id").str.contains(r"^ix_[0-9a-f]{20}$").all()
        assert rows.get_column("recommendation_id").n_unique() == \
            frame.get_column("customer_id").n_unique()
        assert rows.get_column("ts").unique().to_list() == [AS_OF.replace(tzinfo=None)]
        assert rows.get_column("category_id").null_count() == 0
        joined = rows.join(frame, on=["customer_id", "rank"], how="inner")
        assert joined.height == frame.height
        assert (joined["offer_id"] == joined["offer_id_right"]).all()
        # a rerun of the finished run is a no-op; the logged rows do not change decisions
        again, _ = score(store, tmp_path, run_id="logged", chunk_size=25, log_decisions=True)
        assert store.interactions.count(TENANT) == before + frame.height
        fresh, _ = score(store, tmp_path, run_id="fresh", chunk_size=25)
        assert_frame_equal(fresh.drop("run_id"), frame.drop("run_id"))
    finally:
        store.close()


def test_rerun_with_other_parameters_is_refused(store: Store, tmp_path: Path) -> None:
    score(store, tmp_path, run_id="pinned", limit=10)
    with pytest.raises(ConflictError, match="asOf"):
        score(store, tmp_path, run_id="pinned", limit=10,
              as_of=datetime(2026, 5, 2, tzinfo=UTC))
    with pytest.raises(ConflictError, match="chunkSize"):
        score(store, tmp_path, run_id="pinned", limit=10, chunk_size=3)
    # without an as-of, a resumed run keeps the one it recorded
    summary = run(store=store, tenant_id=TENANT, flow_key=FLOW, out=tmp_path, run_id="pinned",
                  limit=10, progress=False)
    assert summary.as_of == AS_OF and summary.resumed_chunks == summary.chunks == 1


def test_experiment_variant_column(store: Store, tmp_path: Path) -> None:
    experiment = {
        "key": "batch-exp", "name": "Batch experiment", "holdoutPercent": 10,
        "variants": [{"key": "control", "trafficPercent": 50, "isControl": True},
                     {"key": "treatment", "trafficPercent": 50}],
    }
    store.experiments.create(TENANT, experiment)
    frame, doc = score(store, tmp_path, run_id="exp", experiment="batch-exp", limit=120)
    assert doc["experiment"] == "batch-exp"
    arms = assign_frame(frame.get_column("customer_id").unique(), experiment)
    got = frame.select("customer_id", "experiment_variant").unique()
    joined = got.join(arms, on="customer_id")
    assert joined.height == got.height
    assert (joined["experiment_variant"] == joined["variant"]).all()
    assert set(joined["variant"]) == {"__holdout__", "control", "treatment"}
    plain, _ = score(store, tmp_path, run_id="noexp", limit=120)
    assert plain.get_column("experiment_variant").null_count() == plain.height


def test_score_chunk_is_arrow_in_arrow_out(store: Store) -> None:
    catalog = store.load_catalog(TENANT)
    people = store.customers.fetch(TENANT).head(20)
    ids = people.get_column("customer_id").to_list()
    history = store.interactions.history(TENANT, ids)
    table = score_chunk(people.to_arrow(), history.to_arrow(), catalog=catalog, flow=FLOW,
                        request=DecisionRequest(channel="email", limit=2), as_of=AS_OF,
                        run_id="k")
    assert isinstance(table, pa.Table) and table.schema == OUTPUT_SCHEMA
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame) and frame.height > 0
    assert frame.group_by("customer_id").len().get_column("len").max() <= 2
    assert set(frame.get_column("channel_id")) == {"ch_email"}
    # naive timestamps are UTC; an empty chunk is an empty table
    empty = score_chunk(people.head(0).to_arrow(), None, catalog=catalog, flow=FLOW,
                        as_of=AS_OF)
    assert empty.num_rows == 0 and empty.schema == OUTPUT_SCHEMA
    with pytest.raises(ValidationError, match="template"):
        score_chunk(people.to_arrow(), None, catalog=catalog, flow=FLOW, as_of=AS_OF,
                    request=DecisionRequest(customer_id="SBX-000001"))


def test_score_command_prints_the_summary(store: Store, tmp_path: Path) -> None:
    """The CLI body: ISO as-of, the default flow of the tenant, a request template."""
    console = Console(record=True, width=120)
    summary = score_command(store, TENANT, as_of="2026-05-01T15:00:00Z", limit=20, out=tmp_path,
                            run_id="cmd", channel="email", offers=2, progress=False,
                            console=console)
    text = console.export_text()
    assert "Batch run cmd" in text and f"{FLOW} v1" in text and "candidate pairs/s" in text
    assert summary.as_of == AS_OF and summary.flow_key == FLOW
    frame = read_output(summary.directory)
    assert set(frame.get_column("channel_id")) == {"ch_email"}
    assert frame.group_by("customer_id").len().get_column("len").max() <= 2
