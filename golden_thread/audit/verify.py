"""The replay itself: check each message on its own (`record`), put each source back in order,
verify its chain links as `contracts.ChainVerifier` does, fold it into the influence graph, and
collect the breaks.

Pure: it is fed raw messages by whatever reads them (broker, event stores, a file, memory).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.chain import GENESIS_HASH, ChainHead
from contracts.envelope import Envelope
from golden_thread.audit.graph import InfluenceGraph
from golden_thread.audit.model import AuditBreak, BreakKind, SourceSummary, Verification
from golden_thread.audit.nodes import show
from golden_thread.audit.record import TYPE_NAMES, Rec, as_rec, parse_message, record_of
from golden_thread.audit.sequencer import Sequencer


@dataclass(frozen=True, slots=True)
class Progress:
    messages: int
    events: int
    buffered: int
    breaks: int


ProgressSink = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    as_of: datetime | None = None
    #: Most events held waiting for a missing sequence before it is declared a gap.
    max_buffered: int = 100_000
    #: How far a cited event may be recorded after the event citing it (clocks differ).
    clock_skew_s: float = 5.0
    #: Breaks listed in the summary (the earliest ones); all are counted.
    keep_breaks: int = 100
    progress_every: int = 100_000
    #: Messages checked in this process before a long replay moves the per-message checks
    #: to worker processes (`parallel`).
    parallel_after: int = 20_000


class Replay:
    """Feed raw messages in any order; `finish()` gives the verification summary."""

    def __init__(self, options: ReplayOptions = ReplayOptions(),
                 progress: ProgressSink | None = None) -> None:
        self.options = options
        self.graph = InfluenceGraph(clock_skew_s=options.clock_skew_s)
        self._sequencer = Sequencer(self.graph.position, self._record,
                                    max_buffered=options.max_buffered)
        self._heads: dict[str, tuple[int, bytes]] = {}
        self._verified: Counter[str] = Counter()
        self._types: Counter[str] = Counter()
        self._breaks: list[AuditBreak] = []
        self._breaks_total = 0
        self._messages = 0
        self._events = 0
        self._progress = progress

    @property
    def messages(self) -> int:
        return self._messages

    def feed(self, raw: bytes | str) -> None:
        self.feed_records((parse_message(raw, self.options.as_of),))

    def feed_all(self, messages: Iterable[bytes | str]) -> Replay:
        for raw in messages:
            self.feed(raw)
        return self

    def feed_records(self, records: Iterable[Rec | tuple[Any, ...] | AuditBreak]) -> None:
        """Take messages already checked on their own (`record.parse_message`), in arrival
        order: put each source back in order, verify its chain, fold it into the graph."""
        every = self.options.progress_every
        offer = self._sequencer.offer
        for rec in records:
            self._messages += 1
            if isinstance(rec, AuditBreak):
                self._record(rec)
            else:
                for ready in offer(rec if type(rec) is Rec else as_rec(rec)):
                    self._accept(ready)
            if self._progress is not None and self._messages % every == 0:
                self._progress(Progress(self._messages, self._events, self._sequencer.buffered,
                                        self._breaks_total))

    def feed_event(self, event: Envelope[Any]) -> None:
        for ready in self._sequencer.offer(record_of(event, None, self.options.as_of)):
            self._accept(ready)

    def finish(self) -> Verification:
        for ready in self._sequencer.finish():
            self._accept(ready)
        for found in self.graph.finish():
            self._record(found)
        self._trim()
        lanes = self._sequencer.lanes
        sources = {
            name: SourceSummary(
                events=self._verified[name],
                head=self._head(name),
                duplicates=lane.duplicates,
                after_as_of=lane.after_as_of,
            )
            for name, lane in lanes.items()
        }
        return Verification(
            events=self._events,
            messages=self._messages,
            duplicates=sum(lane.duplicates for lane in lanes.values()),
            sources=sources,
            counts_by_type=dict(self._types),
            breaks=tuple(self._breaks),
            breaks_total=self._breaks_total,
            as_of=self.options.as_of,
            max_buffered=self._sequencer.peak_buffered,
        )

    def _accept(self, rec: Rec) -> None:
        source = rec.source
        head_sequence, head_hash = self._heads.get(source, _GENESIS)
        if rec.sequence != head_sequence + 1 or rec.prevhash != head_hash or not rec.intact:
            self._record(AuditBreak(BreakKind.CHAIN, source, rec.sequence, show(rec.id),
                                    _break_reason(head_sequence, head_hash, rec), rec.recorded))
        # On a break, resynchronise on the broken event, so one break does not hide the next.
        self._heads[source] = (rec.sequence, rec.hash)
        graph_breaks = self.graph.add(rec)
        if graph_breaks:
            for caused in graph_breaks:
                self._record(caused)
        self._events += 1
        self._verified[source] += 1
        self._types[TYPE_NAMES[rec.kind]] += 1

    def _head(self, source: str) -> ChainHead:
        sequence, hash_ = self._heads.get(source, _GENESIS)
        return ChainHead(sequence, hash_.hex())

    def _record(self, found: AuditBreak) -> None:
        self._breaks_total += 1
        self._breaks.append(found)
        if len(self._breaks) > 4 * self.options.keep_breaks:
            self._trim()

    def _trim(self) -> None:
        self._breaks = first_breaks(self._breaks)[:self.options.keep_breaks]


def first_breaks(breaks: list[AuditBreak]) -> list[AuditBreak]:
    """Breaks in the order an auditor reads them: within a source by sequence (a tamperer
    controls the times inside the events), across sources by when the break was recorded.

    A break's time is the earliest recorded time of it and every later break of its source, so
    each source's breaks stay in sequence order while sources interleave by time.
    """
    by_source: dict[str, list[AuditBreak]] = {}
    for found in breaks:
        by_source.setdefault(found.source, []).append(found)
    keyed: list[tuple[float, str, int, str, AuditBreak]] = []
    for source, listed in by_source.items():
        listed.sort(key=lambda b: (b.sequence, b.kind.value))
        earliest = float("inf")
        for b in reversed(listed):
            earliest = min(earliest, b.recorded)
            keyed.append((earliest, source, b.sequence, b.kind.value, b))
    keyed.sort(key=lambda k: k[:4])
    return [k[4] for k in keyed]


_GENESIS = (0, bytes.fromhex(GENESIS_HASH))


def _break_reason(head_sequence: int, head_hash: bytes, rec: Rec) -> str:
    """As `contracts.chain.ChainVerifier` words it (a test holds them to the same words)."""
    expected = head_sequence + 1
    if rec.sequence > expected:
        return f"expected sequence {expected}, found {rec.sequence}: an event is missing"
    if rec.sequence < expected:
        return (f"expected sequence {expected}, found {rec.sequence}: "
                "an event is repeated or out of order")
    if rec.prevhash != head_hash:
        return f"prevhash does not match the hash of sequence {head_sequence}"
    return "hash does not match the event's contents: it was altered"
