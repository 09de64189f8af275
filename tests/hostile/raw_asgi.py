"""Raw ASGI requests: any bytes in the path, query, headers and body, as a server would pass them.

httpx refuses to send much of what an attacker can (CR/LF in headers, invalid UTF-8 in a path),
so requests here go straight to the app, with the scope uvicorn would build from such bytes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from starlette.types import ASGIApp, Message

#: Headers httpx adds by itself; everything else a fixture client sends (e.g. a bearer token)
#: is sent with every raw request too.
_HTTPX_OWN = {"accept", "accept-encoding", "connection", "user-agent", "host", "content-length"}


def default_headers(client: Any) -> list[tuple[bytes, bytes]]:
    """The headers an in-process fixture client sends by default (its credentials)."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in client.headers.items() if k.lower() not in _HTTPX_OWN]


def encode_segment(value: str) -> bytes:
    """A path segment as a client puts it on the wire (lone surrogates as invalid UTF-8)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="").encode("ascii")


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    error: BaseException | None = None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.decode("latin-1").lower() == name:
                return v.decode("latin-1")
        return None


@dataclass
class RawRequest:
    method: str
    raw_path: bytes
    query: bytes = b""
    headers: Sequence[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def __repr__(self) -> str:  # short enough to read in a falsifying example
        body = self.body if len(self.body) < 300 else self.body[:300] + b"..."
        query = self.query if len(self.query) < 300 else self.query[:300] + b"..."
        headers = [(k, v if len(v) < 80 else v[:40] + b"...") for k, v in self.headers]
        return (f"RawRequest({self.method} {self.raw_path[:300]!r}?{query!r} "
                f"headers={headers!r} body={body!r} ({len(self.body)} bytes))")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' pretty printer
        printer.text(repr(self))


async def send(app: ASGIApp, request: RawRequest, timeout_s: float = 30.0) -> Answer:
    path = unquote(request.raw_path.decode("ascii"))  # as uvicorn does: invalid UTF-8 -> U+FFFD
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": request.method, "scheme": "http",
        "path": path, "raw_path": request.raw_path, "root_path": "",
        "query_string": request.query,
        "headers": [(b"host", b"hostile.test"), *request.headers],
        "client": ("127.0.0.1", 40000), "server": ("hostile.test", 80),
    }
    done = asyncio.Event()
    body_sent = False
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send_(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    error: BaseException | None = None
    try:
        async with asyncio.timeout(timeout_s):
            await app(scope, receive, send_)
    except Exception as exc:  # noqa: BLE001 - an app that raises is a finding, reported below
        error = exc
    finally:
        done.set()
    status = int(start.get("status", 500 if error else 0))
    return Answer(status, list(start.get("headers", [])), b"".join(chunks), error)
