"""The idempotent consumer: inbox row + effects + new events in one transaction.

Errors have a home: a contract violation or a domain rule dead-letters the message with its
reason; a concurrency conflict retries at once (the handler reloads); a transient database error
backs off and retries (the partition waits, nothing is skipped); any other error is retried a
bounded number of times and then dead-lettered, so a poison message never stalls a partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts.registry import EVENT_CLASSES, AnyEvent, ContractError, parse_event
from eventcore.deadletter import DeadLetters, IncomingMessage
from eventcore.logs import log_context
from eventcore.failpoints import hit_async
from eventcore.metrics import CoreMetrics
from eventcore.store import ConcurrencyError
from eventcore.telemetry import current_traceparent

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Any], Awaitable[None]]

TRANSIENT_DB_ERRORS = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,  # admin or crash shutdown mid-statement
    asyncpg.TooManyConnectionsError,
)


class DomainRejection(Exception):
    """A business rule refuses the event. The message must say why and carry no personal data."""


@dataclass(frozen=True, slots=True)
class ConsumeOutcome:
    status: str  # applied | duplicate | ignored | dead_lettered
    reason: str | None = None


class IdempotentConsumer:
    def __init__(
        self,
        *,
        name: str,
        pool: asyncpg.Pool,
        handlers: Mapping[str, Handler],
        dead_letters: DeadLetters,
        max_attempts: int = 3,
        max_backoff_s: float = 5.0,
        metrics: CoreMetrics | None = None,
    ) -> None:
        self.name = name
        self._pool = pool
        self._handlers = handlers
        self._dead_letters = dead_letters
        self._max_attempts = max_attempts
        self._max_backoff_s = max_backoff_s
        self._metrics = metrics

    async def process(self, message: IncomingMessage) -> ConsumeOutcome:
        outcome = await self._process(message)
        if self._metrics is not None:
            header = dict(message.headers).get("ce_type", b"").decode("utf-8", "replace")
            kind = header if header in EVENT_CLASSES else "unknown"  # labels never carry input
            self._metrics.consumed.add(1, {"consumer": self.name, "type": kind,
                                           "outcome": outcome.status})
            if outcome.status == "dead_lettered":
                self._metrics.dead_letters.add(1, {"consumer": self.name})
        return outcome

    async def _process(self, message: IncomingMessage) -> ConsumeOutcome:
        try:
            event = parse_event(message.value)
        except ContractError as exc:
            return await self._dead_letter(message, str(exc), None, attempts=1)
        handler = self._handlers.get(event.type)
        if handler is None:
            return ConsumeOutcome("ignored")
        with log_context(event_id=str(event.id), event_type=event.type,
                         correlation_id=event.correlationid):
            return await self._handle(message, handler, event)

    async def _handle(self, message: IncomingMessage, handler: Handler, event: AnyEvent
                      ) -> ConsumeOutcome:
        failures = 0
        while True:
            try:
                applied = await self._apply(handler, event)
                return ConsumeOutcome("applied" if applied else "duplicate")
            except DomainRejection as exc:
                reason = f"{event.type} rejected by {self.name}: {exc}"
                return await self._dead_letter(message, reason, event, attempts=failures + 1)
            except ConcurrencyError:
                failures += 1
                if failures >= self._max_attempts * 3:
                    reason = f"{event.type}: concurrency conflict persisted after {failures} tries"
                    return await self._dead_letter(message, reason, event, attempts=failures)
            except TRANSIENT_DB_ERRORS as exc:
                # The database is away: wait for it rather than dead-letter good messages.
                delay = min(0.1 * 2 ** min(failures, 6), self._max_backoff_s)
                log.warning("%s: %s on %s, retrying in %.1fs", self.name,
                            type(exc).__name__, event.id, delay)
                await asyncio.sleep(delay)
            except Exception as exc:  # noqa: BLE001 - poison messages must not stall the partition
                failures += 1
                log.error("%s: %s handling %s (attempt %d)", self.name,
                          type(exc).__name__, event.id, failures)
                if failures >= self._max_attempts:
                    reason = f"{event.type}: handler failed {failures} times ({type(exc).__name__})"
                    return await self._dead_letter(message, reason, event, attempts=failures)
                await asyncio.sleep(min(0.05 * 2**failures, self._max_backoff_s))

    async def _apply(self, handler: Handler, event: AnyEvent) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                "INSERT INTO inbox (consumer, event_id, event_type, source, sequence, outcome,"
                " traceparent) VALUES ($1, $2, $3, $4, $5, 'applied', $6)"
                " ON CONFLICT (consumer, event_id) DO NOTHING RETURNING true",
                self.name,
                event.id,
                event.type,
                event.source,
                event.sequence,
                current_traceparent() or event.traceparent,  # the consumer's span: see lineage
            )
            if not fresh:
                return False
            await hit_async("consumer.handler")
            await handler(conn, event)
            return True

    async def _dead_letter(
        self, message: IncomingMessage, reason: str, event: AnyEvent | None, *, attempts: int
    ) -> ConsumeOutcome:
        await self._dead_letters.send(message, reason=reason, attempts=attempts)
        log.warning("%s: dead-lettered message from %s[%d]@%d: %s", self.name, message.topic,
                    message.partition, message.offset, reason)
        if event is not None:
            await self._remember_dead_letter(event)
        return ConsumeOutcome("dead_lettered", reason)

    async def _remember_dead_letter(self, event: AnyEvent) -> None:
        """Best effort: a redelivered dead letter is then skipped instead of sent again."""
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(
                    "INSERT INTO inbox (consumer, event_id, event_type, source, sequence, outcome)"
                    " VALUES ($1, $2, $3, $4, $5, 'dead_lettered') ON CONFLICT DO NOTHING",
                    self.name, event.id, event.type, event.source, event.sequence,
                )
        except Exception as exc:  # noqa: BLE001 - the letter is sent; failing here would loop
            # (e.g. a value the inbox cannot hold): the message would be redelivered, dead-lettered
            # again and again, and the partition would never move on.
            log.warning("%s: could not record dead letter of %s in inbox (%s)", self.name,
                        event.id, type(exc).__name__)
