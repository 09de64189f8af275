"""Access control for every HTTP endpoint: each route declares who may call it, and a route that
declares nothing is refused to everyone.

    @router.get("/things", dependencies=[Depends(allow(Role.AUDITOR, Role.ADMIN))])
    async def things(...): ...

    async def post_thing(cmd: Thing, caller: Annotated[Principal, Depends(allow(Role.ADMIN))]):
        caller.must_be("recorded_by", cmd.recorded_by)   # 403 naming the field, unless admin

    @router.get("/health/live", dependencies=[Depends(public("liveness probe"))])

`allow(...)` verifies the bearer token (401 when missing or not trusted) and admits only the
named roles (403 otherwise); `services=("feedback",)` also admits that service's machine
principal (role `system`, subject `feedback`). The app is built with `dependencies=[GUARD]`,
which runs before every route and refuses (403) any route with neither `allow` nor `public`.
`install_auth` loads the keys from settings (refusing to start without one), turns refusals into
problem answers and writes each route's roles into the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from contracts import ActorRole
from eventcore.http import problem_response
from eventcore.settings import CoreSettings
from eventcore.tokens import (
    ActorMismatch,
    AuthNotConfigured,
    Principal,
    TokenRejected,
    TokenVerifier,
    mint_token,
)

Role = ActorRole
__all__ = ["GUARD", "AuthNotConfigured", "Principal", "Role", "allow", "install_auth",
           "mint_token", "public", "route_access"]

_bearer = HTTPBearer(auto_error=False, scheme_name="bearer", bearerFormat="JWT",
                     description="A JWT (`exp` required) whose `sub` is the caller's "
                     "pseudonymous id and whose `role` is one of: " + ", ".join(
                         r.value for r in Role if r not in {Role.PARTICIPANT, Role.SYSTEM})
                     + "; services calling each other use role `system` with their own name "
                     "as `sub`.")


class Denied(Exception):
    def __init__(self, status: int, field: str, problem: str) -> None:
        super().__init__(problem)
        self.status, self.field, self.problem = status, field, problem


class RoleGate:
    """A route's declaration: these roles (and these services' machine principals) may call it."""

    def __init__(self, roles: tuple[Role, ...], services: tuple[str, ...]) -> None:
        if Role.SYSTEM in roles:
            raise ValueError("admit services by name (services=...), not the whole system role")
        if not roles and not services:
            raise ValueError("allow() needs at least one role or service")
        self.roles, self.services = frozenset(roles), frozenset(services)

    def admits(self, caller: Principal) -> bool:
        if caller.role is Role.SYSTEM:
            return caller.subject in self.services
        return caller.role in self.roles

    def names(self) -> list[str]:
        return ([r.value for r in Role if r in self.roles]
                + [f"system:{s}" for s in sorted(self.services)])

    async def __call__(
        self, request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or not credentials.credentials:
            raise Denied(401, "authorization", "a bearer token is required")
        verifier: TokenVerifier = request.app.state.auth
        try:
            caller = verifier.verify(credentials.credentials)
        except TokenRejected as exc:
            raise Denied(401, "authorization", str(exc)) from None
        if not self.admits(caller):
            raise Denied(403, "authorization",
                         f"the role {caller.role.value} may not call this endpoint")
        return caller


class OpenGate:
    """A route's declaration that it needs no token (operations probes and scraping)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def __call__(self) -> None:
        return None


def allow(*roles: Role, services: tuple[str, ...] = ()) -> RoleGate:
    return RoleGate(roles, services)


def public(reason: str) -> OpenGate:
    return OpenGate(reason)


def declaration(route: object) -> RoleGate | OpenGate | None:
    """The route's gate, found among its dependencies (however deep), or None."""
    dependant = getattr(route, "dependant", None)
    pending = list(getattr(dependant, "dependencies", ()))
    found: RoleGate | OpenGate | None = None
    while pending:
        dep = pending.pop(0)
        if isinstance(dep.call, RoleGate):
            return dep.call
        if isinstance(dep.call, OpenGate):
            found = dep.call
        pending.extend(dep.dependencies)
    return found


async def _deny_undeclared(request: Request) -> None:
    if declaration(request.scope.get("route")) is None:
        raise Denied(403, "authorization", "this endpoint declares no roles, so no one may call it")


GUARD = Depends(_deny_undeclared)


@dataclass(frozen=True)
class RouteAccess:
    path: str
    methods: tuple[str, ...]
    roles: tuple[str, ...]  # empty: refused to everyone (or open, when `open_because` is set)
    open_because: str | None

    @property
    def declared(self) -> bool:
        return bool(self.roles) or self.open_because is not None


def route_access(app: FastAPI) -> list[RouteAccess]:
    """Every route the app serves (included routers flattened) and who may call it."""
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    table = []
    for path, methods, route in _routes(app):
        gate = declaration(route) if isinstance(route, APIRoute) else None
        if isinstance(gate, RoleGate):
            roles, because = tuple(gate.names()), None
        elif isinstance(gate, OpenGate):
            roles, because = (), gate.reason
        else:
            roles, because = (), ("API documentation" if path in docs else None)
        shown = tuple(sorted(m for m in methods if m != "HEAD")) or ("GET",)
        table.append(RouteAccess(path, shown, roles, because))
    return table


def _routes(app: FastAPI) -> Iterator[tuple[str, set[str], object]]:
    try:  # FastAPI >= 0.13x keeps included routers as nodes of app.routes
        from fastapi.routing import iter_route_contexts
    except ImportError:
        for route in app.routes:
            yield getattr(route, "path", ""), set(getattr(route, "methods", None) or ()), route
        return
    for ctx in iter_route_contexts(app.routes):
        yield str(ctx.path), set(ctx.methods or ()), ctx.original_route


async def _on_denied(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Denied)
    error = "unauthenticated" if exc.status == 401 else "forbidden"
    answer = problem_response(exc.status, error, [(exc.field, exc.problem)])
    if exc.status == 401:
        answer.headers["www-authenticate"] = 'Bearer realm="golden-thread"'
    return answer


async def _on_mismatch(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ActorMismatch)
    return await _on_denied(request, Denied(403, exc.field, "must be the token's subject "
                                                           "(only an admin may act for another)"))


def install_auth(app: FastAPI, settings: CoreSettings) -> None:
    """Verify tokens with the keys in settings (raises AuthNotConfigured without one)."""
    if not any(d.dependency is _deny_undeclared for d in app.router.dependencies):
        raise RuntimeError("build the app with FastAPI(dependencies=[auth.GUARD]) so that a route "
                           "declaring no roles is refused")
    app.state.auth = TokenVerifier.from_settings(settings)
    app.add_exception_handler(Denied, _on_denied)
    app.add_exception_handler(ActorMismatch, _on_mismatch)
    schema_of = app.openapi

    def openapi() -> dict[str, Any]:
        return _with_roles(schema_of(), route_access(app))

    app.openapi = openapi  # type: ignore[method-assign]


def _with_roles(schema: dict[str, Any], table: list[RouteAccess]) -> dict[str, Any]:
    for access in table:
        for method in access.methods:
            op = schema.get("paths", {}).get(access.path, {}).get(method.lower())
            if op is None or "x-roles" in op:
                continue
            op["x-roles"] = list(access.roles)
            if access.open_because is not None:
                op["security"] = []
                note = f"Open, no token: {access.open_because}."
            elif access.roles:
                note = "Roles: " + ", ".join(access.roles) + "."
                answers = op.setdefault("responses", {})
                answers.setdefault("401", {"description": "No valid bearer token"})
                answers.setdefault("403", {"description": "The token's role is not admitted"})
            else:
                note = "Refused to everyone: this endpoint declares no roles."
            op["description"] = (op.get("description", "") + "\n\n" + note).strip()
    return schema
