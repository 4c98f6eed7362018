"""Flow resolution: explicit key or id, then flow routes by tier and priority, then the
default flow, then the most recently updated runnable flow."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from engine.catalog import Catalog, build_catalog
from engine.catalog.documents import ENTITY_MODELS
from engine.errors import NotFoundError
from engine.flow.routing import resolve_flow, route_flow
from tests.factories import flow_config, flow_doc, standard_nodes

WEB = frozenset({"ch_web"})
HERO = frozenset({"pl_hero"})


def flow(flow_id: str, *, status: str = "active", **extra: Any) -> dict[str, Any]:
    doc = {**flow_doc(flow_id.removeprefix("fl_"), flow_config(*standard_nodes())), **extra}
    if status != "active":
        doc["status"] = status
    return {**doc, "id": flow_id}


def route(route_id: str, flow_id: str, *, channel: str | None = None,
          placement: str | None = None, priority: int = 0) -> dict[str, Any]:
    return {"id": route_id, "decisionFlowId": flow_id, "channelId": channel,
            "placementId": placement, "priority": priority}


def catalog(flows: Sequence[Mapping[str, Any]], routes: Sequence[Mapping[str, Any]] = ()
            ) -> Catalog:
    def valid(entity: str, docs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Validated like the store does; ``updatedAt`` is the store's, set after."""
        model = ENTITY_MODELS[entity]
        return [
            {**model.model_validate({k: v for k, v in d.items() if k != "updatedAt"}).dump(),
             **({"updatedAt": d["updatedAt"]} if "updatedAt" in d else {})}
            for d in docs
        ]

    return build_catalog("t_test", 1, {"decision_flows": valid("decision_flows", flows),
                                       "flow_routes": valid("flow_routes", routes)})


def resolved_id(cat: Catalog, **request: Any) -> str | None:
    doc = resolve_flow(cat, **request)
    return None if doc is None else doc["id"]


# -- explicit key or id ------------------------------------------------------------------
def test_an_explicit_key_wins_over_the_id_and_the_routes() -> None:
    cat = catalog([flow("fl_a"), flow("fl_b")], [route("fr_1", "fl_b")])
    assert resolved_id(cat, flow_key="a", flow_id="fl_b") == "fl_a"
    assert resolved_id(cat, flow_id="fl_a") == "fl_a"


@pytest.mark.parametrize("field", ["decisionFlowKey", "blueprintKey"])
def test_an_unknown_key_is_a_404_naming_the_field_sent(field: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        resolve_flow(catalog([flow("fl_a")]), flow_key="nope", key_field=field)
    assert caught.value.message == "decision flow 'nope' not found"
    assert caught.value.field == field


def test_an_unknown_id_is_a_404() -> None:
    with pytest.raises(NotFoundError) as caught:
        resolve_flow(catalog([flow("fl_a")]), flow_id="fl_x")
    assert caught.value.message == "decision flow id 'fl_x' not found"
    assert caught.value.field == "decisionFlowId"


def test_an_explicit_flow_that_cannot_run_is_a_404() -> None:
    cat = catalog([flow("fl_a", status="draft")])
    with pytest.raises(NotFoundError, match="is not runnable"):
        resolve_flow(cat, flow_key="a")
    with pytest.raises(NotFoundError, match="is not runnable"):
        resolve_flow(cat, flow_id="fl_a")


# -- flow routes ---------------------------------------------------------------------------
def test_routes_by_tier_channel_and_placement_then_channel_then_catch_all() -> None:
    flows = [flow("fl_both"), flow("fl_channel"), flow("fl_any")]
    routes = [
        route("fr_any", "fl_any", priority=90),
        route("fr_channel", "fl_channel", channel="ch_web", priority=50),
        route("fr_both", "fl_both", channel="ch_web", placement="pl_hero", priority=10),
    ]
    cat = catalog(flows, routes)
    assert resolved_id(cat, channels=WEB, placements=HERO) == "fl_both"
    assert resolved_id(cat, channels=WEB) == "fl_channel"
    assert resolved_id(cat, channels=frozenset({"ch_email"}), placements=HERO) == "fl_any"
    assert resolved_id(cat) == "fl_any"


def test_a_placement_route_without_a_channel_matches_any_channel() -> None:
    cat = catalog([flow("fl_hero"), flow("fl_web")], [
        route("fr_web", "fl_web", channel="ch_web", priority=90),
        route("fr_hero", "fl_hero", placement="pl_hero"),
    ])
    assert resolved_id(cat, channels=WEB, placements=HERO) == "fl_hero"
    assert resolved_id(cat, channels=WEB) == "fl_web"


def test_higher_priority_wins_within_a_tier() -> None:
    cat = catalog([flow("fl_low"), flow("fl_high")], [
        route("fr_a", "fl_low", channel="ch_web", priority=1),
        route("fr_b", "fl_high", channel="ch_web", priority=7),
    ])
    assert resolved_id(cat, channels=WEB) == "fl_high"


def test_routes_to_flows_that_cannot_run_are_skipped() -> None:
    cat = catalog([flow("fl_draft", status="draft"), flow("fl_ok")], [
        route("fr_a", "fl_draft", channel="ch_web", priority=9),
        route("fr_b", "fl_ok", channel="ch_web", priority=1),
    ])
    assert resolved_id(cat, channels=WEB) == "fl_ok"
    assert route_flow(catalog([flow("fl_draft", status="draft")],
                              [route("fr_a", "fl_draft")]), WEB, HERO) is None


def test_no_routes_route_nowhere() -> None:
    assert route_flow(catalog([flow("fl_a")]), WEB, HERO) is None


# -- fallbacks -----------------------------------------------------------------------------
def test_without_a_matching_route_the_default_flow_runs() -> None:
    cat = catalog([flow("fl_a", updatedAt="2026-03-01T00:00:00Z"),
                   flow("fl_default", isDefault=True, updatedAt="2026-01-01T00:00:00Z")],
                  [route("fr_email", "fl_a", channel="ch_email")])
    assert resolved_id(cat, channels=WEB) == "fl_default"


def test_without_a_default_the_latest_updated_runnable_flow_runs() -> None:
    cat = catalog([flow("fl_old", updatedAt="2026-01-01T00:00:00Z"),
                   flow("fl_new", updatedAt="2026-02-01T00:00:00Z"),
                   flow("fl_newest_draft", status="draft", updatedAt="2026-03-01T00:00:00Z")])
    assert resolved_id(cat) == "fl_new"


def test_flows_that_cannot_run_are_a_404_and_no_flows_are_none() -> None:
    with pytest.raises(NotFoundError) as caught:
        resolve_flow(catalog([flow("fl_a", status="draft")]))
    assert caught.value.message == (
        "no runnable decision flow: publish a flow and set it active, or pass decisionFlowKey"
    )
    assert caught.value.field == "decisionFlowKey"
    assert resolve_flow(catalog([])) is None
