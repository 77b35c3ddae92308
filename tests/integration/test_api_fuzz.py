"""Schemathesis against the orchestrator's own OpenAPI spec: no 5xx, no response outside the spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from tests.integration.conftest import AUTH, TOKEN, Processes, free_port, wait_for_status, write_spec

pytestmark = pytest.mark.integration


@pytest.fixture
def orchestrator_schema(tmp_path: Path, processes: Processes) -> schemathesis.BaseSchema:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 1}})
    port = free_port()
    processes.orchestrator(spec, port)
    wait_for_status(port, lambda status: status["phase"] == "Running")
    return schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json", headers=AUTH)


schema = schemathesis.pytest.from_fixture("orchestrator_schema")


@schema.auth()
class BearerToken:
    """The run's token on every request but those schemathesis sends without it on purpose.

    Not a headers override in the call: that would put the token back into a case whose negation is a missing
    Authorization header, and the check would then take the API's 200 for accepted invalid data.
    """

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        return TOKEN

    def set(self, case: schemathesis.Case, token: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_orchestrator_api_conforms_to_its_openapi_spec(case: schemathesis.Case) -> None:
    # Long-polls stay short: generated worker ids are unknown, and unknown workers get 404 at once.
    # Result bodies are safetensors: "any binary string" in the schema, so a schema-valid body may still
    # be rejected (422), which is right; every other check applies.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
