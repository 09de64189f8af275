"""Idempotent topic creation, for the embedded broker and for real Kafka alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

_TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno


async def create_topics(
    bootstrap_servers: str,
    topics: Sequence[str],
    *,
    partitions: int,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> None:
    """Create the topics that do not exist yet; existing topics are left as they are."""
    wanted = list(dict.fromkeys(topics))  # de-duplicated, order kept
    if not wanted:
        return
    admin = await _connected_admin(bootstrap_servers, timeout_s)
    try:
        missing = [name for name in wanted if name not in set(await admin.list_topics())]
        if not missing:
            return
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication_factor) for name in missing]
        )
        # The response reports errors per topic rather than raising them.
        for error in response.topic_errors:
            name, code = error[0], error[1]
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                message = error[2] if len(error) > 2 else ""
                raise for_code(code)(f"could not create topic {name!r}: {message}")
    finally:
        await admin.close()


async def delete_topics(bootstrap_servers: str, topics: Sequence[str], *,
                        timeout_s: float = 10.0) -> None:
    """Delete these topics (their messages with them)."""
    if not topics:
        return
    admin = await _connected_admin(bootstrap_servers, timeout_s)
    try:
        await admin.delete_topics(list(topics))
    finally:
        await admin.close()


async def _connected_admin(bootstrap_servers: str, timeout_s: float) -> AIOKafkaAdminClient:
    # A broker that has just (re)started may refuse the first connections.
    deadline = time.monotonic() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
        try:
            await admin.start()
            return admin
        except KafkaError:
            await admin.close()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def existing_topics(bootstrap_servers: str, *, timeout_s: float = 5.0) -> dict[str, int]:
    """Topic name -> partition count, without internal topics (`__consumer_offsets`)."""
    admin = await _connected_admin(bootstrap_servers, timeout_s)
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return {
        str(t["topic"]): len(t["partitions"])
        for t in described
        if not str(t["topic"]).startswith("__") and t["partitions"]
    }
