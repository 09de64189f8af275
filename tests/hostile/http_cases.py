"""Hostile HTTP requests for one operation (method + route) of a running app, and what each kind
of hostility must be answered with."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, get_args
from uuid import uuid4

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from hypothesis import strategies as st
from pydantic import BaseModel

from tests.hostile import strategies as hs
from tests.hostile.raw_asgi import RawRequest, encode_segment

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: Bigger than any service's body limit.
OVERSIZE = 1024 * 1024 + 1

_CONSENT = {"to_store": True, "to_quote": True, "to_recontact": True, "channel": "email",
            "earliest_contact_on": None}
_INSIGHT = {"partner_id": "partner-1", "category": "community_support",
            "statement": "Community groups feel easier to approach than GP surgeries.",
            "conversation_ids": ["5f0c8a3e-7b1d-4e0a-9c3b-6d2e8f4a1b7c"]}

#: A well-formed body for every operation that takes one (a new one must be added here).
TEMPLATES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/conversations"): {
        "listener_id": "listener-1", "held_on": "2026-01-20", "setting": "community café",
        "place": "Tower Hamlets", "categories": ["community_support"],
        "summary": "The weekly group keeps them going between appointments.",
        "quotes": ["Nobody called me back."], "support_shared": ["talking therapies"],
        "participant": {"contact": {"name": "Hostile Tester", "email": "hostile@example.org",
                                    "phone": "+44 7700 900999"}},
        "consent": _CONSENT, "equity": {"age_band": "25-34", "area": "Hackney"},
    },
    ("POST", "/participants/{participant_id}/consent"): {
        "actor_id": "listener-1",
        "consent": {"to_quote": False, "to_recontact": False, "channel": "none",
                    "earliest_contact_on": None},
    },
    ("POST", "/participants/{participant_id}/erasure"): {"actor_id": "listener-1"},
    ("POST", "/insights"): _INSIGHT,
    ("POST", "/insights/{insight_id}/revisions"): {**_INSIGHT, "based_on_revision": 1},
    ("POST", "/sessions"): {
        "opened_by": "partner-1", "insight_ids": ["9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"],
        "statement": "Offer support through trusted community groups.",
        "rule": {"quorum": 3, "majority_numerator": 2, "majority_denominator": 3},
    },
    ("POST", "/sessions/{session_id}/responses"): {"partner_id": "partner-1",
                                                   "response": "support"},
    ("POST", "/sessions/{session_id}/decision"): {"decided_by": "partner-1"},
    ("POST", "/actions"): {
        "recorded_by": "lead-1", "priority_ids": ["2d4c6e8a-1b3d-4f5a-8c7e-9a0b1c2d3e4f"],
        "description": "Weekly drop-in with a mental health worker at the café.",
        "service": "community mental health team", "place": "Tower Hamlets",
        "framework": "Community Mental Health Framework",
        "framework_area": "Access and engagement", "status": "planned",
    },
    ("POST", "/actions/{action_id}/status"): {"recorded_by": "lead-1", "status": "done"},
    ("POST", "/peer-tasks/{task_id}/done"): {"actor_id": "peer-1", "outcome": "told"},
}


@dataclass
class Operation:
    method: str
    path: str
    path_params: list[str]
    query_params: list[str]
    body_model: type[BaseModel] | None
    template: dict[str, Any] | None
    protected: bool = False  # answers 401 without credentials
    required: list[hs.Path] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def valid_path(self, draw: st.DrawFn | None = None) -> bytes:
        """The route with well-formed ids (drawn by hypothesis inside a strategy)."""
        path = self.path
        for name in self.path_params:
            uuid = draw(st.uuids()) if draw else uuid4()
            value = f"p_{uuid.hex[:16]}" if name == "participant_id" else str(uuid)
            path = path.replace("{" + name + "}", value)
        return path.encode("ascii")


def operations(app: FastAPI) -> list[Operation]:
    """Every method of every route the app serves (docs and operations endpoints included)."""
    doc = app.openapi()
    found = []
    for ctx in iter_route_contexts(app.routes):
        route, path = ctx.original_route, str(ctx.path)
        for method in sorted(set(ctx.methods or {"GET"}) - {"HEAD"}):
            params = doc.get("paths", {}).get(path, {}).get(method.lower(), {}).get("parameters", [])
            body_field = getattr(route, "body_field", None)
            model = body_field.field_info.annotation if body_field is not None else None
            template = TEMPLATES.get((method, path))
            op = Operation(
                method, path,
                path_params=[p["name"] for p in params if p["in"] == "path"],
                query_params=[p["name"] for p in params if p["in"] == "query"],
                body_model=model, template=template)
            if model is not None and template is not None:
                op.required = required_paths(model, template)
            found.append(op)
    return found


def required_paths(model: type[BaseModel], template: Any, prefix: hs.Path = ()) -> list[hs.Path]:
    """Paths (present in the template) of fields the model requires, nested models included."""
    out: list[hs.Path] = []
    for name, info in model.model_fields.items():
        if not isinstance(template, dict) or name not in template:
            continue
        if info.is_required():
            out.append((*prefix, name))
        for candidate in (info.annotation, *get_args(info.annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                out.extend(required_paths(candidate, template[name], (*prefix, name)))
    return out


# --- what to send -----------------------------------------------------------------------------

JSON = [(b"content-type", b"application/json")]


@dataclass(frozen=True)
class Case:
    kind: str
    request: RawRequest
    #: Statuses this case may be answered with (always some 4xx; 2xx only where it may be fine).
    allowed: frozenset[int]

    def __repr__(self) -> str:
        shown = "4xx" if self.allowed == FOUR_XX else sorted(self.allowed)[:3]
        return f"Case({self.kind}, answer {shown}, {self.request!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


FOUR_XX = frozenset(range(400, 500))
ANY_OK = FOUR_XX | frozenset(range(200, 300))
#: An empty segment may be redirected to the route without its trailing slash.
OR_REDIRECT = FOUR_XX | {307, 308}


def _hs256(claims: dict[str, Any], secret: bytes, alg: str = "HS256") -> str:
    def part(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    signing = f"{part({'alg': alg, 'typ': 'JWT'})}.{part(claims)}"
    if alg == "none":
        return signing + "."
    sig = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


_ADMIN = {"iss": "golden-thread", "aud": "golden-thread", "sub": "mallory", "role": "admin",
          "exp": 4_102_444_800}
BAD_CREDENTIALS: tuple[bytes, ...] = (
    b"", b"Bearer", b"Bearer ", b"Basic YWRtaW46YWRtaW4=", f"Bearer {hs.MARK}".encode(),
    f"Bearer {_hs256(_ADMIN, b'', 'none')}".encode(),
    f"Bearer {_hs256(_ADMIN, secrets.token_bytes(32))}".encode(),
    f"Bearer {_hs256({**_ADMIN, 'exp': 1}, secrets.token_bytes(32))}".encode(),
    b"Bearer " + b"e" * 100_000, b"Bearer a.b.c", b"Bearer \xff\xfe.\x00.\r\n",
    f"Bearer {hs.MARK}\r\nX-Injected: 1".encode(),
)


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _base(op: Operation, headers: list[tuple[bytes, bytes]],
          draw: st.DrawFn | None = None) -> RawRequest:
    body = hs.dumps(op.template) if op.template is not None and op.method in BODY_METHODS else b""
    extra = JSON if body else []
    return RawRequest(op.method, op.valid_path(draw), b"", [*headers, *extra], body)


@st.composite
def hostile_case(draw: st.DrawFn, op: Operation, credentials: list[tuple[bytes, bytes]]) -> Case:
    kinds = ["query", "headers", "method", "credentials", "unknown_route"]
    if op.path_params:
        kinds += ["path", "path"]
    if op.template is not None:
        kinds += ["unknown", "wrong_type", "text", "text", "nesting", "raw", "malformed",
                  "toplevel", "oversize", "content_type"]
        if op.required:
            kinds.append("missing")
    kind = draw(st.sampled_from(kinds))
    base = _base(op, credentials, draw)
    case: Case = _MAKERS[kind](draw, op, base, credentials)
    return case


def _path(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    path = op.path
    for name in op.path_params:
        value = draw(st.one_of(hs.hostile_text, st.just(""), st.just(".."), st.just("%00")))
        path = path.replace("{" + name + "}", encode_segment(value).decode("ascii"))
    if draw(st.booleans()):  # and the same, unencoded where the route allows it
        path = path.replace("%2F", "/").replace("%2E", ".")
    return Case("path", RawRequest(op.method, path.encode("ascii"), base.query, base.headers,
                                   base.body), OR_REDIRECT)


def _query(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    names = op.query_params + [f"unknown_{hs.MARK}", hs.MARK, "limit", "offset"]
    pairs = draw(st.lists(st.tuples(st.sampled_from(names),
                                    st.one_of(hs.hostile_text, st.sampled_from(
                                        ["-1", "1e400", "99999999999999999999999999", "NaN",
                                         "true", "0001-01-01", "9999-12-31", "", "[]"]))),
                          min_size=1, max_size=4))
    query = b"&".join(encode_segment(k) + b"=" + encode_segment(v) for k, v in pairs)
    if draw(st.booleans()):
        query += b"&raw=%ff%fe%00"
    return Case("query", RawRequest(op.method, base.raw_path, query, base.headers, base.body),
                ANY_OK)


def _headers(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    name = draw(st.sampled_from([b"x-correlation-id", b"traceparent", b"tracestate",
                                 b"accept", b"accept-language", b"cookie", b"origin",
                                 b"x-forwarded-for", b"content-length", b"range"]))
    value = draw(st.one_of(hs.hostile_text.map(_enc), st.binary(max_size=64),
                           st.sampled_from([b"-1", b"99999999999999999999", b"0" * 200,
                                            b"00-" + b"f" * 32 + b"-" + b"f" * 16 + b"-ff"])))
    headers = [*(h for h in base.headers if h[0] != name), (name, value)]
    return Case("headers", RawRequest(op.method, base.raw_path, b"", headers, base.body), ANY_OK)


def _method(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    other = draw(st.sampled_from(["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
                                  "PROPFIND", hs.MARK.upper()]))
    return Case("method", RawRequest(other, base.raw_path, b"", base.headers, base.body),
                FOUR_XX)


def _credentials(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    value = draw(st.sampled_from(BAD_CREDENTIALS))
    headers = [h for h in base.headers if h[0] != b"authorization"]
    if value or draw(st.booleans()):
        headers.append((b"authorization", value))
    allowed = FOUR_XX if op.protected else ANY_OK
    return Case("credentials", RawRequest(op.method, base.raw_path, b"", headers, base.body),
                allowed)


def _unknown_route(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    suffix = draw(st.sampled_from([b"/..%2f..%2fetc%2fpasswd", b"/%00", b"/../../admin",
                                   b"/" + encode_segment(hs.MARK), b"%ff%fe", b"/.git/config"]))
    return Case("unknown_route", RawRequest(op.method, base.raw_path.rstrip(b"/") + suffix,
                                            b"", base.headers, base.body), OR_REDIRECT)


def _with_body(base: RawRequest, body: bytes, kind: str, allowed: frozenset[int] = FOUR_XX,
               headers: list[tuple[bytes, bytes]] | None = None) -> Case:
    return Case(kind, RawRequest(base.method, base.raw_path, b"",
                                 base.headers if headers is None else headers, body), allowed)


def _missing(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    path = draw(st.sampled_from(op.required))
    return _with_body(base, hs.dumps(hs.removed(op.template, path)), "missing")


def _unknown(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    objects = [()] + [p for p in hs.paths(op.template) if isinstance(hs.get(op.template, p), dict)]
    where = draw(st.sampled_from(objects))
    key = draw(hs.hostile_key)
    value = draw(st.one_of(st.just(hs.MARK), st.integers(), st.none()))
    return _with_body(base, hs.dumps(hs.added(op.template, where, key, value)), "unknown")


def _wrong_type(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    where = draw(st.sampled_from(list(hs.paths(op.template))))
    value = draw(hs.wrong_kind(hs.get(op.template, where)))
    return _with_body(base, hs.dumps(hs.replaced(op.template, where, value)), "wrong_type")


def _text(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    leaves = [p for p in hs.paths(op.template) if isinstance(hs.get(op.template, p), str)]
    where = draw(st.sampled_from(leaves))
    text = draw(hs.hostile_text)
    must_reject = hs.is_dirty(text) or len(text) > 4000
    return _with_body(base, hs.dumps(hs.replaced(op.template, where, text)), "text",
                      FOUR_XX if must_reject else ANY_OK)


def _nesting(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    depth = draw(st.sampled_from([200, 999, 1001, 5000, 60_000]))
    if draw(st.booleans()):
        body = hs.nested(depth).encode()
    else:
        where = draw(st.sampled_from(list(hs.paths(op.template))))
        placeholder = "\x01PLACEHOLDER\x01"
        text = json.dumps(hs.replaced(op.template, where, placeholder))
        body = text.replace(json.dumps(placeholder), hs.nested(depth)).encode()
    return _with_body(base, body, "nesting")


def _raw(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    return _with_body(base, draw(st.binary(min_size=1, max_size=512)), "raw")


def _malformed(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    return _with_body(base, draw(hs.malformed_json(hs.dumps(op.template))), "malformed")


def _toplevel(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    value = draw(st.sampled_from([[], [op.template], 1, -1.5, hs.MARK, None, True, "",
                                  {"": op.template}]))
    return _with_body(base, json.dumps(value).encode(), "toplevel")


def _oversize(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    body = b'{"summary": "' + b"A" * OVERSIZE + b'"}'
    headers = list(base.headers)
    if draw(st.booleans()):  # declared up front, or only found out while reading
        headers.append((b"content-length", str(len(body)).encode()))
    return _with_body(base, body, "oversize", frozenset({413}), headers)


def _content_type(draw: st.DrawFn, op: Operation, base: RawRequest, _: Any) -> Case:
    kind = draw(st.sampled_from([b"text/plain", b"application/x-www-form-urlencoded",
                                 b"multipart/form-data; boundary=xyz", b"application/xml",
                                 _enc(hs.MARK), b"\xff/\xfe"]))
    headers = [h for h in base.headers if h[0] != b"content-type"] + [(b"content-type", kind)]
    return _with_body(base, base.body, "content_type", FOUR_XX, headers)


_MAKERS: dict[str, Any] = {
    "path": _path, "query": _query, "headers": _headers, "method": _method,
    "credentials": _credentials, "unknown_route": _unknown_route, "missing": _missing,
    "unknown": _unknown, "wrong_type": _wrong_type, "text": _text, "nesting": _nesting,
    "raw": _raw, "malformed": _malformed, "toplevel": _toplevel, "oversize": _oversize,
    "content_type": _content_type,
}


def explicit_cases(op: Operation, credentials: list[tuple[bytes, bytes]]) -> list[Case]:
    """Cases always tried, whatever hypothesis draws: NUL in every query and path parameter and
    in every string of the body, and a body too large that declares no length."""
    base = _base(op, credentials)
    nul = "\x00" + hs.MARK
    cases = [Case("query", RawRequest(op.method, base.raw_path,
                                      encode_segment(name) + b"=" + encode_segment(nul),
                                      base.headers, base.body), ANY_OK)
             for name in op.query_params]
    for name in op.path_params:
        raw = op.path.replace("{" + name + "}", encode_segment(nul).decode())
        for other in op.path_params:
            raw = raw.replace("{" + other + "}", str(uuid4()))
        cases.append(Case("path", RawRequest(op.method, raw.encode(), b"", base.headers,
                                             base.body), OR_REDIRECT))
    if op.template is not None:
        for where in hs.paths(op.template):
            if isinstance(hs.get(op.template, where), str):
                body = hs.dumps(hs.replaced(op.template, where, nul))
                cases.append(Case("text", RawRequest(op.method, base.raw_path, b"",
                                                     base.headers, body), FOUR_XX))
        cases.append(Case("oversize", RawRequest(op.method, base.raw_path, b"", base.headers,
                                                 b" " * OVERSIZE), frozenset({413})))
    return cases
