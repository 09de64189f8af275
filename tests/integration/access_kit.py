"""Table-driven access checks shared by the test_access_* modules (no tests here).

Every route the app serves is enumerated from the app itself (`eventcore.auth.route_access`), so a
route added later without a row in the test's table fails the test, and each route is called as
every role: the roles the table names must get past authentication (not 401/403), every other
caller must get 403, and a missing or untrustworthy token must get 401.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from typing import Any
from uuid import uuid4

import httpx
import jwt
from fastapi import FastAPI

from contracts import ActorRole
from eventcore.auth import route_access
from eventcore.tokens import mint_token
from tests.conftest import TEST_JWT_SECRET, bearer

Route = tuple[str, str]  # (method, path template)
OPEN = "open"  # in a table: no token needed
PEOPLE = (ActorRole.COMMUNITY_LISTENER, ActorRole.LIVED_EXPERIENCE_PARTNER, ActorRole.SERVICE_LEAD,
          ActorRole.TRUST_SYSTEM, ActorRole.AUDITOR, ActorRole.ADMIN)
DOCS = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc")}
OPS = {("GET", "/health/live"): OPEN, ("GET", "/health/ready"): OPEN, ("GET", "/metrics"): OPEN}

#: Every kind of caller: each person's role, two services' machine principals, a participant.
CALLERS: dict[str, dict[str, str]] = {
    **{role.value: bearer(role, f"{role.value}-1") for role in PEOPLE},
    "system:feedback": bearer(ActorRole.SYSTEM, "feedback"),
    "system:insight": bearer(ActorRole.SYSTEM, "insight"),
    "participant": bearer(ActorRole.PARTICIPANT, "p_abcdefgh12"),
}


def _signed(claims: dict[str, Any], key: str = TEST_JWT_SECRET, algorithm: str = "HS256") -> str:
    now = int(time.time())
    base = {"iss": "golden-thread", "aud": "golden-thread", "sub": "admin-1", "role": "admin",
            "iat": now, "exp": now + 600}
    return jwt.encode({k: v for k, v in (base | claims).items() if v is not None}, key,
                      algorithm=algorithm)


#: Tokens that must never get in, with why; each answers 401 naming `authorization`.
UNTRUSTED: dict[str, str] = {
    "missing": "",
    "not a JWT": "Bearer not-a-jwt",
    "expired": f"Bearer {mint_token(TEST_JWT_SECRET, ActorRole.ADMIN, 'admin-1', ttl_s=-120)}",
    "bad signature": "Bearer " + mint_token("another-key-" + secrets.token_urlsafe(32),
                                            ActorRole.ADMIN, "admin-1"),
    "wrong audience": "Bearer " + mint_token(TEST_JWT_SECRET, ActorRole.ADMIN, "admin-1",
                                             audience="another-system"),
    "wrong issuer": "Bearer " + mint_token(TEST_JWT_SECRET, ActorRole.ADMIN, "admin-1",
                                           issuer="someone-else"),
    "no exp": f"Bearer {_signed({'exp': None})}",
    "unknown role": f"Bearer {_signed({'role': 'superuser'})}",
    "alg none": f"Bearer {_signed({}, key='', algorithm='none')}",
    "basic scheme": "Basic YWRtaW46YWRtaW4=",
}


def served(app: FastAPI) -> dict[Route, tuple[str, ...] | str]:
    """Every (method, path) the app serves except its API documentation, with its declared
    roles, or OPEN; a route that declares nothing shows as ()."""
    out: dict[Route, tuple[str, ...] | str] = {}
    for access in route_access(app):
        for method in access.methods:
            if (method, access.path) in DOCS:
                continue
            out[method, access.path] = OPEN if access.open_because else access.roles
    return out


def concrete(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        return f"p_{uuid4().hex[:12]}" if "participant" in match.group(0) else str(uuid4())

    return re.sub(r"\{[^}]+\}", value, path)


async def call(client: httpx.AsyncClient, route: Route, authorization: str) -> httpx.Response:
    method, path = route
    body: dict[str, Any] | None = {} if method in {"POST", "PUT", "PATCH"} else None
    return await client.request(method, concrete(path), json=body,
                                headers={"authorization": authorization})


async def check_every_route(client: httpx.AsyncClient, app: FastAPI,
                            table: Mapping[Route, tuple[str, ...] | str]) -> None:
    """The app's routes are exactly the table's, declare exactly its roles, and behave so."""
    declared = served(app)
    expected = {**OPS, **{k: (v if v == OPEN else tuple(sorted(v))) for k, v in table.items()}}
    assert set(declared) == set(expected), "routes served but not in the table, or gone: " + \
        str(set(declared) ^ set(expected))
    assert {k: v if v == OPEN else tuple(sorted(v)) for k, v in declared.items()} == expected
    for route, roles in expected.items():
        if route[0] == "POST":
            assert roles == OPEN or ActorRole.AUDITOR.value not in roles, f"{route}: auditors change nothing"
        for caller, headers in CALLERS.items():
            answer = await call(client, route, headers["authorization"])
            if roles == OPEN or caller in roles:
                assert answer.status_code not in (401, 403), (route, caller, answer.text)
            else:
                assert answer.status_code == 403, (route, caller, answer.status_code)
                assert answer.json()["problems"][0]["field"] == "authorization"


async def check_untrusted_tokens(client: httpx.AsyncClient, app: FastAPI) -> None:
    """Every route that needs a token answers 401 (naming `authorization`) to a bad one; the open
    ones answer anyone."""
    for route, roles in served(app).items():
        for why, authorization in UNTRUSTED.items():
            answer = await call(client, route, authorization)
            if roles == OPEN:
                assert answer.status_code not in (401, 403), (route, why)
                continue
            assert answer.status_code == 401, (route, why, answer.status_code, answer.text)
            assert answer.json()["error"] == "unauthenticated", (route, why)
            assert answer.json()["problems"][0]["field"] == "authorization", (route, why)
            assert "bearer" in answer.headers["www-authenticate"].lower()
            if authorization:
                assert authorization.split()[-1] not in answer.text, "the token is never echoed"


async def check_actor_fields(client: httpx.AsyncClient,
                             cases: list[tuple[str, str, ActorRole, dict[str, Any], str]]) -> None:
    """(method, path, role, body, field): the body names someone else as the actor, so the
    caller (not an admin) is refused with 403 naming that field."""
    for method, path, role, body, field in cases:
        answer = await client.request(method, concrete(path), json=body,
                                      headers=bearer(role, "caller-1"))
        assert answer.status_code == 403, (path, answer.status_code, answer.text)
        assert answer.json()["problems"] == [{
            "field": field, "problem": "must be the token's subject (only an admin may act for "
                                       "another)"}], path
