"""Merge each source's events back into sequence order, whatever order they arrive in.

A source's events are spread over topics and partitions (the key is the subject), so they
arrive interleaved and out of order. Each source is a lane: events wait in a buffer until the
next expected sequence arrives, so memory follows the window of disorder, not the history.
An exact redelivery (same id, sequence and hash, contents intact) is a duplicate, not a break:
the outbox relay re-sends a batch after a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from golden_thread.audit.model import AuditBreak, BreakKind
from golden_thread.audit.nodes import show
from golden_thread.audit.record import Rec

Event = Rec
#: Where an already replayed event id (`UUID.int`) sits: (source, sequence, hash bytes), or None.
PositionLookup = Callable[[int], "tuple[str, int, bytes] | None"]
BreakSink = Callable[[AuditBreak], None]

_MAX_SKIPPED_REMEMBERED = 10_000


@dataclass(slots=True)
class Lane:
    """One source's ordering state."""

    next: int = 1
    buffer: dict[int, Event] = field(default_factory=dict)
    cut: int | None = None  # first sequence recorded after --as-of: it and later are left out
    duplicates: int = 0
    after_as_of: int = 0
    skipped: set[int] = field(default_factory=set)  # sequences jumped over as missing

    def below_cut(self, sequence: int) -> bool:
        return self.cut is None or sequence < self.cut


class Sequencer:
    """Releases each source's events in sequence order; reports duplicates and conflicts."""

    def __init__(
        self,
        positions: PositionLookup,
        on_break: BreakSink,
        *,
        max_buffered: int = 100_000,
    ) -> None:
        self._positions = positions
        self._on_break = on_break
        self._max_buffered = max_buffered
        self.lanes: dict[str, Lane] = {}
        self.buffered = 0
        self.peak_buffered = 0

    def offer(self, event: Event) -> list[Event]:
        """Take one arrival; return the events now ready, in their source's order."""
        lane = self.lanes.get(event.source)
        if lane is None:
            lane = self.lanes[event.source] = Lane()
        sequence = event.sequence
        if event.late:  # recorded after --as-of
            lane.cut = sequence if lane.cut is None else min(lane.cut, sequence)
        if not lane.below_cut(sequence):
            lane.after_as_of += 1
            return []
        if sequence == lane.next and not lane.buffer:  # in order, as from a store
            lane.next += 1
            return [event]
        if sequence < lane.next:
            self._repeat(lane, event)
            return []
        waiting = lane.buffer.get(sequence)
        if waiting is not None:
            self._compare(lane, waiting, event)
            return []
        lane.buffer[sequence] = event
        self.buffered += 1
        self.peak_buffered = max(self.peak_buffered, self.buffered)
        released = self._drain(lane)
        if self.buffered > self._max_buffered:
            released.extend(self._skip_gap(max(self.lanes.values(), key=lambda x: len(x.buffer))))
        return released

    def finish(self) -> list[Event]:
        """Release what is still waiting: each hole left is a missing event (a gap)."""
        released: list[Event] = []
        for lane in self.lanes.values():
            for sequence in [s for s in lane.buffer if not lane.below_cut(s)]:
                del lane.buffer[sequence]
                self.buffered -= 1
                lane.after_as_of += 1
            while lane.buffer:
                released.extend(self._skip_gap(lane))
        return released

    def _drain(self, lane: Lane) -> list[Event]:
        released: list[Event] = []
        while lane.next in lane.buffer and lane.below_cut(lane.next):
            released.append(lane.buffer.pop(lane.next))
            self.buffered -= 1
            lane.next += 1
        return released

    def _skip_gap(self, lane: Lane) -> list[Event]:
        """Give up waiting for the next sequence: release from the lowest one that arrived."""
        lowest = min(lane.buffer)
        if len(lane.skipped) < _MAX_SKIPPED_REMEMBERED:
            lane.skipped.update(range(lane.next, min(lowest, lane.next + 100)))
        lane.next = lowest
        return self._drain(lane)

    def _repeat(self, lane: Lane, event: Event) -> None:
        known = self._positions(event.id)
        if known is not None and known == (event.source, event.sequence, event.hash):
            self._duplicate_or_altered(lane, event)
        elif event.sequence in lane.skipped:
            self._conflict(event, "arrived after later events of its source had been replayed "
                                  "(beyond the disorder window; raise --max-buffered)")
        else:
            self._conflict(event, f"sequence {event.sequence} was already replayed as another "
                                  "event: a forged or conflicting copy")

    def _compare(self, lane: Lane, waiting: Event, event: Event) -> None:
        if waiting.id == event.id and waiting.hash == event.hash:
            self._duplicate_or_altered(lane, event)
        else:
            self._conflict(event, f"sequence {event.sequence} is claimed by two different "
                                  "events: a forged or conflicting copy")

    def _duplicate_or_altered(self, lane: Lane, event: Event) -> None:
        # Same id, position and stated hash: a redelivery, if its contents are intact.
        if event.intact:
            lane.duplicates += 1
        else:
            self._conflict(event, "a redelivered copy whose contents were altered")

    def _conflict(self, event: Event, reason: str) -> None:
        self._on_break(AuditBreak(BreakKind.CONFLICT, event.source, event.sequence,
                                  show(event.id), reason, event.recorded))
