"""Real Apache Kafka and PostgreSQL from testcontainers, where a Docker engine exists."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from eventcore.embedded.process import StackStartError

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
POSTGRES_IMAGE = "postgres:17"


def _require_docker() -> None:
    try:
        from testcontainers.core.docker_client import DockerClient
    except ImportError as exc:
        raise StackStartError(
            "GT_INFRA=testcontainers needs the dev extra (testcontainers[kafka,postgres])"
        ) from exc
    try:
        DockerClient().client.ping()
    except Exception as exc:  # docker-py raises several unrelated types here
        raise StackStartError(
            "GT_INFRA=testcontainers needs a running Docker engine, and none answered "
            f"({exc}). Unset GT_INFRA to use the embedded stack instead."
        ) from exc


class Containers:
    """Kafka and/or PostgreSQL containers; started and stopped in worker threads (blocking API)."""

    def __init__(self, *, kafka: bool, postgres: bool, database: str) -> None:
        self._want_kafka = kafka
        self._want_postgres = postgres
        self._database = database
        self._kafka: Any = None
        self._postgres: Any = None

    @property
    def bootstrap_servers(self) -> str:
        return str(self._kafka.get_bootstrap_server())

    @property
    def database_url(self) -> str:
        return str(self._postgres.get_connection_url(driver=None))

    def names(self) -> list[str]:
        wanted = [
            (self._want_kafka, "Kafka container"),
            (self._want_postgres, "PostgreSQL container"),
        ]
        return [name for want, name in wanted if want]

    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    async def stop(self) -> None:
        await asyncio.to_thread(self._stop)

    def _start(self) -> None:
        _require_docker()
        from testcontainers.community.kafka import KafkaContainer
        from testcontainers.community.postgres import PostgresContainer

        try:
            if self._want_kafka:
                self._kafka = KafkaContainer(KAFKA_IMAGE).with_kraft().start()
            if self._want_postgres:
                self._postgres = PostgresContainer(
                    POSTGRES_IMAGE,
                    username="postgres",
                    password="postgres",
                    dbname=self._database,
                    driver=None,
                ).start()
        except BaseException:
            self._stop()
            raise

    def _stop(self) -> None:
        for container in (self._kafka, self._postgres):
            if container is not None:
                with contextlib.suppress(Exception):  # best effort; Ryuk reaps leftovers
                    container.stop()
        self._kafka = self._postgres = None
