"""The HTTP floor: what a service that does almost nothing reaches on this machine, so that
intake's ratio can be read against what any service on this stack could reach.

    python -m golden_thread.bench.floor --seconds 10

Three servers, each `golden-thread serve`'s runtime (uvicorn, uvloop, httptools, no access log)
and each driven as intake is in the bench (8 keep-alive clients, the same POST /conversations
bodies, closed loop):

- `http.floor_asgi`: a bare ASGI app that reads the body and answers 201;
- `http.floor_fastapi`: FastAPI validating the body into intake's `LogConversation` command
  and answering 201 (no auth, no database);
- `http.floor_fastapi_insert`: the same, plus one INSERT of an event-sized body (the ~1.4 kB
  the raw limits write; nothing of the request, whose contact details intake would seal), its
  own transaction, on a pool as a service's (`eventcore.db.create_pool`, 10 connections at most,
  its problem handlers installed as a service's are).

The last is the least any intake could do per conversation with FastAPI and PostgreSQL; intake
does much more (bearer tokens, a vault key and sealed contact per new participant, the event
chained, two read models, the relay publishing, telemetry). Each is reported with the CPU
milliseconds per request of the server, PostgreSQL and the load generator. The bench's `floor`
phase measures them just before the intake phase (docs/performance.md finding 90).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uvloop
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from eventcore.db import create_pool
from eventcore.http import install_problem_handlers
from eventcore.service_app import NO_FASTAPI_TELEMETRY
from golden_thread.bench import http_load
from golden_thread.bench.context import Context
from golden_thread.bench.fixtures import Drafts, conversation_bodies
from golden_thread.bench.infra import CpuMeter, create_database, drop_database, start_process
from golden_thread.bench.report import RawLimit
from golden_thread.demo.processes import free_port
from golden_thread.services import run_app

# Imported here, not in `_fastapi_app`: FastAPI resolves the endpoint's annotations (strings,
# with `from __future__ import annotations`) in this module's globals.
from services.intake.domain.commands import LogConversation

KINDS = ("asgi", "fastapi", "fastapi_insert")
LABELS = {
    "asgi": "bare ASGI app on uvicorn: read the body, answer 201",
    "fastapi": "FastAPI: body validated as LogConversation, answer 201",
    "fastapi_insert": "FastAPI: body validated, one INSERT per request (own txn), answer 201",
}
_SCHEMA = "bench_floor"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Scope]]
Send = Callable[[Scope], Awaitable[None]]


def _bare_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        out = orjson.dumps({"id": str(uuid.uuid4()), "status": "ok"})
        status = 200 if scope["method"] == "GET" else 201
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})
    return app


def _fastapi_app(database_url: str | None) -> Any:
    pools: list[asyncpg.Pool] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if database_url is not None:
            conn = await asyncpg.connect(database_url)
            try:
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_SCHEMA}; CREATE TABLE IF NOT "
                                   f"EXISTS {_SCHEMA}.floor (id uuid PRIMARY KEY, body json)")
            finally:
                await conn.close()
            pools.append(await create_pool(database_url, _SCHEMA, max_size=10))
        yield
        for pool in pools:
            await pool.close()

    app = FastAPI(lifespan=lifespan, telemetry=NO_FASTAPI_TELEMETRY)  # as a service's
    install_problem_handlers(app)  # a refusal names fields, never echoes the body
    body = Drafts().body_json()

    @app.post("/conversations", status_code=201)
    async def post(cmd: LogConversation) -> JSONResponse:
        if pools:
            async with pools[0].acquire() as conn:
                await conn.execute("INSERT INTO floor VALUES ($1, $2::text::json)", uuid.uuid4(),
                                   body)
        return JSONResponse({"id": str(uuid.uuid4())}, status_code=201)

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve(kind: str, port: int, database_url: str | None) -> None:
    """One floor server, on the runtime `golden-thread serve` uses."""
    app = _bare_app() if kind == "asgi" else _fastapi_app(
        database_url if kind == "fastapi_insert" else None)
    run_app(app, "127.0.0.1", port)


async def measure(database_url: str, seconds: float, log_dir: Path,
                  meter: Callable[[int], CpuMeter], *, clients: int = 8, warmup_s: float = 1.0
                  ) -> list[RawLimit]:
    """Every floor in turn (`measure_one`)."""
    return [await measure_one(kind, database_url, seconds, log_dir, meter, clients=clients,
                              warmup_s=warmup_s) for kind in KINDS]


async def measure_one(kind: str, database_url: str, seconds: float, log_dir: Path,
                      meter: Callable[[int], CpuMeter], *, clients: int = 8,
                      warmup_s: float = 1.0) -> RawLimit:
    """Requests per second one floor server accepts, driven as the bench drives intake;
    `meter(server_pid)` gives the CPU meter of the server (with PostgreSQL and the client)."""
    port = free_port()
    proc = start_process(f"floor-{kind}", ["-m", "golden_thread.bench.floor", "serve", kind,
                                            "--port", str(port), "--database-url",
                                            database_url], {}, log_dir, port)
    try:
        await proc.wait_ready(60)
        cpu_meter = meter(proc.process.pid)
        started = asyncio.get_running_loop().call_later(warmup_s, cpu_meter.start)
        results, took = await http_load.drive(
            proc.url, itertools.cycle(list(conversation_bodies(2_000))), clients=clients,
            seconds=seconds, warmup_s=warmup_s)
        started.cancel()
        cpu = cpu_meter.stop(results.accepted)
    finally:
        proc.stop(timeout_s=10.0)
    if results.accepted == 0 or results.rejected:
        raise RuntimeError(f"floor {kind}: {results.accepted} accepted, {results.rejected} "
                           f"rejected; first error {results.first_error}")
    return RawLimit(f"http.floor_{kind}", LABELS[kind], results.accepted / took, "req/s",
                    {"clients": clients, "seconds": round(took, 2), "cpu_ms_per_request": cpu})


async def phase(ctx: Context) -> None:
    """The bench's floor phase: the three floors as raw limits, on a database of their own;
    a floor that fails is a failure of its own, and the others are still measured."""
    url = await create_database(ctx.endpoints, "bench_floor")
    try:
        for kind in KINDS:
            try:
                floor = await measure_one(kind, url, min(ctx.plan.intake_seconds, 10.0),
                                          ctx.work, lambda pid: ctx.cpu_meter(server=pid),
                                          clients=ctx.plan.intake_clients,
                                          warmup_s=ctx.plan.intake_warmup_s)
            except Exception as exc:  # noqa: BLE001 - reported; the other floors go on
                ctx.report.failures.append(f"HTTP floor {kind}: {type(exc).__name__}: {exc}")
            else:
                ctx.report.add_raw(floor)
    finally:
        await drop_database(ctx.endpoints, url)


async def _main(seconds: float) -> None:
    from eventcore.embedded import EmbeddedStack
    from eventcore.settings import CoreSettings
    from golden_thread.bench import raw_pg
    from golden_thread.bench.infra import stack_pids

    work = Path(tempfile.mkdtemp(prefix="gt-floor-"))
    try:
        stack = EmbeddedStack(CoreSettings(), topics=[], work_dir=work / "stack")
        async with stack as endpoints:
            url = await create_database(endpoints, "floor")
            raw = {r.key: r for r in await raw_pg.measure(url, Drafts().body_json(), seconds)}
            limit = raw["pg.txn_single_8conn"]
            pg_pid = stack_pids(stack)["postgres"]
            floors = await measure(url, seconds, work, lambda pid: CpuMeter(
                {"server": pid, "postgres": pg_pid, "bench client": os.getpid()},
                recursive=frozenset({"postgres"})))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{limit.key:28s} {limit.value:9,.0f} {limit.unit}")
    for floor in floors:
        cpu = floor.detail["cpu_ms_per_request"]
        per = ", ".join(f"{name} {v['user_ms'] + v['system_ms']:.3f}" for name, v in cpu.items())
        print(f"{floor.key:28s} {floor.value:9,.0f} {floor.unit}  ratio to "
              f"{limit.key} {floor.value / limit.value:.2f}  CPU ms per request: {per}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("serve", help="serve one floor app (the bench starts these)")
    one.add_argument("kind", choices=KINDS)
    one.add_argument("--port", type=int, required=True)
    one.add_argument("--database-url")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.kind, args.port, args.database_url)
    else:
        uvloop.run(_main(args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
