"""Each service against its own OpenAPI document, with schemathesis: requests generated from the
document (valid ones and invalid ones) are never answered with a server error, and every answer
conforms to the document: a declared status, a declared content type, the declared body schema.

The cases are sent in-process over ASGI to the running app (the suite's shared one, on the
session's real broker and database), with the fixture client's credentials.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.hostile.conftest import CASES_TRIED, Service, Services, in_thread

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("GT_HOSTILE_SCHEMATHESIS_EXAMPLES", "60"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
#: Headers schemathesis adds that the in-process transport has no use for.
_DROPPED = {"connection", "accept-encoding", "user-agent", "x-schemathesis-testcaseid"}


def _request(case: Any, client: httpx.AsyncClient) -> dict[str, Any]:
    """The case as httpx keyword arguments, signed with the fixture client's credentials."""
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url).rstrip("/"))
    headers = {k: str(v) for k, v in (kwargs.get("headers") or {}).items()
               if k.lower() not in _DROPPED and k.lower() != "authorization"}
    headers.update({k: v for k, v in client.headers.items() if k.lower() == "authorization"})
    out: dict[str, Any] = {"method": kwargs["method"], "url": kwargs["url"], "headers": headers,
                           "params": kwargs.get("params") or None}
    if "json" in kwargs:
        out["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        out["content"] = kwargs["data"]
    return out


def operation_test(services: Services, service: Service, operation: Any) -> Any:
    tried = CASES_TRIED[f"schemathesis {service.name}"]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                      operation.as_strategy(GenerationMode.NEGATIVE))

    @SETTINGS
    @given(case=cases)
    def test(case: Any) -> None:
        tried[operation.label] += 1
        response = services.run(service.client.request(**_request(case, service.client)))
        case.validate_response(response, checks=CHECKS)

    return test


@pytest.mark.parametrize("name", ["intake", "insight", "priority", "feedback"])
async def test_every_answer_conforms_to_the_service_openapi_document(
    services: Services, name: str
) -> None:
    service = services[name]
    schema = schemathesis.openapi.from_dict(service.app.openapi())
    failures: list[str] = []
    results = list(schema.get_all_operations())
    assert all(isinstance(r, Ok) for r in results), [r for r in results if not isinstance(r, Ok)]
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) >= 5
    for operation in operations:
        try:
            await in_thread(operation_test(services, service, operation))
        except Exception as exc:  # noqa: BLE001 - report every operation that fails
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:2500]}")
    assert not failures, "\n\n".join(failures)
