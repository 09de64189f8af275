"""What an idempotent consumer holds of a batch between reading it and applying it
(`IdempotentConsumer.prepare` and `apply`), and the outcome of each message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry.trace import Span

from contracts.registry import AnyEvent
from eventcore.deadletter import IncomingMessage

if TYPE_CHECKING:
    from eventcore.consumer import Handler


@dataclass(frozen=True, slots=True)
class ConsumeOutcome:
    status: str  # applied | duplicate | ignored | dead_lettered
    reason: str | None = None


# Shared: a frozen instance per message cost more than deciding the outcome (profiled).
APPLIED, DUPLICATE, IGNORED = (ConsumeOutcome(s) for s in ("applied", "duplicate", "ignored"))


#: How often `IdempotentConsumer.prepare` lets the event loop run, in messages (≈ 5 ms of
#: parsing): often enough for the batch applying meanwhile to go on (in an A/B, every 100 was
#: ahead of every 500 for priority), seldom enough to cost nothing measurable.
YIELD_EVERY = 100


@dataclass(slots=True)
class Item:
    """A parsed message of a batch, with the span its effects are traced under."""

    index: int
    message: IncomingMessage
    event: AnyEvent
    handler: Handler
    span: Span


@dataclass(slots=True)
class PreparedBatch:
    """A batch parsed and checked but not applied (`IdempotentConsumer.prepare`)."""

    messages: Sequence[IncomingMessage]
    outcomes: list[ConsumeOutcome | None]
    #: The parsed type of each message, for the metrics (None: it did not parse).
    kinds: list[str | None]
    #: The messages with a handler, each with the span its effects are traced under.
    items: list[Item]
    #: (index, reason) of each message that broke its contract: dead-lettered by `apply`.
    violations: list[tuple[int, str]]
    finished: bool = False

    def finish(self) -> None:
        """End the batch's spans: once, when it is applied or abandoned (calling it again does
        nothing). Its events are freed with the batch (`stream.BatchPipeline` lets the next
        batch's transaction start first)."""
        if not self.finished:
            self.finished = True
            for item in self.items:
                item.span.end()
