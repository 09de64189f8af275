"""EmbeddedStack: a broker and a database for one machine, started only where settings name none."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

from aiokafka.errors import KafkaError

from eventcore.embedded.broker import TansuBroker
from eventcore.embedded.containers import Containers
from eventcore.embedded.endpoints import StackEndpoints
from eventcore.embedded.postgres import EmbeddedPostgres
from eventcore.embedded.process import StackControlError, StackStartError
from eventcore.embedded.topics import create_topics, delete_topics, existing_topics
from eventcore.embedded.workdir import make_temp_work_dir
from eventcore.settings import CoreSettings

Infra = Literal["embedded", "testcontainers"]
T = TypeVar("T")
DATABASE_NAME = "golden_thread"
log = logging.getLogger(__name__)
TANSU_FETCH_MAX_WAIT_MS = 10


def infra_mode(settings: CoreSettings) -> Infra:
    """`settings.infra` if the settings grow one, else GT_INFRA, else embedded."""
    mode = getattr(settings, "infra", None) or os.environ.get("GT_INFRA") or "embedded"
    if mode not in ("embedded", "testcontainers"):
        raise StackStartError(f"GT_INFRA must be 'embedded' or 'testcontainers', not {mode!r}")
    return "testcontainers" if mode == "testcontainers" else "embedded"


class EmbeddedStack:
    """Async context manager yielding StackEndpoints; see the package docstring."""

    def __init__(
        self, settings: CoreSettings, *, topics: Sequence[str] = (), work_dir: Path | None = None
    ) -> None:
        self._settings = settings
        self._topics = tuple(topics)
        self._given_work_dir = work_dir
        self._work_dir: Path | None = None
        self._broker: TansuBroker | None = None
        self._postgres: EmbeddedPostgres | None = None
        self._containers: Containers | None = None
        self._endpoints: StackEndpoints | None = None

    @property
    def endpoints(self) -> StackEndpoints:
        if self._endpoints is None:
            raise RuntimeError("the stack is not running; use `async with EmbeddedStack(...)`")
        return self._endpoints

    @property
    def work_dir(self) -> Path | None:
        """Holds the children's logs and PostgreSQL's data; None when nothing was started."""
        return self._work_dir

    def started(self) -> list[str]:
        """What this stack runs itself, e.g. ["Tansu broker", "PostgreSQL"]; [] if all external."""
        names = [c.process.name for c in (self._broker, self._postgres) if c is not None]
        return names + (self._containers.names() if self._containers is not None else [])

    def child_pids(self) -> list[int]:
        """Pids of the broker and postmaster this stack started and that are running."""
        children = [c.process for c in (self._broker, self._postgres) if c is not None]
        return [c.pid for c in children if c.running and c.pid is not None]

    async def __aenter__(self) -> StackEndpoints:
        try:
            self._endpoints = await self._start()
        except BaseException:
            await self._shutdown()
            raise
        return self._endpoints

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

    async def _start(self) -> StackEndpoints:
        s = self._settings
        need_kafka = not s.kafka_bootstrap_servers
        need_postgres = not s.database_url
        if infra_mode(s) == "testcontainers" and (need_kafka or need_postgres):
            self._containers = Containers(
                kafka=need_kafka, postgres=need_postgres, database=DATABASE_NAME
            )
            await self._containers.start()
        else:
            work_dir = self._make_work_dir() if need_kafka or need_postgres else None
            if work_dir is not None and need_kafka:
                self._broker = TansuBroker(work_dir)
            if work_dir is not None and need_postgres:
                self._postgres = EmbeddedPostgres(work_dir, database=DATABASE_NAME)
            await self._start_children()
        endpoints = self._resolve_endpoints()
        await self._create_topics(endpoints.kafka_bootstrap_servers)
        return endpoints

    async def _start_children(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:  # both at once; one failing stops the other
                for child in (self._broker, self._postgres):
                    if child is not None:
                        group.create_task(child.start())
        except BaseExceptionGroup as failed:
            # Callers catch StackStartError, not a group; the first failure is the story.
            raise failed.exceptions[0] from None

    def _make_work_dir(self) -> Path:
        if self._given_work_dir is not None:
            self._given_work_dir.mkdir(parents=True, exist_ok=True)
            self._work_dir = self._given_work_dir.resolve()
        else:
            self._work_dir = make_temp_work_dir()
        return self._work_dir

    def _resolve_endpoints(self) -> StackEndpoints:
        s = self._settings
        if s.kafka_bootstrap_servers:
            kafka = (
                s.kafka_bootstrap_servers,
                s.kafka_enable_idempotence,
                s.kafka_fetch_max_wait_ms,
            )
        elif self._broker is not None:
            kafka = (self._broker.bootstrap_servers, False, TANSU_FETCH_MAX_WAIT_MS)
        else:
            assert self._containers is not None
            kafka = (self._containers.bootstrap_servers, True, s.kafka_fetch_max_wait_ms)
        if s.database_url:
            database_url = s.database_url
        elif self._postgres is not None:
            database_url = self._postgres.url()
        else:
            assert self._containers is not None
            database_url = self._containers.database_url
        return StackEndpoints(
            kafka_bootstrap_servers=kafka[0],
            database_url=database_url,
            kafka_enable_idempotence=kafka[1],
            kafka_fetch_max_wait_ms=kafka[2],
        )

    async def _create_topics(self, bootstrap_servers: str) -> None:
        await create_topics(
            bootstrap_servers,
            self._topics,
            partitions=self._settings.topic_partitions,
            replication_factor=self._settings.topic_replication_factor,
        )

    async def _shutdown(self) -> None:
        try:
            if self._broker is not None:
                await self._broker.stop()
            if self._postgres is not None:
                await self._postgres.stop_fast()
            if self._containers is not None:
                await self._containers.stop()
        finally:
            self._endpoints = None
            if self._work_dir is not None and self._given_work_dir is None:
                shutil.rmtree(self._work_dir, ignore_errors=True)

    # Fault injection, for reliability tests.

    async def restart_broker(self) -> None:
        """kill -9 the broker and start it on the same port. Its memory storage comes back empty,
        so the topics it had (and the stack's own) are created again; messages are lost.

        Tansu creates a topic a client asks about with 4 partitions, and the services' clients
        ask as soon as the port answers: a topic they re-create first would come back with
        another partition count than the consumers know (and than they would rebalance to), so
        such a topic, still empty, is deleted and created again with its own count."""
        broker = self._started("broker", self._broker)
        try:
            had = await existing_topics(broker.bootstrap_servers)
        except KafkaError:
            had = {}  # an unresponsive broker: recreate at least the stack's topics
        wanted = {**{name: self._settings.topic_partitions for name in self._topics}, **had}
        await broker.crash_and_restart()
        for _ in range(20):
            for partitions in sorted(set(wanted.values())):
                names = [name for name, count in wanted.items() if count == partitions]
                await create_topics(broker.bootstrap_servers, names, partitions=partitions)
            now = await existing_topics(broker.bootstrap_servers)
            wrong = [name for name, count in wanted.items() if now.get(name, count) != count]
            if not wrong:
                return
            log.warning("broker restart: %s came back with other partition counts; recreating",
                        ", ".join(sorted(wrong)))
            await delete_topics(broker.bootstrap_servers, wrong)
        raise RuntimeError("broker restart: topics keep coming back with other partition counts")

    async def stop_database(self) -> None:
        """Fast shutdown, keeping the data directory."""
        await self._started("database", self._postgres).stop_fast()

    async def start_database(self) -> None:
        """Start again on the same port with the same data."""
        await self._started("database", self._postgres).start()

    async def restart_database(self) -> None:
        await self.stop_database()
        await self.start_database()

    def _started(self, what: str, child: T | None) -> T:
        if child is None:
            raise StackControlError(
                f"this stack did not start the {what} (it was named by settings or runs in a "
                "container), so it cannot stop or restart it"
            )
        return child
