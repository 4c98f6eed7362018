from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal, assert_series_equal

from engine.errors import ValidationError
from engine.experiments import (
    HOLDOUT,
    assign,
    assign_frame,
    bucket,
    fnv1a32,
    holdout,
    in_holdout,
    parse_experiment,
)


def experiment(holdout_percent: float = 0, weights: tuple[float, ...] = (50, 50),
               key: str = "exp-1") -> dict:
    return {
        "key": key,
        "name": "Test",
        "holdoutPercent": holdout_percent,
        "variants": [
            {"key": f"v{i}", "trafficPercent": w, "isControl": i == 0}
            for i, w in enumerate(weights)
        ],
    }


# Published FNV-1a 32-bit test vectors (the FNV reference implementation's test suite).
FNV_VECTORS = [
    ("", 0x811C9DC5), ("a", 0xE40C292C), ("b", 0xE70C2DE5), ("foo", 0xA9F37ED7),
    ("foob", 0x3F5076EF), ("fooba", 0x39AAA18A), ("foobar", 0xBF9CF968), ("\0", 0x050C5D1F),
    ("64.81.78.84", 0xA55B89ED), ("feedfacedaffdeed", 0xE83641E1),
    ("http://www.fourmilab.ch/gravitation/orbits/", 0x29B50B38),
]


@pytest.mark.parametrize(("data", "expected"), FNV_VECTORS)
def test_fnv1a32_known_vectors(data: str, expected: int) -> None:
    assert fnv1a32(data) == expected
    assert fnv1a32(data.encode()) == expected


def test_vectorized_hash_matches_known_vectors() -> None:
    from engine.experiments._hash import fnv1a32_series

    got = fnv1a32_series(pl.Series([d for d, _ in FNV_VECTORS])).tolist()
    assert got == [h for _, h in FNV_VECTORS]


def test_bucket_hashes_key_colon_customer() -> None:
    assert bucket("exp", "c1") == fnv1a32("exp:c1") % 10_000
    assert 0 <= bucket("exp", "c1") < 10_000


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(st.text(max_size=40), max_size=50), key=st.from_regex(
    r"[A-Za-z0-9_.-]{1,20}", fullmatch=True))
def test_scalar_and_vectorized_agree(ids: list[str], key: str) -> None:
    exp = experiment(holdout_percent=10, weights=(20, 30, 50), key=key)
    frame = assign_frame(pl.Series("customer_id", ids, dtype=pl.String), exp)
    expected = pl.DataFrame(
        {
            "customer_id": ids,
            "bucket": [bucket(key, c) for c in ids],
            "variant": [assign(exp, c) for c in ids],
        },
        schema={"customer_id": pl.String, "bucket": pl.Int32, "variant": pl.String},
    )
    assert_frame_equal(frame, expected)


@settings(max_examples=100, deadline=None)
@given(ids=st.lists(st.text(max_size=30), max_size=40),
       pct=st.floats(min_value=0, max_value=100, allow_nan=False))
def test_tenant_holdout_scalar_and_vectorized_agree(ids: list[str], pct: float) -> None:
    got = holdout(pl.Series(ids, dtype=pl.String), pct)
    assert got.to_list() == [in_holdout(c, pct) for c in ids]


def test_assign_frame_accepts_frames_sequences_and_sliced_series() -> None:
    exp = experiment()
    ids = [f"c{i}" for i in range(20)]
    base = assign_frame(ids, exp)
    assert_frame_equal(assign_frame(pl.DataFrame({"customer_id": ids, "x": 1}), exp), base)
    # a slice of a Series has a non-zero Arrow offset
    assert_frame_equal(assign_frame(pl.Series("customer_id", ["pad", *ids])[1:], exp), base)
    with pytest.raises(ValidationError) as err:
        assign_frame(pl.DataFrame({"id": ids}), exp)
    assert err.value.field == "customer_id"


def test_null_ids_get_null_arms() -> None:
    frame = assign_frame(pl.Series(["a", None, "b"]), experiment())
    assert frame["bucket"].is_null().to_list() == [False, True, False]
    assert frame["variant"].is_null().to_list() == [False, True, False]


def test_same_customer_always_same_variant() -> None:
    exp = experiment(holdout_percent=5, weights=(25, 25, 50))
    ids = pl.Series([f"cust-{i}" for i in range(5_000)])
    first = assign_frame(ids, exp)
    again = assign_frame(ids.reverse(), exp).reverse()
    assert_frame_equal(first, again)
    assert [assign(exp, c) for c in ids.head(100)] == first["variant"].head(100).to_list()


def test_different_experiments_assign_independently() -> None:
    ids = pl.Series([f"cust-{i}" for i in range(20_000)])
    a = assign_frame(ids, experiment(key="exp-a"))["variant"]
    b = assign_frame(ids, experiment(key="exp-b"))["variant"]
    agree = (a == b).mean()
    assert 0.48 < agree < 0.52  # independent 50/50 splits agree half the time


@pytest.mark.parametrize(
    ("holdout_percent", "weights"),
    [(0, (50, 50)), (0, (80, 20)), (10, (50, 50)), (20, (60, 30, 10)), (5, (25, 25, 25, 25))],
)
def test_split_matches_configured_weights(holdout_percent: float,
                                          weights: tuple[float, ...]) -> None:
    exp = experiment(holdout_percent, weights)
    ids = pl.Series([f"SBX-{i:06d}" for i in range(100_000)])
    shares = assign_frame(ids, exp)["variant"].value_counts(normalize=True)
    got = dict(zip(shares["variant"], shares["proportion"], strict=True))
    expected = {HOLDOUT: holdout_percent / 100} if holdout_percent else {}
    expected |= {f"v{i}": (1 - holdout_percent / 100) * w / 100 for i, w in enumerate(weights)}
    assert set(got) == set(expected)
    for arm, share in expected.items():
        assert abs(got[arm] - share) < 0.01, (arm, got[arm], share)


def test_bucket_mapping_boundaries() -> None:
    spec = parse_experiment(experiment(10, (50, 30, 20)))
    assert spec.labels == (HOLDOUT, "v0", "v1", "v2")
    # 1,000 holdout buckets, then 9,000 split 4,500 / 2,700 / 1,800
    assert spec.bucket_bounds() == (1_000, 5_500, 8_200, 10_000)
    assert spec.bucket_shares() == {HOLDOUT: 0.1, "v0": 0.45, "v1": 0.27, "v2": 0.18}
    # thirds: float cumulative sums still land on whole buckets and end at 10,000
    thirds = parse_experiment(experiment(0, (33.33, 33.33, 33.34)))
    assert thirds.bucket_bounds() == (0, 3_333, 6_666, 10_000)


def test_zero_traffic_variant_gets_no_customers() -> None:
    exp = experiment(0, (100, 0))
    frame = assign_frame(pl.Series([f"c{i}" for i in range(2_000)]), exp)
    assert frame["variant"].unique().to_list() == ["v0"]


def test_reserved_and_invalid_experiments_are_validation_errors() -> None:
    bad = experiment()
    bad["variants"][1]["key"] = HOLDOUT
    with pytest.raises(ValidationError):
        parse_experiment(bad)
    with pytest.raises(ValidationError) as err:
        parse_experiment(experiment(weights=(50, 40)))
    assert err.value.field == "variants"


def test_store_documents_parse_with_meta_fields() -> None:
    doc = experiment() | {"id": "exp_1", "version": 3, "createdAt": "2026-01-01T00:00:00Z",
                          "updatedAt": None, "deletedAt": None, "status": "active"}
    assert parse_experiment(doc).key == "exp-1"


def test_tenant_holdout_share_and_validation() -> None:
    ids = pl.Series([f"c{i}" for i in range(100_000)])
    assert abs(holdout(ids, 10).mean() - 0.10) < 0.01
    assert not holdout(ids, 0).any()
    assert holdout(ids, 100).all()
    # a different salt is a different roll
    assert (holdout(ids, 50) == holdout(ids, 50, salt="other")).mean() < 0.55
    with pytest.raises(ValidationError) as err:
        holdout(ids, 101)
    assert err.value.field == "holdoutPercentage"
    assert_series_equal(holdout(["a", "b"], 50), holdout(pl.Series(["a", "b"]), 50))
