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


@pytest.fixture(scope="module")
def session(server: Server) -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.headers.update(server.headers())
        yield s


def test_the_document_covers_every_route() -> None:
    assert set(OPERATIONS) == {
        "POST /api/v1/recommend", "POST /api/v1/respond", "GET /api/v1/decision-traces",
        "GET /api/v1/decision-traces/{trace_id}", "POST /api/v1/api-keys",
        "GET /api/v1/api-keys", "DELETE /api/v1/api-keys",
        "DELETE /api/v1/api-keys/{key_id}",
    }
    ids = {op.definition.raw["operationId"] for op in OPERATIONS.values()}
    assert ids == {"recommend", "respond", "listDecisionTraces", "getDecisionTrace",
                   "createApiKey", "listApiKeys", "revokeApiKey", "revokeApiKeyById"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_fuzzed_requests_get_documented_non_5xx_answers(
    label: str, mode: GenerationMode, server: Server, session: requests.Session
) -> None:
    operation = OPERATIONS[label]

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                         database=None, suppress_health_check=list(hypothesis.HealthCheck))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=server.url, session=session)
        case.validate_response(response, checks=CHECKS)

    run()
