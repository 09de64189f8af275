"""A lean HTTP/1.1 keep-alive load generator for POST /conversations (a few µs per request of
client CPU, where httpx would spend a large share of a 2-core machine on itself)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


class HttpError(RuntimeError):
    pass


@dataclass
class Results:
    accepted: int = 0
    rejected: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    #: (conversation id, wall-clock time the 201 arrived)
    accepted_at: list[tuple[str, float]] = field(default_factory=list)
    first_error: str | None = None


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.head = (f"POST /conversations HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     "Content-Type: application/json\r\n")

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, body: bytes, headers: str = "") -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(f"{self.head}{headers}Content-Length: {len(body)}\r\n\r\n".encode()
                          + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise HttpError("connection closed by the server")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            payload = b""
            while (size := int((await self.reader.readline()).strip(), 16)) > 0:
                payload += await self.reader.readexactly(size + 2)
            await self.reader.readline()
            return status, payload
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass


Authorize = Callable[[str], str]


def no_auth(_: str) -> str:
    return ""


async def drive(url: str, bodies: Iterator[tuple[str, bytes]], *, clients: int, seconds: float,
                rate: float | None = None, warmup_s: float = 0.0,
                authorize: Authorize = no_auth) -> tuple[Results, float]:
    """POST bodies from `clients` connections for `seconds` (after `warmup_s`); closed loop, or
    paced at `rate` requests/s in total. `authorize(listener_id)` gives the header lines the
    request carries as that listener. Returns the results and the measured seconds."""
    host, _, port = url.removeprefix("http://").partition(":")
    results = Results()
    begin = time.perf_counter()
    start = begin + warmup_s
    stop = start + seconds

    async def client(n: int) -> None:
        conn = Connection(host, int(port))
        await conn.open()
        sent = 0
        try:
            while True:
                if rate is not None:
                    due = begin + (sent * clients + n) / rate
                    if due >= stop:
                        return
                    if (delay := due - time.perf_counter()) > 0:
                        await asyncio.sleep(delay)
                elif time.perf_counter() >= stop:
                    return
                listener, body = next(bodies)
                sent += 1
                t0 = time.perf_counter()
                status, payload = await conn.post(body, authorize(listener))
                t1 = time.perf_counter()
                if t0 < start:
                    continue
                if status == 201:
                    results.accepted += 1
                    results.latencies_ms.append((t1 - t0) * 1000)
                    results.accepted_at.append((json.loads(payload)["id"], time.time()))
                else:
                    results.rejected += 1
                    if results.first_error is None:
                        results.first_error = f"{status}: {payload[:300]!r}"
        finally:
            await conn.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return results, max(time.perf_counter() - start, 1e-9)
