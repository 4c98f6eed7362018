"""Structural validation of V2 decision-flow configs (spec §9.3) and the Base NBA flow (§9.4).

``validate_flow_config`` returns the normalized config (every node config filled with its
defaults) or raises ``ValidationError`` whose ``details`` name the node id and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pydantic

from engine.errors import NotFoundError, ValidationError
from engine.flow.configs import NODE_CONFIGS

# Phase of each node type; None = cross-phase (allowed anywhere, does not move the phase).
PHASES: dict[str, int | None] = {
    "inventory": 1,
    "filter": 1,
    "match_creatives": 1,
    "enrich": 1,
    "qualify": 1,
    "contact_policy": 1,
    "conditional": 1,
    "score": 2,
    "optimize": 2,
    "rank": 2,
    "group": 2,
    "compute": 3,
    "set_properties": 3,
    "response": 3,
    "call_flow": None,
    "extension_point": None,
}
RUNNABLE_STATUSES = ("active", "published")


def _fail(message: str, field: str) -> ValidationError:
    return ValidationError(message, field=field)


def _node_errors(node_id: str, index: int, exc: pydantic.ValidationError) -> ValidationError:
    details = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        field = f"nodes[{index}].config" + (f".{loc}" if loc else "")
        details.append({"field": field, "message": f"node {node_id!r}: {err['msg']}"})
    first = details[0]
    return ValidationError(f"{first['message']} ({first['field']})", details=details)


def validate_flow_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Check a V2 flow config and return it normalized (node configs with defaults)."""
    if not isinstance(config, Mapping):
        raise _fail("flow config must be an object", "config")
    if config.get("version") != 2:
        raise _fail("flow config version must be 2", "version")
    nodes = config.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise _fail("flow config needs a non-empty nodes list", "nodes")
    flow_config = config.get("flowConfig") or {}
    if not isinstance(flow_config, Mapping):
        raise _fail("flowConfig must be an object", "flowConfig")

    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    phase = 1
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]"
        if not isinstance(node, Mapping):
            raise _fail(f"{where} must be an object", where)
        node_id = node.get("id")
        if not isinstance(node_id, str) or not node_id.strip():
            raise _fail(f"{where} needs a non-empty string id", f"{where}.id")
        if node_id in seen:
            raise _fail(f"duplicate node id {node_id!r}", f"{where}.id")
        seen.add(node_id)
        ntype = node.get("type")
        if ntype not in NODE_CONFIGS:
            known = ", ".join(sorted(NODE_CONFIGS))
            raise _fail(
                f"node {node_id!r}: unknown node type {ntype!r}; known types: {known}",
                f"{where}.type",
            )
        if i == 0 and ntype != "inventory":
            raise _fail(
                f"node {node_id!r}: the first node must be the (single) inventory node",
                f"{where}.type",
            )
        if i > 0 and ntype == "inventory":
            raise _fail(
                f"node {node_id!r}: only one inventory node is allowed, and it comes first",
                f"{where}.type",
            )
        node_phase = PHASES[ntype]
        if node_phase is not None:
            if node_phase < phase:
                hint = " (filter is allowed only in phase 1)" if ntype == "filter" else ""
                raise _fail(
                    f"node {node_id!r}: {ntype} is a phase-{node_phase} node but follows a "
                    f"phase-{phase} node{hint}",
                    f"{where}.type",
                )
            phase = node_phase
        if ntype == "response" and i != len(nodes) - 1:
            raise _fail(f"node {node_id!r}: the response node must be the last node", where)
        raw = node.get("config") or {}
        if not isinstance(raw, Mapping):
            raise _fail(f"node {node_id!r}: config must be an object", f"{where}.config")
        try:
            model = NODE_CONFIGS[ntype].model_validate(dict(raw))
        except pydantic.ValidationError as exc:
            raise _node_errors(node_id, i, exc) from None
        out.append({"id": node_id, "type": ntype, "config": model.model_dump(exclude_none=True)})
    return {"version": 2, "nodes": out, "flowConfig": dict(flow_config)}


def runnable_config(flow_doc: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """The latest published version of a runnable flow: ``(version, normalized config)``.

    A flow runs only when its status is active (or published) and it has a published
    version; its draft config never runs (spec §9.1).
    """
    key = flow_doc.get("key") or flow_doc.get("id") or "?"
    status = flow_doc.get("status", "draft")
    if status not in RUNNABLE_STATUSES:
        raise NotFoundError(
            f"decision flow {key!r} is not runnable: status is {status!r} (needs 'active'); "
            "Hint: publish the flow and set its status to active",
            field="decisionFlowKey",
        )
    versions = flow_doc.get("publishedVersions") or []
    if not versions:
        raise NotFoundError(
            f"decision flow {key!r} has no published version; Hint: publish it first",
            field="decisionFlowKey",
        )
    latest = max(versions, key=lambda v: int(v["version"]))
    return int(latest["version"]), validate_flow_config(latest["config"])


BASE_FLOW_KEY = "base-nba-flow"


def base_nba_config() -> dict[str, Any]:
    """The V2 config of the Base NBA flow (spec §9.4)."""
    nodes = [
        ("inventory", "inventory", {"scope": "all", "includeStatuses": ["active"]}),
        (
            "match_creatives",
            "match_creatives",
            {"placementMatchMode": "exact", "requireCreative": False},
        ),
        ("enrich", "enrich", {"lookupKey": "customer_id", "optional": True}),
        ("qualify", "qualify", {"mode": "all"}),
        ("contact_policy", "contact_policy", {"mode": "all"}),
        ("pre_score", "extension_point", {"hook": "pre_score"}),
        ("score", "score", {"method": "priority_weighted"}),
        ("score_override", "extension_point", {"hook": "score_override"}),
        ("rank", "rank", {"method": "diversity", "maxCandidates": 5}),
        ("post_rank", "extension_point", {"hook": "post_rank"}),
        ("response", "response", {"responseFormat": "standard"}),
    ]
    return {
        "version": 2,
        "nodes": [{"id": i, "type": t, "config": c} for i, t, c in nodes],
        "flowConfig": {},
    }


def base_nba_flow(*, published_at: datetime | None = None) -> dict[str, Any]:
    """The auto-created Base NBA flow document, active with one published version.

    ``published_at`` defaults to the Unix epoch so the function stays pure; the store passes
    the creation time.
    """
    when = published_at or datetime(1970, 1, 1, tzinfo=UTC)
    config = base_nba_config()
    return {
        "key": BASE_FLOW_KEY,
        "name": "Base NBA Flow",
        "description": "Auto-created default next-best-action flow.",
        "status": "active",
        "autoAssembly": True,
        "isDefault": True,
        "draftConfig": config,
        "publishedVersions": [
            {"version": 1, "config": config, "publishedAt": when.isoformat(), "notes": "auto"}
        ],
    }
