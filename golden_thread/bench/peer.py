"""The `eventsourcing` library's PostgreSQL application recorder, as a peer (benchmark-only extra
`pip install golden-thread[bench]`). Same body bytes, same concurrency, same database server.

Its recorder serialises writers with LOCK TABLE ... IN EXCLUSIVE MODE (as our head row lock
does) and NOTIFYs, so it offers the same guarantee: positions become visible in order.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from golden_thread.bench.report import RawLimit


def available() -> str | None:
    """None when the peer can run, else why not."""
    try:
        import eventsourcing.postgres  # noqa: F401
    except ImportError as exc:
        return f"eventsourcing[postgres] is not installed ({exc.name}); pip install -e '.[bench]'"
    return None


def measure(url: str, body: bytes, seconds: float, *, threads: int = 8,
            batches: tuple[int, ...] = (1, 5)) -> list[RawLimit]:
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    parts = urlsplit(url)
    datastore = PostgresDatastore(
        dbname=parts.path.lstrip("/"), host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432, user=parts.username or "postgres", password=parts.password or "",
        pool_size=threads,
    )
    recorder = PostgresApplicationRecorder(datastore, events_table_name="stored_events")
    recorder.create_table()
    topic = "golden_thread.bench:ConversationLogged"
    out: list[RawLimit] = []
    try:
        for batch in batches:
            rate = _timed_appends(recorder, topic, body, batch, seconds, threads)
            label = "1 event per txn" if batch == 1 else f"{batch} events per txn"
            out.append(RawLimit(f"peer.append_batch{batch}_{threads}conn",
                                f"eventsourcing PostgresApplicationRecorder, {label}, "
                                f"{threads} threads", rate, "events/s",
                                {"threads": threads, "batch": batch, "library": "eventsourcing"}))
        # Read the notification log back, decoding every event's JSON.
        started = time.perf_counter()
        position, rows = 0, 0
        while notes := recorder.select_notifications(start=position + 1, limit=1_000):
            for note in notes:
                json.loads(note.state)
            rows += len(notes)
            position = notes[-1].id
        elapsed = time.perf_counter() - started
        out.append(RawLimit("peer.read_decode", "eventsourcing select_notifications + JSON decode",
                            rows / elapsed if elapsed else 0.0, "events/s", {"rows": rows}))
    finally:
        datastore.close()
    return out


def _timed_appends(recorder: Any, topic: str, body: bytes, batch: int, seconds: float,
                   threads: int) -> float:
    """Events per second from `threads` threads, each inserting `batch` events per call."""
    from eventsourcing.persistence import StoredEvent

    warmup = min(0.5, seconds / 4)
    start = time.perf_counter() + warmup
    stop = start + seconds
    counts = [0] * threads
    lock = threading.Lock()
    finished: list[float] = []

    def work(n: int) -> None:
        while (now := time.perf_counter()) < stop:
            events = [StoredEvent(originator_id=uuid.uuid4(), originator_version=1,
                                  topic=topic, state=body) for _ in range(batch)]
            recorder.insert_events(events)
            if now >= start:
                counts[n] += batch
        with lock:
            finished.append(time.perf_counter())

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return sum(counts) / (max(finished) - start)
