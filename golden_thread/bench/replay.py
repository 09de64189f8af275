"""Audit replay from the services' event stores (`golden-thread audit --store`), and the raw read
limit of that source: a scan of the same tables with the same query and a JSON decode per row.

A generated history (audit.benchgen, the replay bench's generator) is loaded into each source's
own `events` table with COPY; the scan and the replay then each run in a fresh process, so the
peak RSS is the replay's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import asyncpg

from contracts.chain import GENESIS_HASH, chain_hash
from eventcore.db import migrate
from golden_thread.audit.benchgen import Writer, _Generator, templates

Record = tuple[int, UUID, str, str, int, str, bytes, bytes]
COLUMNS = ["sequence", "event_id", "event_type", "subject", "subject_version", "body",
           "prev_hash", "hash"]


class _StoreWriter(Writer):
    """benchgen's chaining, kept as store rows instead of JSON lines: body is the canonical JSON
    (the envelope without the chain fields, as the store keeps it)."""

    def __init__(self) -> None:
        super().__init__(out=None, rng=random.Random(0), window=1)  # type: ignore[arg-type]
        self.rows: dict[str, list[Record]] = {}

    def emit(self, body: dict[str, Any]) -> None:
        source = body["source"]
        sequence, prevhash = self.heads.get(source, (0, GENESIS_HASH))
        sequence += 1
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        new_hash = chain_hash(prevhash, sequence, hashlib.sha256(canonical.encode()).digest())
        self.heads[source] = (sequence, new_hash)
        self.rows.setdefault(source, []).append(
            (sequence, UUID(body["id"]), body["type"], body["subject"], body["subjectversion"],
             canonical, bytes.fromhex(prevhash), bytes.fromhex(new_hash)))
        self.count += 1

    def flush(self) -> None:
        pass

    def take(self) -> dict[str, list[Record]]:
        rows, self.rows = self.rows, {}
        return rows


def _chunks(events: int, seed: int) -> Iterator[dict[str, list[Record]]]:
    writer = _StoreWriter()
    gen = _Generator(templates(), random.Random(seed), writer)
    while writer.count < events:
        gen.round(min(100, max(events - writer.count, 10)))
        if sum(map(len, writer.rows.values())) >= 20_000:
            yield writer.take()
    yield writer.take()


async def load_history(url: str, events: int, seed: int = 7) -> tuple[int, float, list[str]]:
    """COPY a generated history of at least `events` events into each source's event store."""
    started = time.perf_counter()
    schemas: list[str] = []
    conn = await asyncpg.connect(url)
    loaded = 0
    try:
        for chunk in _chunks(events, seed):
            for source, rows in chunk.items():
                if source not in schemas:
                    await migrate(url, source, [], source=source)
                    schemas.append(source)
                await conn.copy_records_to_table("events", schema_name=source, records=rows,
                                                 columns=COLUMNS)
                loaded += len(rows)
            await asyncio.sleep(0)
        await settle(conn, schemas)
    finally:
        await conn.close()
    return loaded, time.perf_counter() - started, schemas


async def settle(conn: asyncpg.Connection, schemas: list[str]) -> None:
    """Leave a freshly loaded history as a long-lived one is: vacuumed (visibility map and hint
    bits set, statistics current) and checkpointed. Otherwise the first reads after a bulk
    load pay for setting hint bits, autovacuum starts on the new rows within a minute (inside
    whichever measurement runs then) and the load's checkpoint flushes during the reads."""
    for schema in schemas:
        await conn.execute(f"VACUUM (ANALYZE) {schema}.events")
    await conn.execute("CHECKPOINT")


def run_child(mode: str, url: str, schemas: list[str], timeout_s: float) -> dict[str, Any]:
    """Run `python -m golden_thread.bench.replay_worker MODE` and return its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "golden_thread.bench.replay_worker", mode, url, *schemas],
        capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"replay worker {mode} failed ({done.returncode}): "
                           f"{done.stderr[-2000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer
