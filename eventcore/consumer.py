"""The idempotent consumer: inbox row + effects + new events in one transaction.

Messages come in batches (a batch subscriber, `consumer_batch_max_records`): a batch is applied
in ONE transaction — every inbox row by one statement, then each fresh event's handler in order
on the same connection — and its offsets are committed once. Should anything in it fail, the
transaction rolls back as a whole and each message of the batch takes the one-message path
below, so dead letters, retries and back-off mean exactly what they mean for a single message.

Errors have a home: a contract violation or a domain rule dead-letters the message with its
reason; a concurrency conflict retries at once (the handler reloads); a transient database error
backs off and retries (the partition waits, nothing is skipped); any other error is retried a
bounded number of times and then dead-lettered, so a poison message never stalls a partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import Span

from contracts.registry import EVENT_CLASSES, AnyEvent, ContractError, parse_event
from eventcore.deadletter import DeadLetters, IncomingMessage
from eventcore.failpoints import hit_async
from eventcore.inbox import claim, claim_many, remember_dead_letter
from eventcore.logs import log_context
from eventcore.metrics import CoreMetrics
from eventcore.prepared import (
    APPLIED,
    DUPLICATE,
    IGNORED,
    YIELD_EVERY,
    ConsumeOutcome,
    Item,
    PreparedBatch,
)
from eventcore.store import ConcurrencyError
from eventcore.telemetry import current_traceparent
from eventcore.tracecontext import start_consumer_span, traceparent_of

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Any], Awaitable[None]]
#: Applies a run of consecutive fresh events of one type at once (say, one INSERT ... SELECT
#: FROM json_to_recordset).
#: It must do exactly what the type's `Handler` would do for each, in order; raising rolls the
#: batch back, and the one-message path (with the `Handler`) then finds the culprit.
BatchHandler = Callable[[asyncpg.Connection, list[Any]], Awaitable[None]]

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
        tracer: trace.Tracer | None = None,
        batch_handlers: Mapping[str, BatchHandler] | None = None,
    ) -> None:
        self.name = name
        self._pool = pool
        self._handlers = handlers
        self._dead_letters = dead_letters
        self._max_attempts = max_attempts
        self._max_backoff_s = max_backoff_s
        self._metrics = metrics
        self._tracer = tracer or trace.get_tracer(__name__)
        self._batch_handlers = dict(batch_handlers or {})

    async def process(self, message: IncomingMessage) -> ConsumeOutcome:
        return (await self.process_batch([message]))[0]

    async def process_batch(self, messages: Sequence[IncomingMessage]) -> list[ConsumeOutcome]:
        """Apply a batch of messages in order; one outcome per message."""
        batch = await self.prepare(messages)
        try:
            return await self.apply(batch)
        finally:
            batch.finish()

    async def prepare(self, messages: Sequence[IncomingMessage]) -> PreparedBatch:
        """Parse and check each message and start the span of each event with a handler: CPU
        only, nothing written (contract violations are dead-lettered by `apply`). Yields to
        the event loop every `YIELD_EVERY` messages, so that a batch applying meanwhile
        (`stream.BatchPipeline`) goes on with its round trips."""
        batch = PreparedBatch(messages, [None] * len(messages), [None] * len(messages), [], [])
        try:
            for index, message in enumerate(messages):
                if index % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)
                try:
                    event = parse_event(message.value)
                except ContractError as exc:
                    batch.violations.append((index, str(exc)))
                    continue
                batch.kinds[index] = event.type
                handler = self._handlers.get(event.type)
                if handler is None:
                    batch.outcomes[index] = IGNORED
                    continue
                batch.items.append(
                    Item(index, message, event, handler, self._span_for(message, event)))
        except BaseException:
            batch.finish()
            raise
        return batch

    async def apply(self, batch: PreparedBatch) -> list[ConsumeOutcome]:
        """Dead-letter the batch's contract violations, then apply its events in one transaction
        (or each on its own path); one outcome per message; the spans are the caller's to end.
        If it raises (a dead letter not sent), calling it again goes on: violations already
        dead-lettered are not sent again, events applied are duplicates (and counted so), and
        a letter sent on the one-message path is skipped if its inbox row was written."""
        while batch.violations:
            index, reason = batch.violations[0]
            batch.outcomes[index] = await self._dead_letter(
                batch.messages[index], reason, None, attempts=1)
            del batch.violations[0]
        outcomes = batch.outcomes
        for item, outcome in zip(batch.items, await self._apply_each(batch.items), strict=True):
            outcomes[item.index] = outcome
        done = [o if o is not None else IGNORED for o in outcomes]
        self._count(batch.messages, batch.kinds, done)
        return done

    async def _apply_each(self, items: list[Item]) -> list[ConsumeOutcome]:
        if len(items) > 1:
            try:
                return await self._apply_batch(items)
            except Exception as exc:  # noqa: BLE001 - rolled back; each message on its own path
                log.info("%s: batch of %d rolled back (%s); applying one by one", self.name,
                         len(items), type(exc).__name__)
        results = []
        for item in items:
            with trace.use_span(item.span), _context_of(item.event):
                results.append(await self._handle(item.message, item.handler, item.event))
        return results

    async def _apply_batch(self, items: list[Item]) -> list[ConsumeOutcome]:
        """Every inbox row in one statement, then the fresh events' handlers, one transaction."""
        # Event ids keyed by their integer: a UUID's own hash is a Python call, an int's is not.
        first: dict[int, Item] = {}
        for item in items:
            first.setdefault(item.event.id.int, item)
        claims = list(first.values())
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await claim_many(
                conn, self.name, [i.event for i in claims],
                [traceparent_of(i.span) or i.event.traceparent for i in claims])
            fresh = {event_id.int for event_id in claimed}
            await self._run_handlers(conn, [i for i in claims if i.event.id.int in fresh])
        outcomes = []
        for item in items:
            key = item.event.id.int
            outcomes.append(APPLIED if key in fresh and first[key] is item else DUPLICATE)
        return outcomes

    async def _run_handlers(self, conn: asyncpg.Connection, items: list[Item]) -> None:
        """Each event's handler in order; a run of one type with a batch handler, at once."""
        start = 0
        while start < len(items):
            kind = items[start].event.type
            end = start + 1
            while end < len(items) and items[end].event.type == kind:
                end += 1
            batch_handler = self._batch_handlers.get(kind)
            if batch_handler is not None and end - start > 1:
                await hit_async("consumer.handler")
                await batch_handler(conn, [i.event for i in items[start:end]])
            else:
                for item in items[start:end]:
                    with trace.use_span(item.span), _context_of(item.event):
                        await hit_async("consumer.handler")
                        await item.handler(conn, item.event)
            start = end

    def _span_for(self, message: IncomingMessage, event: AnyEvent) -> Span:
        """The span this consumer applies `event` under: a child of the relay's publish span
        (the message's traceparent header), else of the trace stored with the event."""
        traceparent = tracestate = None
        for key, value in message.headers:  # a header with no value (None) is not there
            if key == "traceparent" and value is not None:
                traceparent = value.decode("latin-1")
            elif key == "tracestate" and value is not None:
                tracestate = value.decode("latin-1")
        if traceparent is None:
            traceparent, tracestate = event.traceparent, None
        return start_consumer_span(self._tracer, message.topic, traceparent, tracestate)

    def _count(self, messages: Sequence[IncomingMessage], kinds: list[str | None],
               outcomes: list[ConsumeOutcome]) -> None:
        """Messages by type and outcome: the parsed type, else the type header if it names one."""
        if self._metrics is None:
            return
        counts: Counter[tuple[str, str]] = Counter()
        for message, kind, outcome in zip(messages, kinds, outcomes, strict=True):
            if kind is None:
                header = next((v for k, v in message.headers if k == "ce_type"), b"") or b""
                named = header.decode("utf-8", "replace")
                kind = named if named in EVENT_CLASSES else "unknown"
            counts[kind, outcome.status] += 1
        for (kind, status), n in counts.items():  # labels never carry input
            self._metrics.consumed.add(n, {"consumer": self.name, "type": kind, "outcome": status})
            if status == "dead_lettered":
                self._metrics.dead_letters.add(n, {"consumer": self.name})

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
            # The consumer's span (see eventcore/lineage.py), else the event's own trace.
            if not await claim(conn, self.name, event, current_traceparent() or event.traceparent):
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
                await remember_dead_letter(conn, self.name, event)
        except Exception as exc:  # noqa: BLE001 - the letter is sent; failing here would loop
            # (e.g. a value the inbox cannot hold): the message would be redelivered, dead-lettered
            # again and again, and the partition would never move on.
            log.warning("%s: could not record dead letter of %s in inbox (%s)", self.name,
                        event.id, type(exc).__name__)


@contextmanager
def _context_of(event: AnyEvent) -> Iterator[None]:
    with log_context(event_id=str(event.id), event_type=event.type,
                     correlation_id=event.correlationid):
        yield

