"""When effects are missing: where each missing event sits on the broker, and where its
consumer group stands, so a report says "skipped" (committed past it) or "stuck" (not yet)."""

from __future__ import annotations

from collections import defaultdict

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.topics import TOPIC_BY_TYPE
from golden_thread.faults.effects import Effects
from golden_thread.faults.lab import Lab

SOURCES = ("intake", "insight", "priority")


async def _committed(bootstrap: str, group: str, partitions: list[TopicPartition]
                     ) -> dict[TopicPartition, int | None]:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        return {tp: await reader.committed(tp) for tp in partitions}
    finally:
        await reader.stop()


async def _locate(bootstrap: str, topic: str, ids: set[str]) -> dict[str, list[tuple[int, int]]]:
    """(partition, offset) of every copy of each event on `topic`."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                              auto_offset_reset="earliest", fetch_max_wait_ms=10)
    await reader.start()
    found: dict[str, list[tuple[int, int]]] = defaultdict(list)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        ends = await reader.end_offsets(partitions)
        while True:
            batches = await reader.getmany(timeout_ms=500)
            for records in batches.values():
                for r in records:
                    ce_id = dict(r.headers or ()).get("ce_id", b"").decode()
                    if ce_id in ids:
                        found[ce_id].append((r.partition, r.offset))
            done = all([await reader.position(tp) >= ends[tp] for tp in partitions])
            if not batches or done:
                return found
    finally:
        await reader.stop()


async def diagnose(lab: Lab, effects: Effects) -> list[str]:
    """One line per missing consumed event (at most a few per kind)."""
    lines: list[str] = []
    for kind, tally in effects.by_kind.items():
        consumer = kind.split(".")[0]
        if not tally.missing or kind.endswith((".store", ".notified", ".emails")):
            continue
        types = {str(r["event_id"]): (s, r["event_type"], r["sequence"]) for s in SOURCES
                 for r in await lab.fetch(f"SELECT event_id, event_type, sequence FROM {s}.events"
                                          " WHERE event_id = ANY($1::uuid[])", tally.missing)}
        by_topic: dict[str, set[str]] = defaultdict(set)
        for event_id, (_, event_type, _) in types.items():
            by_topic[TOPIC_BY_TYPE[event_type]].add(event_id)
        for topic, ids in by_topic.items():
            where = await _locate(lab.bootstrap, topic, ids)
            tps = sorted({TopicPartition(topic, p) for copies in where.values() for p, _ in copies})
            committed = await _committed(lab.bootstrap, consumer, tps)
            for event_id in sorted(ids)[:3]:
                source, event_type, sequence = types[event_id]
                copies = where.get(event_id, [])
                states = [f"[{p}]@{o} ({'skipped' if (committed[TopicPartition(topic, p)] or 0) > o else 'not yet reached'}:"
                          f" committed {committed[TopicPartition(topic, p)]})" for p, o in copies]
                lines.append(f"{kind}: {event_type} {source}#{sequence} on {topic}"
                             + (" ".join(states) if states else ": not on the broker at all"))
    return lines
