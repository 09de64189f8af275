"""Access control's mechanism: tokens, deny-by-default, refusing to start without a key, the
OpenAPI document, and the README's endpoint × role table."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import APIRouter, FastAPI

from contracts import ActorRole
from eventcore.auth import GUARD, install_auth, mint_token, route_access
from eventcore.settings import CoreSettings
from eventcore.tokens import (
    ActorMismatch,
    AuthNotConfigured,
    Principal,
    TokenRejected,
    TokenVerifier,
)
from golden_thread import access
from services.feedback.domain.delivery import ContactLookup, Gone

SECRET = secrets.token_urlsafe(32)
ADMIN = {"authorization": f"Bearer {mint_token(SECRET, ActorRole.ADMIN, 'admin-1')}"}


def _pems(private: Any) -> tuple[str, str]:
    return (private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode(),
            private.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo).decode())


def test_a_minted_token_verifies_as_its_subject_and_role() -> None:
    token = mint_token(SECRET, ActorRole.SERVICE_LEAD, "lead-1")
    assert TokenVerifier(secret=SECRET).verify(token) == Principal("lead-1", ActorRole.SERVICE_LEAD)


@pytest.mark.parametrize("private", [rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                     ec.generate_private_key(ec.SECP256R1())])
def test_an_issuers_public_key_verifies_its_tokens_and_refuses_shared_secret_ones(private: Any) -> None:
    private_pem, public_pem = _pems(private)
    verifier = TokenVerifier(public_key=public_pem)
    token = mint_token(private_pem, ActorRole.AUDITOR, "auditor-1")
    assert verifier.verify(token) == Principal("auditor-1", ActorRole.AUDITOR)
    with pytest.raises(TokenRejected, match="algorithm"):
        verifier.verify(mint_token(SECRET, ActorRole.ADMIN, "admin-1"))


def test_no_key_or_a_short_secret_is_refused_naming_the_setting() -> None:
    with pytest.raises(AuthNotConfigured, match="GT_AUTH_JWT_SECRET"):
        TokenVerifier()
    with pytest.raises(AuthNotConfigured, match="GT_AUTH_JWT_SECRET: too short"):
        TokenVerifier(secret="short")
    with pytest.raises(AuthNotConfigured, match="GT_AUTH_JWT_PUBLIC_KEY"):
        TokenVerifier(public_key="not a pem")


def test_only_an_admin_may_act_in_someone_elses_name() -> None:
    Principal("listener-1", ActorRole.COMMUNITY_LISTENER).must_be("listener_id", "listener-1")
    Principal("ops-1", ActorRole.ADMIN).must_be("listener_id", "listener-1")
    with pytest.raises(ActorMismatch) as caught:
        Principal("listener-2", ActorRole.COMMUNITY_LISTENER).must_be("listener_id", "listener-1")
    assert caught.value.field == "listener_id"


class _NoContacts:
    async def read(self, participant_id: str) -> ContactLookup:
        return Gone(participant_id, "unknown_participant")


def _builders() -> dict[str, Callable[[dict[str, Any]], FastAPI]]:
    from services.feedback.bootstrap import FeedbackSettings
    from services.feedback.bootstrap import build_app as feedback
    from services.insight.bootstrap import build_app as insight
    from services.insight.config import InsightSettings
    from services.intake.adapters.vault import new_master_key
    from services.intake.bootstrap import build_app as intake
    from services.intake.config import IntakeSettings
    from services.priority.bootstrap import build_app as priority
    from services.priority.config import PrioritySettings

    return {
        "intake": lambda v: intake(IntakeSettings(intake_vault_master_key=new_master_key(), **v)),
        "insight": lambda v: insight(InsightSettings(**v)),
        "priority": lambda v: priority(PrioritySettings(**v)),
        "feedback": lambda v: feedback(FeedbackSettings(**v), contacts=_NoContacts()),
    }


@pytest.mark.parametrize("service", ["intake", "insight", "priority", "feedback"])
def test_a_service_refuses_to_start_without_a_token_key(service: str) -> None:
    with pytest.raises(AuthNotConfigured, match="GT_AUTH_JWT_SECRET.*GT_AUTH_JWT_PUBLIC_KEY"):
        _builders()[service]({})


@pytest.mark.parametrize("service", ["intake", "insight", "priority", "feedback"])
async def test_a_new_route_that_declares_no_roles_is_refused_even_to_an_admin(service: str) -> None:
    app = _builders()[service]({"auth_jwt_secret": SECRET})
    extra = APIRouter(prefix="/reports")

    @extra.get("/everything")
    async def everything() -> dict[str, str]:
        return {"leak": "everything"}

    app.include_router(extra)

    @app.post("/backdoor")
    async def backdoor() -> dict[str, str]:
        return {"leak": "everything"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        for method, path in [("GET", "/reports/everything"), ("POST", "/backdoor")]:
            answer = await client.request(method, path, headers=ADMIN)
            assert answer.status_code == 403, (path, answer.text)
            assert answer.json()["problems"] == [{"field": "authorization", "problem":
                "this endpoint declares no roles, so no one may call it"}]
    undeclared = {a.path for a in route_access(app) if not a.declared}
    assert undeclared == {"/reports/everything", "/backdoor"}


def test_an_app_built_without_the_guard_is_refused() -> None:
    with pytest.raises(RuntimeError, match="GUARD"):
        install_auth(FastAPI(), CoreSettings(auth_jwt_secret=SECRET))
    install_auth(FastAPI(dependencies=[GUARD]), CoreSettings(auth_jwt_secret=SECRET))


@pytest.mark.parametrize("service", ["intake", "insight", "priority", "feedback"])
def test_the_openapi_document_shows_the_bearer_scheme_and_each_operations_roles(service: str) -> None:
    schema = _builders()[service]({"auth_jwt_secret": SECRET}).openapi()
    scheme = schema["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            if path in {"/health/live", "/health/ready", "/metrics"}:
                assert op["security"] == [] and "Open, no token" in op["description"]
                continue
            assert op["security"] == [{"bearer": []}], (path, method)
            assert op["x-roles"] and "Roles: " + ", ".join(op["x-roles"]) in op["description"]
            assert {"401", "403"} <= set(op["responses"]), (path, method)


def test_the_readme_role_table_is_generated_from_the_declarations() -> None:
    written = access.current_section(access.README.read_text())
    assert written == access.section(access.render(access.service_apps())), (
        "README's access table is stale: run `python -m golden_thread.access --write`")


async def test_the_api_documentation_stays_open_without_a_token() -> None:
    app = _builders()["insight"]({"auth_jwt_secret": SECRET})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        for path in ("/openapi.json", "/docs"):
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get("/insights")).status_code == 401
