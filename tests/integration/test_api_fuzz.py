"""Schemathesis against the orchestrator's own OpenAPI spec: no 5xx, no response outside the spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from tests.integration.conftest import AUTH, Processes, free_port, wait_for_status, write_spec

pytestmark = pytest.mark.integration


@pytest.fixture
def orchestrator_schema(tmp_path: Path, processes: Processes) -> schemathesis.BaseSchema:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 1}})
    port = free_port()
    processes.orchestrator(spec, port)
    wait_for_status(port, lambda status: status["phase"] == "Running")
    return schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json", headers=AUTH)


schema = schemathesis.pytest.from_fixture("orchestrator_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_orchestrator_api_conforms_to_its_openapi_spec(case: schemathesis.Case) -> None:
    # Long-polls stay short: generated worker ids are unknown, and unknown workers get 404 at once.
    # Result bodies are safetensors: "any binary string" in the schema, so a schema-valid body may still
    # be rejected (422), which is right; every other check applies.
    case.call_and_validate(headers=AUTH, excluded_checks=[positive_data_acceptance])
