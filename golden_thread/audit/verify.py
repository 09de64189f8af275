"""The replay itself: parse each message, put each source back in order, verify its chain with
`contracts.ChainVerifier`, fold it into the influence graph, and collect the breaks.

Pure: it is fed raw messages by whatever reads them (broker, event stores, a file, memory).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from orjson import loads as json_loads

from contracts.chain import ChainHead, ChainVerifier, raw_body_digest
from contracts.envelope import Envelope
from contracts.problems import ContractError
from contracts.registry import parse_event
from golden_thread.audit.graph import InfluenceGraph
from golden_thread.audit.model import AuditBreak, BreakKind, SourceSummary, Verification
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


class Replay:
    """Feed raw messages in any order; `finish()` gives the verification summary."""

    def __init__(self, options: ReplayOptions = ReplayOptions(),
                 progress: ProgressSink | None = None) -> None:
        self.options = options
        self.graph = InfluenceGraph(clock_skew_s=options.clock_skew_s)
        self._sequencer = Sequencer(self.graph.position, self._record, as_of=options.as_of,
                                    max_buffered=options.max_buffered)
        self._verifiers: dict[str, ChainVerifier] = {}
        self._verified: Counter[str] = Counter()
        self._types: Counter[str] = Counter()
        self._breaks: list[AuditBreak] = []
        self._breaks_total = 0
        self._messages = 0
        self._events = 0
        self._progress = progress
        self._digests: dict[UUID, bytes] = {}

    def feed(self, raw: bytes | str) -> None:
        self._messages += 1
        try:
            event = parse_event(raw)
        except ContractError as exc:
            self._record(_contract_break(raw, exc))
        else:
            # The digest of the bytes as received spares re-dumping the parsed event to hash it.
            self._digests[event.id] = raw_body_digest(json_loads(raw))
            self.feed_event(event)
        if self._progress is not None and self._messages % self.options.progress_every == 0:
            self._progress(Progress(self._messages, self._events, self._sequencer.buffered,
                                    self._breaks_total))

    def feed_all(self, messages: Iterable[bytes | str]) -> Replay:
        for raw in messages:
            self.feed(raw)
        return self

    def feed_event(self, event: Envelope[Any]) -> None:
        for ready in self._sequencer.offer(event):
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

    def _accept(self, event: Envelope[Any]) -> None:
        source = event.source
        verifier = self._verifiers.get(source)
        if verifier is None:
            verifier = self._verifiers[source] = ChainVerifier()
        found = verifier.check(event, self._digests.pop(event.id, None))
        if found is not None:
            self._record(AuditBreak.from_chain(found, event.recordedtime.timestamp()))
            # Resynchronise on the broken event, so one break does not hide the next.
            self._verifiers[source] = ChainVerifier({source: ChainHead(event.sequence, event.hash)})
        for caused in self.graph.add(event):
            self._record(caused)
        self._events += 1
        self._verified[source] += 1
        self._types[event.type] += 1

    def _head(self, source: str) -> ChainHead:
        verifier = self._verifiers.get(source)
        return ChainHead() if verifier is None else verifier.heads.get(source, ChainHead())

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


def _contract_break(raw: bytes | str, error: ContractError) -> AuditBreak:
    """Name the message as far as it names itself; never quote what it carries."""
    try:
        message: Any = json.loads(raw)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        message = {}
    source = message.get("source")
    sequence = message.get("sequence")
    event_id = message.get("id")
    fields = ", ".join(sorted({p.field for p in error.problems}))
    return AuditBreak(
        BreakKind.CONTRACT,
        source if isinstance(source, str) and len(source) <= 64 else "?",
        sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else 0,
        event_id if isinstance(event_id, str) and len(event_id) <= 64 else "?",
        f"not a valid event ({fields})",
    )
