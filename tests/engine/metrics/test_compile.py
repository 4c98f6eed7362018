from __future__ import annotations

from typing import Any

import pytest

from engine.catalog.documents import BehavioralMetric
from engine.errors import ValidationError
from engine.metrics import compile_metric, compile_metrics


def definition(**extra: Any) -> dict[str, Any]:
    return {"name": "m", "aggregateFunction": "count", "sourceField": "click", **extra}


def leaf(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": op, "value": value}


def error_field(exc: pytest.ExceptionInfo[ValidationError]) -> str | None:
    return exc.value.field


def test_compiles_a_document_as_the_store_returns_it() -> None:
    stored = {**definition(windowDays=7, groupByDimensions=["offerId", "channelId"]),
              "id": "met_1", "version": 3, "createdAt": "2026-01-01T00:00:00.000Z",
              "updatedAt": "2026-01-01T00:00:00.000Z", "deletedAt": None, "status": "active"}
    m = compile_metric(stored)
    assert (m.name, m.function, m.window_days) == ("m", "count", 7)
    assert m.group_columns == ("offer_id", "channel_id")
    assert m.columns == {"outcome", "offer_id", "channel_id"}


def test_accepts_models_and_compiled_metrics() -> None:
    model = BehavioralMetric.model_validate(definition(aggregateFunction="sum"))
    compiled = compile_metric(model)
    assert compile_metrics([compiled]) == [compiled]
    assert "value" in compiled.columns


def test_unknown_filter_field_names_its_path() -> None:
    tree = {"and": [leaf("offerId", "eq", "o"), {"or": [leaf("customer.age", "gt", 3)]}]}
    with pytest.raises(ValidationError) as exc:
        compile_metric(definition(filterConditions=tree))
    assert error_field(exc) == "filterConditions.and.1.or.0.field"
    assert "customer.age" in exc.value.message and "Hint" in exc.value.message


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        (leaf("offerId", "in", "o1"), "filterConditions.value"),  # in needs a list
        (leaf("value", "gt", "ten"), "filterConditions.value"),  # value is numeric
        (leaf("value", "in", [1, "x"]), "filterConditions.value.1"),
        (leaf("value", "contains", "1"), "filterConditions.field"),
        (leaf("offerId", "contains", 5), "filterConditions.value"),
        (leaf("offerId", "gt", None), "filterConditions.value"),
        (leaf("offerId", "eq", {"$ne": 1}), "filterConditions.value"),
        (leaf("value", "eq", True), "filterConditions.value"),
    ],
)
def test_bad_filter_values_name_the_field(condition: dict, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        compile_metric(definition(filterConditions=condition))
    assert error_field(exc) == field


def test_definition_errors_come_from_the_catalog_model() -> None:
    cases = [
        (definition(aggregateFunction="median"), "aggregateFunction"),
        (definition(windowDays=0), "windowDays"),
        (definition(windowDays=366), "windowDays"),
        (definition(aggregateFunction="ratio"), "status"),  # ratio needs denominatorField
        (definition(aggregateFunction="avg", computeMode="realtime"), "status"),
        (definition(groupByDimensions=["offerId", "channelId", "creativeId"]),
         "groupByDimensions"),
        (definition(filterConditions={"field": "offerId"}), "filterConditions.operator"),
        (definition(filterConditions={"and": [{}]}), "filterConditions.and.0.field"),
    ]
    for doc, field in cases:
        with pytest.raises(ValidationError) as exc:
            compile_metric(doc)
        assert error_field(exc) == field, doc


def test_repeated_dimension_and_duplicate_names_are_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        compile_metric(definition(groupByDimensions=["offerId", "offerId"]))
    assert error_field(exc) == "groupByDimensions"
    with pytest.raises(ValidationError) as exc:
        compile_metrics([definition(), definition()])
    assert error_field(exc) == "name"


def test_a_deep_filter_tree_is_refused() -> None:
    tree: dict[str, Any] = leaf("offerId", "eq", "o")
    for _ in range(12):
        tree = {"and": [tree]}
    with pytest.raises(ValidationError, match="deeper"):
        compile_metric(definition(filterConditions=tree))


def test_non_object_definition() -> None:
    with pytest.raises(ValidationError) as exc:
        compile_metric(["not", "a", "dict"])  # type: ignore[arg-type]
    assert error_field(exc) == "body"
