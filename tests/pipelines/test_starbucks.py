"""The Starbucks sample pack: catalog files, customer and history generators."""

from __future__ import annotations

import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from engine.catalog import ENTITY_MODELS, HISTORY_SCHEMA, SYSTEM_OUTCOME_TYPES, build_catalog
from engine.errors import ValidationError
from pipelines.starbucks import (
    HISTORY_FRAME_SCHEMA,
    PACK_DIR,
    generate_customers,
    generate_history,
    load_pack_documents,
)

# The public Starbucks portfolio (shared/data/starbucks_portfolio.csv), the pack's ground truth.
PORTFOLIO = """\
offer_id,offer_type,difficulty,reward,duration_days,channels
ae264e3637204a6fb9bb56bc8210ddfd,bogo,10,10,7,email|mobile|social
4d5c57ea9a6940dd891ad53e9dbe8da0,bogo,10,10,5,web|email|mobile|social
3f207df678b143eea3cee63160fa8bed,informational,0,0,4,web|email|mobile
9b98b8c7a33c4b65b9aebfe6a799e6d9,bogo,5,5,7,web|email|mobile
0b1e1539f2cc45b7b9fa7c272da2e1d7,discount,20,5,10,web|email
2298d6c36e964ae4a3e7e9706d1fb8c2,discount,7,3,7,web|email|mobile|social
fafdcd668e3743c1bb461111dcafc2a4,discount,10,2,10,web|email|mobile|social
5a8bc65990b245e5a138643cd4eb9837,informational,0,0,3,email|mobile|social
f19421c1d4aa40978ebb69ca19b0e20d,bogo,5,5,5,web|email|mobile|social
2906b810c7d4411798c6938adc9daaa5,discount,10,2,7,web|email|mobile
"""
CHANNEL_IDS = {"web": "ch_web", "email": "ch_email", "mobile": "ch_mobile", "social": "ch_social"}
AS_OF = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def documents() -> dict[str, list[dict[str, Any]]]:
    return load_pack_documents()


@pytest.fixture(scope="module")
def customers() -> pl.DataFrame:
    return generate_customers(5000, seed=7)


@pytest.fixture(scope="module")
def history(customers: pl.DataFrame, documents: dict[str, list[dict[str, Any]]]) -> pl.DataFrame:
    return generate_history(customers, documents, days=90, as_of=AS_OF, seed=7)


def by_id(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in docs}


# -- the catalog pack --------------------------------------------------------------------------


def test_pack_builds_a_catalog(documents: dict[str, list[dict[str, Any]]]) -> None:
    catalog = build_catalog("demo", 1, documents)

    assert catalog.offers.height == 10
    assert len(documents["categories"]) == 3
    assert catalog.channels.height == 4
    assert catalog.creatives.height >= 40
    assert set(catalog.creatives["offer.id"]) <= set(catalog.offers["offer.id"])
    assert set(catalog.creatives["channel.id"]) <= set(catalog.channels["channel.id"])
    placements = set(catalog.placements["placement.id"])
    assert set(catalog.creatives["placement.id"].drop_nulls()) <= placements
    assert {"pl_web_hero", "pl_mobile_feed"} <= placements
    for name in ("difficulty", "reward", "duration_days"):
        assert catalog.offers.schema[name] == pl.Float64
    assert set(catalog.computed_fields) == {"cat_acquisition", "cat_retention", "cat_engagement"}
    assert all(catalog.computed_fields.values())
    flow = catalog.flow_by_key("starbucks-decision-pipeline")
    assert flow is not None and flow["id"] == "flow_starbucks"


def test_every_document_is_in_its_validated_form(
    documents: dict[str, list[dict[str, Any]]],
) -> None:
    for entity, docs in documents.items():
        model = ENTITY_MODELS[entity]
        for doc in docs:
            assert model.model_validate(doc).dump() == doc


def test_offers_carry_the_portfolio(documents: dict[str, list[dict[str, Any]]]) -> None:
    portfolio = pl.read_csv(io.StringIO(PORTFOLIO)).rows(named=True)
    offers = {o["metadata"]["portfolioId"]: o for o in documents["offers"]}
    creatives = documents["creatives"]
    assert set(offers) == {p["offer_id"] for p in portfolio}
    category = {"bogo": "cat_acquisition", "discount": "cat_retention"}
    for p in portfolio:
        offer = offers[p["offer_id"]]
        fields = offer["customFields"]
        assert (fields["difficulty"], fields["reward"], fields["duration_days"]) == (
            p["difficulty"], p["reward"], p["duration_days"],
        )  # fmt: skip
        assert fields["offer_type"] == p["offer_type"] == offer["productType"]
        assert offer["categoryId"] == category.get(p["offer_type"], "cat_engagement")
        assert offer["status"] == "active"
        assert 55 <= offer["priority"] <= 85
        assert 0 <= offer["businessValue"] <= 100
        channels = p["channels"].split("|")
        assert offer["metadata"]["portfolioChannels"] == channels
        served = {c["channelId"] for c in creatives if c["offerId"] == offer["id"]}
        assert served == {CHANNEL_IDS[c] for c in channels}, offer["id"]


def test_offer_names_and_ids_are_readable(documents: dict[str, list[dict[str, Any]]]) -> None:
    offers = by_id(documents["offers"])
    assert offers["off_bogo_5_5d"]["name"] == "BOGO — 5 Day Easy"
    assert offers["off_bogo_5_5d"]["customFields"]["difficulty"] == 5
    assert offers["off_discount_10_10d"]["name"] == "Discount — 10 Day Low"
    assert offers["off_info_4d"]["name"] == "Informational — 4 Day"
    assert offers["off_bogo_10_7d"]["metadata"]["portfolioId"] == "ae264e3637204a6fb9bb56bc8210ddfd"
    assert len({o["name"] for o in offers.values()}) == 10


def test_channels_and_creatives(documents: dict[str, list[dict[str, Any]]]) -> None:
    channels = by_id(documents["channels"])
    assert {k: (c["channelType"], c["impressionMode"]) for k, c in channels.items()} == {
        "ch_web": ("web", "implicit"),
        "ch_email": ("email", "explicit"),
        "ch_mobile": ("push", "implicit"),
        "ch_social": ("social", "explicit"),
    }
    assert all(c["status"] == "active" for c in channels.values())
    template = {"ch_web": "web_banner", "ch_email": "email_html", "ch_mobile": "push_notification",
                "ch_social": "social_post"}  # fmt: skip
    creatives = documents["creatives"]
    assert len({c["name"] for c in creatives}) == len(creatives)
    for c in creatives:
        assert c["status"] == "active"
        assert c["templateType"] == template[c["channelId"]]
        placeholders = {
            part.split("}}")[0] for text in c["content"].values() for part in text.split("{{")[1:]
        }
        assert placeholders, c["id"]
        assert placeholders == {p["variable"] for p in c["personalization"]}, c["id"]
    ab = [c for c in creatives if c.get("abTestVariant")]
    assert sorted(c["abTestVariant"] for c in ab) == ["control"] * 2 + ["variant_a"] * 2
    for offer_id in {c["offerId"] for c in ab}:
        arms = [c for c in ab if c["offerId"] == offer_id]
        assert {c["channelId"] for c in arms} == {"ch_email"}
        assert sum(c["weight"] for c in arms) == 100


def test_rules_and_policies(documents: dict[str, list[dict[str, Any]]]) -> None:
    rules = by_id(documents["qualification_rules"])
    assert rules["qr_min_age"]["config"] == {
        "attribute": "customer.age",
        "operator": "gte",
        "value": 18,
    }
    assert rules["qr_min_income"]["config"]["value"] == 30000
    hard = rules["qr_hard_bogo_income"]
    assert (hard["scope"], hard["scopeId"], hard["config"]["value"]) == (
        "offer", "off_bogo_10_5d", 70000,
    )  # fmt: skip
    assert all(
        r["status"] == "active" and r["ruleType"] == "attribute_condition" for r in rules.values()
    )
    policies = by_id(documents["contact_policies"])
    assert policies["cp_daily_cap"]["ruleType"] == "frequency_cap"
    assert policies["cp_daily_cap"]["config"] == {"maxPerDay": 3}
    assert policies["cp_offer_cooldown"]["ruleType"] == "cooldown"
    assert policies["cp_offer_cooldown"]["config"]["cooldownHours"] == 24


def test_flow_has_the_pipeline_and_a_published_version(
    documents: dict[str, list[dict[str, Any]]],
) -> None:
    [flow] = documents["decision_flows"]
    assert (flow["id"], flow["key"], flow["status"], flow["isDefault"]) == (
        "flow_starbucks", "starbucks-decision-pipeline", "active", True,
    )  # fmt: skip
    config = flow["draftConfig"]
    assert config["version"] == 2
    assert [n["type"] for n in config["nodes"]] == [
        "inventory", "match_creatives", "enrich", "qualify", "contact_policy",
        "score", "rank", "compute", "response",
    ]  # fmt: skip
    nodes = {n["type"]: n["config"] for n in config["nodes"]}
    assert nodes["inventory"] == {"scope": "all", "includeStatuses": ["active"]}
    assert nodes["match_creatives"] == {"placementMatchMode": "any", "requireCreative": True}
    assert nodes["score"]["method"] == "priority_weighted"
    assert nodes["rank"]["maxCandidates"] == 5
    [published] = flow["publishedVersions"]
    assert published["version"] == 1
    assert published["config"] == config
    assert published["publishedAt"] == "2026-01-01T00:00:00Z"
    assert published["notes"] == "Initial release"


def copy_pack(tmp_path: Path) -> Path:
    pack = tmp_path / "pack"
    shutil.copytree(PACK_DIR, pack)
    return pack


def edit(path: Path, change: Any) -> None:
    docs = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(docs)
    path.write_text(yaml.safe_dump(docs, allow_unicode=True), encoding="utf-8")


def test_invalid_document_names_file_and_field(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    edit(pack / "offers.yaml", lambda docs: docs[0].update(priority=150))
    with pytest.raises(ValidationError, match=r"offers\.yaml\[off_bogo_5_5d\]\.priority"):
        load_pack_documents(pack)


def test_dangling_reference_is_rejected(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    edit(pack / "creatives.yaml", lambda docs: docs[0].update(channelId="ch_fax"))
    with pytest.raises(ValidationError, match="ch_fax"):
        load_pack_documents(pack)
    pack = copy_pack(tmp_path / "2")
    edit(pack / "qualification_rules.yaml", lambda docs: docs[2].update(scopeId="off_gone"))
    with pytest.raises(ValidationError, match="off_gone"):
        load_pack_documents(pack)


def test_duplicate_id_and_unknown_file_are_rejected(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    edit(pack / "channels.yaml", lambda docs: docs.append(dict(docs[0], name="Web 2")))
    with pytest.raises(ValidationError, match="duplicate id ch_web"):
        load_pack_documents(pack)
    pack = copy_pack(tmp_path / "2")
    (pack / "offer.yaml").write_text("[]\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="offer.yaml"):
        load_pack_documents(pack)


# -- customers -----------------------------------------------------------------------------------


def test_customers_are_deterministic(tmp_path: Path) -> None:
    first, second = generate_customers(3000, seed=5), generate_customers(3000, seed=5)
    assert_frame_equal(first, second)
    first.write_parquet(tmp_path / "a.parquet")
    second.write_parquet(tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert not generate_customers(3000, seed=6).equals(first)


def test_customer_columns_and_ids(customers: pl.DataFrame) -> None:
    assert customers.schema == pl.Schema(
        {
            "customer_id": pl.String,
            "first_name": pl.String,
            "age": pl.Int64,
            "gender": pl.String,
            "income": pl.Float64,
            "member_since": pl.Date,
            "tier": pl.String,
            "segments": pl.List(pl.String),
        }
    )
    ids = customers["customer_id"]
    assert ids.head(3).to_list() == ["SBX-000001", "SBX-000002", "SBX-000003"]
    assert ids.str.contains(r"^SBX-\d{6,}$").all()
    assert ids.is_unique().all()
    assert generate_customers(1_000_001)["customer_id"][-1] == "SBX-1000001"


def test_customer_distributions(customers: pl.DataFrame) -> None:
    unknown = customers.filter(pl.col("age").is_null())
    assert 0.11 <= unknown.height / customers.height <= 0.15
    # unknown age, gender and income go together, as with the public data's age 118
    assert unknown["income"].null_count() == unknown.height
    assert unknown["gender"].null_count() == unknown.height
    known = customers.filter(pl.col("age").is_not_null())
    assert known["income"].null_count() == 0 and known["gender"].null_count() == 0
    assert known["age"].min() >= 13 and known["age"].max() <= 101
    assert 0.003 <= (known["age"] < 18).mean() <= 0.02
    assert known["income"].min() >= 30_000 and known["income"].max() <= 120_000
    assert set(known["gender"]) == {"M", "F", "O"}
    since = customers["member_since"]
    assert (
        since.min() >= datetime(2013, 1, 1).date() and since.max() <= datetime(2018, 12, 31).date()
    )
    assert set(customers["tier"]) == {"bronze", "silver", "gold"}
    segments = set(customers["segments"].explode().drop_nulls())
    assert segments == {"high_income", "new_member", "loyal", "lapsed"}
    high = customers.filter(pl.col("segments").list.contains("high_income"))
    assert (high["income"] > 70_000).all()


def test_customer_arguments() -> None:
    assert generate_customers(0).height == 0
    with pytest.raises(ValidationError, match="n must be"):
        generate_customers(-1)


# -- history -----------------------------------------------------------------------------------


def test_history_schema_and_ids(history: pl.DataFrame) -> None:
    assert dict(history.schema) == HISTORY_FRAME_SCHEMA
    assert {k: history.schema[k] for k in HISTORY_SCHEMA} == HISTORY_SCHEMA
    assert history["id"].is_unique().all()
    assert history["id"].str.starts_with("hist-7-").all()
    assert history["ts"].is_sorted() and history["id"].is_sorted()
    for column in ("recommendation_id", "rank", "context"):
        assert history[column].null_count() == history.height


def test_history_is_deterministic(
    customers: pl.DataFrame, documents: dict[str, list[dict[str, Any]]], history: pl.DataFrame
) -> None:
    again = generate_history(customers, documents, days=90, as_of=AS_OF, seed=7)
    assert_frame_equal(again, history)
    other = generate_history(customers, documents, days=90, as_of=AS_OF, seed=8)
    assert not other.equals(history)


def test_history_volume_and_window(customers: pl.DataFrame, history: pl.DataFrame) -> None:
    assert 9.0 <= history.height / customers.height <= 11.0
    assert history["ts"].min() >= AS_OF - timedelta(days=90)
    assert history["ts"].max() < AS_OF
    naive = generate_history(
        customers.head(200), load_pack_documents(), days=3, as_of=AS_OF.replace(tzinfo=None),
        per_customer=2.0,
    )  # fmt: skip
    assert naive["ts"].min() >= AS_OF - timedelta(days=3) and naive["ts"].max() < AS_OF


def test_history_references_the_pack(
    documents: dict[str, list[dict[str, Any]]], history: pl.DataFrame
) -> None:
    creatives = pl.DataFrame(
        [
            {
                "creative_id": c["id"],
                "offer_id": c["offerId"],
                "channel_id": c["channelId"],
                "placement_id": c.get("placementId"),
            }
            for c in documents["creatives"]
        ]
    )
    joined = history.join(creatives, on="creative_id", how="left", suffix="_pack")
    for column in ("offer_id", "channel_id"):
        assert (joined[column] == joined[f"{column}_pack"]).all()
    assert joined["placement_id"].equals(joined["placement_id_pack"], null_equal=True)
    category = {o["id"]: o["categoryId"] for o in documents["offers"]}
    assert (history["category_id"] == history["offer_id"].replace_strict(category)).all()
    assert set(history["creative_id"]) == set(creatives["creative_id"])


def test_history_outcomes_follow_system_types(history: pl.DataFrame) -> None:
    system = {key: cls for key, cls, _ in SYSTEM_OUTCOME_TYPES}
    kinds = history.select("outcome", "classification", "direction").unique()
    assert set(kinds["outcome"]) == {"impression", "click", "conversion", "dismiss"}
    for outcome, classification, direction in kinds.iter_rows():
        assert classification == system[outcome]
        assert direction == ("outbound" if outcome == "impression" else "inbound")
    values = history.filter(pl.col("value").is_not_null())
    assert set(values["outcome"]) == {"conversion"}
    assert values.height == (history["outcome"] == "conversion").sum()


def test_history_rates_are_plausible(
    documents: dict[str, list[dict[str, Any]]], history: pl.DataFrame
) -> None:
    counts = history.group_by("offer_id").agg(
        (pl.col("outcome") == o).sum().alias(o) for o in ("impression", "click", "conversion")
    )
    offer_type = {o["id"]: o["customFields"]["offer_type"] for o in documents["offers"]}
    assert counts.height == 10
    for row in counts.iter_rows(named=True):
        ctr = row["click"] / row["impression"]
        assert 0.02 <= ctr <= 0.30, row
        assert row["conversion"] <= row["click"], row
        if offer_type[row["offer_id"]] == "informational":
            assert row["conversion"] == 0
        else:
            assert row["conversion"] > 0
    # every conversion follows a click on the same creative by the same customer
    per_pair = history.group_by("customer_id", "creative_id").agg(
        (pl.col("outcome") == "click").sum().alias("clicks"),
        (pl.col("outcome") == "conversion").sum().alias("conversions"),
    )
    assert (per_pair["conversions"] <= per_pair["clicks"]).all()


def test_history_depends_on_segment_and_income(
    customers: pl.DataFrame, history: pl.DataFrame
) -> None:
    bogo = history.filter(pl.col("category_id") == "cat_acquisition").join(
        customers, on="customer_id"
    )

    def conversion_rate(frame: pl.DataFrame) -> float:
        return (frame["outcome"] == "conversion").sum() / (frame["outcome"] == "impression").sum()

    assert conversion_rate(bogo.filter(pl.col("income") >= 70_000)) > 1.2 * conversion_rate(
        bogo.filter(pl.col("income") < 70_000)
    )
    joined = history.join(customers, on="customer_id")
    lapsed = joined.filter(pl.col("segments").list.contains("lapsed"))
    assert lapsed.height / joined.height < (
        customers["segments"].list.contains("lapsed").mean()
    )  # lapsed members are contacted less than their share


def test_history_respects_the_pack_gates(customers: pl.DataFrame, history: pl.DataFrame) -> None:
    joined = history.join(customers, on="customer_id")
    assert joined.filter(pl.col("age") < 18).height == 0
    hard = joined.filter(pl.col("offer_id") == "off_bogo_10_5d")
    assert hard.height > 0
    assert hard.filter(pl.col("income") < 70_000).height == 0


def test_history_edge_cases(
    customers: pl.DataFrame, documents: dict[str, list[dict[str, Any]]]
) -> None:
    empty = generate_history(customers.head(0), documents, as_of=AS_OF)
    assert empty.height == 0 and dict(empty.schema) == HISTORY_FRAME_SCHEMA
    none = generate_history(customers, documents, as_of=AS_OF, per_customer=0)
    assert none.height == 0
    no_catalog = generate_history(customers, {}, as_of=AS_OF)
    assert no_catalog.height == 0 and dict(no_catalog.schema) == HISTORY_FRAME_SCHEMA
    with pytest.raises(ValidationError, match="days"):
        generate_history(customers, documents, as_of=AS_OF, days=0)
    with pytest.raises(ValidationError, match="per_customer"):
        generate_history(customers, documents, as_of=AS_OF, per_customer=-1)
    with pytest.raises(ValidationError, match="customer_id"):
        generate_history(customers.drop("customer_id"), documents, as_of=AS_OF)
