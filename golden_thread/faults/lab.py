"""The fault lab: the embedded stack (real broker, real PostgreSQL), an SMTP sink, and every
service as its own supervised process, set up like the demo's, with short timeouts so that
recovery is quick enough to measure."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import asyncpg

from contracts.topics import ALL_TOPICS
from eventcore.embedded import EmbeddedStack
from eventcore.settings import CoreSettings
from golden_thread.demo.mailbox import MailServer
from golden_thread.demo.processes import free_port
from golden_thread.faults.fleet import SERVICES, Fleet
from services.intake.adapters.vault import new_master_key

# Short group timeouts (a killed consumer's partitions move on quickly), quick broker checks
# (an in-memory broker's restart is noticed within a second or two), and a short send lease
# (a notification claimed just before its sender died is sent again within the run), and quick
# metadata refreshes (a topic Tansu auto-created with 4 partitions in the moment after a broker
# restart, before the stack re-created it with 3, is consumed whole within the run).
LAB_SETTINGS = {
    "GT_KAFKA_METADATA_MAX_AGE_MS": "3000",
    "GT_KAFKA_SESSION_TIMEOUT_MS": "3000",
    "GT_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    "GT_RELAY_POLL_INTERVAL_S": "0.2",
    "GT_RELAY_BROKER_CHECK_INTERVAL_S": "1.0",
    "GT_FEEDBACK_SCHEDULER_INTERVAL_S": "0.3",
    "GT_FEEDBACK_SEND_LEASE_S": "10",
}


async def _json_codecs(conn: asyncpg.Connection) -> None:
    for codec in ("json", "jsonb"):
        await conn.set_type_codec(codec, encoder=json.dumps, decoder=json.loads,
                                  schema="pg_catalog")


class Lab:
    def __init__(self, work_dir: Path | None = None) -> None:
        self._own_work = work_dir is None
        self.work = work_dir or Path(tempfile.mkdtemp(prefix="golden-thread-faults-"))
        self.mail = MailServer()
        self.stack = EmbeddedStack(CoreSettings(), topics=ALL_TOPICS, work_dir=self.work / "stack")
        self.env: dict[str, str] = {}
        self.fleet: Fleet | None = None
        self.pool: asyncpg.Pool | None = None
        self.bootstrap = ""

    async def __aenter__(self) -> Self:
        self.mail.__enter__()
        try:
            endpoints = await self.stack.__aenter__()
            self.bootstrap = endpoints.kafka_bootstrap_servers
            self.env = {**endpoints.as_env(), **self._secrets(), **LAB_SETTINGS,
                        "GT_FEEDBACK_SMTP_HOST": "127.0.0.1",
                        "GT_FEEDBACK_SMTP_PORT": str(self.mail.port),
                        "PYTHONPATH": ":".join(p for p in sys.path if p)}
            self.pool = await asyncpg.create_pool(endpoints.database_url, min_size=0, max_size=4,
                                                  init=_json_codecs)
            await self._start_fleet()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    @staticmethod
    def _secrets() -> dict[str, str]:
        # Every service verifies bearer tokens with this key; feedback mints its own machine
        # token from it to read contact details from intake, and the load mints users' tokens.
        return {"GT_INTAKE_VAULT_MASTER_KEY": new_master_key(),
                "GT_AUTH_JWT_SECRET": secrets.token_urlsafe(48)}

    async def _start_fleet(self) -> None:
        intake_port = free_port()  # known up front, so all four start at once
        self.env["GT_FEEDBACK_INTAKE_URL"] = f"http://127.0.0.1:{intake_port}"
        self.fleet = Fleet(self.env, self.work)
        self.fleet.add("intake", port=intake_port)
        for name in SERVICES[1:]:
            self.fleet.add(name)
        await asyncio.gather(*(self.fleet[n].wait_ready() for n in SERVICES))
        self.fleet.supervise()

    @property
    def services(self) -> Fleet:
        assert self.fleet is not None, "the lab is not running"
        return self.fleet

    def urls(self) -> dict[str, str]:
        return self.services.urls()

    async def wait_all_ready(self, timeout_s: float = 90.0) -> None:
        await asyncio.gather(*(i.wait_ready(timeout_s) for i in self.services.instances.values()))

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """A query on the lab's database that rides out a restarting PostgreSQL."""
        for attempt in range(60):
            try:
                assert self.pool is not None
                return list(await self.pool.fetch(sql, *args))
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                    asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError):
                if attempt == 59:
                    raise
                await asyncio.sleep(0.5)
        raise AssertionError("unreachable")

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.services[name].log_path
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            if self.fleet is not None:
                await self.fleet.close()
            if self.pool is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.pool.close(), 5)
            await self.stack.__aexit__(exc_type, exc, tb)
        finally:
            self.mail.__exit__()
            if self._own_work:
                shutil.rmtree(self.work, ignore_errors=True)
