from __future__ import annotations

import copy

import pytest

from engine.catalog.documents import DecisionFlow
from engine.errors import NotFoundError, ValidationError
from engine.flow import (
    base_nba_config,
    base_nba_flow,
    runnable_config,
    validate_flow_config,
)
from tests.factories import flow_config, flow_doc, node


def test_base_flow_is_valid_and_matches_spec():
    cfg = validate_flow_config(base_nba_config())
    assert [n["type"] for n in cfg["nodes"]] == [
        "inventory",
        "match_creatives",
        "enrich",
        "qualify",
        "contact_policy",
        "extension_point",
        "score",
        "extension_point",
        "rank",
        "extension_point",
        "response",
    ]
    nodes = {n["id"]: n["config"] for n in cfg["nodes"]}
    assert nodes["match_creatives"] == {"requireCreative": False, "placementMatchMode": "exact"}
    assert nodes["rank"]["method"] == "diversity"
    assert nodes["rank"]["maxCandidates"] == 5
    assert nodes["score"]["method"] == "priority_weighted"


def test_base_flow_document_is_a_valid_runnable_flow():
    doc = DecisionFlow.model_validate(base_nba_flow()).dump()
    version, config = runnable_config(doc)
    assert version == 1
    assert config == validate_flow_config(base_nba_config())


def test_defaults_are_filled_in():
    cfg = validate_flow_config(flow_config(node("match_creatives"), node("score")))
    match = cfg["nodes"][1]["config"]
    assert match == {"requireCreative": True, "placementMatchMode": "any"}
    assert cfg["nodes"][0]["config"]["includeStatuses"] == ["active"]
    assert cfg["nodes"][2]["config"]["formula"]["propensityWeight"] == 0.4


def _error(config: dict) -> ValidationError:
    with pytest.raises(ValidationError) as exc:
        validate_flow_config(config)
    return exc.value


def test_two_inventory_nodes_are_rejected():
    err = _error(flow_config(node("inventory"), node("inv2", "inventory")))
    assert "inv2" in err.message and err.details[0]["field"] == "nodes[1].type"


def test_inventory_must_come_first():
    err = _error({"version": 2, "nodes": [node("score"), node("inventory")]})
    assert "score" in err.message and "first" in err.message


def test_filter_in_phase_two_is_rejected():
    cfg = flow_config(
        node("score"),
        node(
            "f1", "filter", conditions=[{"field": "offer.priority", "operator": "gt", "value": 1}]
        ),
    )
    err = _error(cfg)
    assert "f1" in err.message and "phase 1" in err.message


def test_phases_must_not_go_backwards():
    err = _error(flow_config(node("compute"), node("qualify")))
    assert "qualify" in err.message and "phase-3" in err.message


def test_response_must_be_last_and_single():
    err = _error(flow_config(node("response"), node("compute")))
    assert "response" in err.message
    err = _error(flow_config(node("r1", "response"), node("r2", "response")))
    assert err.details[0]["field"].startswith("nodes[")


def test_cross_phase_nodes_go_anywhere():
    validate_flow_config(
        flow_config(
            node("score"),
            node("x", "extension_point", hook="pre_score"),
            node("call_flow"),
            node("qualify2", "rank"),
        )
    )


def test_unknown_node_type_is_rejected():
    err = _error(flow_config(node("zzz", "teleport")))
    assert "teleport" in err.message and err.details[0]["field"] == "nodes[1].type"


def test_bad_node_config_names_node_and_field():
    err = _error(flow_config(node("mc", "match_creatives", placementMatchMode="sometimes")))
    assert "mc" in err.message
    assert err.details[0]["field"] == "nodes[1].config.placementMatchMode"
    err = _error(flow_config(node("s", "score", method="magic")))
    assert err.details[0]["field"] == "nodes[1].config.method"
    err = _error(flow_config(node("s", "score", bogus=1)))
    assert err.details[0]["field"] == "nodes[1].config.bogus"


def test_prie_weights_must_sum_to_one():
    err = _error(
        flow_config(
            node(
                "s",
                "score",
                method="formula",
                formula={
                    "propensityWeight": 0.5,
                    "relevanceWeight": 0.5,
                    "impactWeight": 0.5,
                    "emphasisWeight": 0.0,
                },
            )
        )
    )
    assert "sum to 1" in err.message


def test_filter_conditions_are_checked():
    err = _error(
        flow_config(
            node(
                "f",
                "filter",
                conditions=[{"field": "offer.priority", "operator": "between", "value": 1}],
            )
        )
    )
    assert "operator" in err.details[0]["field"]
    err = _error(
        flow_config(
            node(
                "f", "filter", conditions=[{"field": "offer.tags", "operator": "in", "value": "x"}]
            )
        )
    )
    assert "list" in err.message
    err = _error(
        flow_config(
            node(
                "f",
                "filter",
                conditions=[{"field": "offer.name", "operator": "regex", "value": "("}],
            )
        )
    )
    assert "regex" in err.message
    err = _error(
        flow_config(
            node("f", "filter", conditions=[{"field": "bogus.x", "operator": "eq", "value": 1}])
        )
    )
    assert "field" in err.details[0]["field"]


def test_structure_errors():
    assert _error({"version": 1, "nodes": [node("inventory")]}).details[0]["field"] == "version"
    assert _error({"version": 2, "nodes": []}).details[0]["field"] == "nodes"
    assert _error({"version": 2, "nodes": [{"type": "inventory"}]}).details[0]["field"] == (
        "nodes[0].id"
    )
    err = _error(flow_config(node("a", "score"), node("a", "rank")))
    assert "duplicate" in err.message


def test_inventory_scope_needs_ids():
    err = _error({"version": 2, "nodes": [node("inventory", scope="category")]})
    assert "categoryIds" in err.message


def test_runnable_config_picks_latest_published_version():
    cfg1 = flow_config(node("score"))
    cfg2 = flow_config(node("rank"))
    doc = flow_doc("f", cfg1)
    doc["publishedVersions"] = [
        {"version": 2, "config": cfg2, "publishedAt": "2026-02-01T00:00:00Z"},
        {"version": 1, "config": cfg1, "publishedAt": "2026-01-01T00:00:00Z"},
    ]
    doc["draftConfig"] = flow_config(node("compute"))
    version, config = runnable_config(doc)
    assert version == 2
    assert config["nodes"][1]["type"] == "rank"


def test_runnable_config_refuses_drafts_and_unpublished():
    doc = flow_doc("f", flow_config())
    draft = copy.deepcopy(doc) | {"status": "draft"}
    with pytest.raises(NotFoundError, match="status"):
        runnable_config(draft)
    with pytest.raises(NotFoundError, match="no published version"):
        runnable_config(doc | {"publishedVersions": []})
