"""Schema-driven fuzzing: schemathesis generates requests from the app's own OpenAPI document
(valid and invalid ones, a bounded number per operation and mode) and sends them,
authenticated, to the real app over HTTP. No response may be a 5xx, use an undocumented
status code or content type, or break the documented schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app
from api.catalog_entities import ENTITIES as CATALOG_ENTITIES
from engine.settings import Settings
from tests.api.conftest import Server

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 25

# The document does not depend on data: build it from an app that is never started.
SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(database_path=Path("unused.duckdb"), api_key_pepper="p")).openapi()
)
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}
# Catalog CRUD is ~75 similar operations: fewer examples each keeps the run near 2 minutes.
CATALOG_PATHS = tuple(f"/api/v1{e.path}" for e in CATALOG_ENTITIES) + ("/api/v1/catalog/",)
CATALOG = {label for label in OPERATIONS
           if label.split(" ", 1)[1].startswith(CATALOG_PATHS)}
CATALOG_EXAMPLES = 10


@pytest.fixture(scope="module")
def session(server: Server) -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.headers.update(server.headers())
        yield s


def test_the_document_covers_every_route() -> None:
    assert {
        "POST /api/v1/recommend", "POST /api/v1/respond", "GET /api/v1/decision-traces",
        "GET /api/v1/decision-traces/{trace_id}", "POST /api/v1/api-keys",
        "GET /api/v1/api-keys", "DELETE /api/v1/api-keys",
        "DELETE /api/v1/api-keys/{key_id}",
    } <= set(OPERATIONS)
    ids = {op.definition.raw["operationId"] for op in OPERATIONS.values()}
    assert {"recommend", "respond", "listDecisionTraces", "getDecisionTrace",
            "createApiKey", "listApiKeys", "revokeApiKey", "revokeApiKeyById"} <= ids
    assert len(ids) == len(OPERATIONS)  # operation ids are unique


def test_every_catalog_operation_is_documented_and_fuzzed() -> None:
    ids = {op.definition.raw["operationId"] for op in OPERATIONS.values()}
    for entity in CATALOG_ENTITIES:
        assert {f"create{entity.singular}", f"list{entity.plural}", f"get{entity.singular}",
                f"replace{entity.singular}", f"update{entity.singular}",
                f"delete{entity.singular}"} <= ids
    assert {"publishDecisionFlow", "publishDecisionFlowById", "rollbackDecisionFlow",
            "rollbackDecisionFlowById", "listDecisionFlowVersions",
            "listDecisionFlowVersionsById", "ensureBaseDecisionFlow", "exportCatalog",
            "importCatalog"} <= ids
    assert len(CATALOG) == 6 * len(CATALOG_ENTITIES) + 9


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_fuzzed_requests_get_documented_non_5xx_answers(
    label: str, mode: GenerationMode, server: Server, session: requests.Session
) -> None:
    operation = OPERATIONS[label]
    server.clock.advance(61)  # a fresh rate-limit window per operation: no 429 flood
    examples = CATALOG_EXAMPLES if label in CATALOG else EXAMPLES

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(max_examples=examples, deadline=None, derandomize=True,
                         database=None, suppress_health_check=list(hypothesis.HealthCheck))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=server.url, session=session)
        case.validate_response(response, checks=CHECKS)

    run()
