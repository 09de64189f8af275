"""Every endpoint of every service, fed hostile requests: malformed JSON, wrong types, unknown and
missing fields, huge and deeply nested bodies, control characters, invalid Unicode and UTF-8,
injection strings in paths, queries, headers and bodies, bad credentials, wrong methods.

Each is answered with a clear 4xx whose problem body names a field and does not repeat the input
(or, for a query or header a service may legitimately ignore, a 2xx); never a 5xx; and nothing
is stored: the store head and every table an HTTP request can write are unchanged after a
rejection, and after any GET.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings

from tests.hostile.conftest import CASES_TRIED, Service, Services, in_thread
from tests.hostile.http_cases import (
    BODY_METHODS,
    Case,
    Operation,
    explicit_cases,
    hostile_case,
    operations,
)
from tests.hostile.raw_asgi import Answer, RawRequest, default_headers, send
from tests.hostile.snapshots import Snapshot, http_tables
from tests.hostile.strategies import MARK

pytestmark = pytest.mark.integration

PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
EXAMPLES = int(os.environ.get("GT_HOSTILE_HTTP_EXAMPLES", "60"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck))


def describe(exc: BaseException, indent: str = "  ") -> str:
    """An exception, its hypothesis notes (the falsifying example) and any sub-exceptions."""
    lines = [f"{indent}{type(exc).__name__}: {str(exc)[:1500]}"]
    for sub in getattr(exc, "exceptions", ()):
        lines.append(describe(sub, indent + "  "))
    return "\n".join(lines)


def problems_of(answer: Answer) -> list[dict[str, Any]]:
    """The problem body every 4xx carries: an error and the fields at fault."""
    assert (answer.header("content-type") or "").startswith("application/json"), answer.headers
    body = answer.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    problems = body.get("problems")
    assert isinstance(problems, list) and problems, body
    for p in problems:
        assert isinstance(p, dict) and isinstance(p.get("field"), str) and p["field"], body
        assert isinstance(p.get("problem"), str) and p["problem"], body
    return problems


def check_answer(case: Case, answer: Answer) -> None:
    assert answer.error is None, f"the app raised {answer.error!r}"
    assert answer.status < 500, f"{answer.status}: {answer.text[:500]}"
    assert answer.status in case.allowed, f"{answer.status}: {answer.text[:500]}"
    for name, value in answer.headers:
        assert b"\r" not in value and b"\n" not in value, (name, value)
        assert MARK.encode() not in value, f"header {name!r} repeats the input"
    if answer.status >= 400:
        problems = problems_of(answer)
        assert MARK not in unechoed(answer.text, problems), \
            f"the answer repeats the input: {answer.text[:500]}"


def unechoed(text: str, problems: list[dict[str, Any]]) -> str:
    """The answer less the names of unknown fields that are plain identifiers: those are named
    on purpose (as contract problems do), anything else a client sends is never repeated."""
    for p in problems:
        if p["problem"] == "unknown field" and PLAIN_KEY.match(p["field"].rsplit(".", 1)[-1]):
            text = text.replace(json.dumps(p["field"]), '""')
    return text


async def _probe_protection(service: Service, op: Operation) -> bool:
    """Whether the operation refuses a caller without credentials (401)."""
    bare = [h for h in default_headers(service.client) if h[0] != b"authorization"]
    body = json.dumps(op.template).encode() if op.template and op.method in BODY_METHODS else b""
    answer = await send(service.app, RawRequest(op.method, op.valid_path(), b"", bare, body))
    return answer.status == 401


def hostile_test(services: Services, service: Service, op: Operation,
                 snapshot: Snapshot) -> Any:
    credentials = default_headers(service.client)
    tried = CASES_TRIED[f"http {service.name}"]

    # An operation without parameters or body offers less to vary: a third of the examples.
    plain = not (op.path_params or op.query_params or op.template)
    examples = max(5, EXAMPLES // 3) if plain else EXAMPLES

    @settings(SETTINGS, max_examples=examples)
    @given(case=hostile_case(op, credentials))
    def test(case: Case) -> None:
        tried[op.label] += 1
        before = services.run(snapshot.take())
        answer = services.run(send(service.app, case.request))
        try:
            check_answer(case, answer)
            if answer.status >= 400 or case.request.method in {"GET", "HEAD"}:
                assert services.run(snapshot.take()) == before, "a rejected request changed state"
        except AssertionError as exc:
            raise AssertionError(f"{str(exc).splitlines()[0]}\n    for {case!r}") from None

    for case in explicit_cases(op, credentials):
        test = example(case=case)(test)
    return test


@pytest.mark.parametrize("name", ["intake", "insight", "priority", "feedback"])
async def test_every_endpoint_answers_hostile_requests_with_a_clear_4xx_and_stores_nothing(
    services: Services, name: str
) -> None:
    service = services[name]
    ops = operations(service.app)
    assert len(ops) >= 8, [op.label for op in ops]
    untemplated = [op.label for op in ops if op.body_model is not None and op.template is None]
    assert not untemplated, f"add a well-formed body for {untemplated} to http_cases.TEMPLATES"
    snapshot = Snapshot(service.pool, await http_tables(service.pool, name))
    failures: list[str] = []
    for op in ops:
        op.protected = await _probe_protection(service, op)
        try:
            await in_thread(hostile_test(services, service, op, snapshot))
        except Exception as exc:  # noqa: BLE001 - report every failing operation, not the first
            failures.append(f"{op.label}:\n{describe(exc)}")
    assert not failures, "\n\n".join(failures)
