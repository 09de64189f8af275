"""The event store's append (one statement per call whatever its size: version check, hashes
chained in Python, insert from arrays, head move, NOTIFY; concurrent calls outside a transaction
share a group commit), exactly as the services call it, on the same pool settings and telemetry
they use."""

from __future__ import annotations

import asyncio
import gc
from typing import Any
from uuid import uuid4

from contracts.drafts import EventDraft
from eventcore.db import create_pool, migrate
from eventcore.metrics import CoreMetrics
from eventcore.runtime import settle_collector
from eventcore.store import EventStore
from eventcore.telemetry import configure_telemetry
from golden_thread.bench.fixtures import SOURCE, Drafts
from golden_thread.bench.infra import CpuMeter
from golden_thread.bench.timing import Rate, closed_loop

SCHEMA = "intake"

#: Events per second the store may reach with this many events per call: drafts for that rate
#: are made before the clock, so that running out never puts draft-making in the timed section.
RATE_CEILING = {1: 8_000, 5: 15_000}
RATE_CEILING_LARGE = 30_000


class DraftSupply:
    """ConversationLogged drafts for a timed section, made before it: a few hundred validated
    as the service does, then copies of them with fresh ids (event, conversation, correlation).
    The store's work per draft is the same; making one costs a third of validating one."""

    def __init__(self, drafts: Drafts, templates: int = 256) -> None:
        self._templates = [drafts.make() for _ in range(templates)]
        self._ready: list[EventDraft[Any]] = []
        self._next = 0

    def _copy(self) -> EventDraft[Any]:
        template = self._templates[self._next % len(self._templates)]
        self._next += 1
        cid = uuid4()
        data = template.data.model_copy(update={"conversation_id": cid})
        return template.model_copy(update={"id": uuid4(), "subject": str(cid), "data": data,
                                           "correlationid": str(uuid4())})

    def prepare(self, count: int) -> None:
        self._ready = [self._copy() for _ in range(count)]

    def take(self, count: int) -> list[EventDraft[Any]]:
        out = self._ready[-count:] if len(self._ready) >= count else []
        if out:
            del self._ready[-count:]
        while len(out) < count:  # ran out: made here, in the timed section (rates too low)
            out.append(self._copy())
        return out


async def measure(url: str, seconds: float, *, connections: int = 8,
                  batches: tuple[int, ...] = (1, 5, 100), expected_rate: float = 3_000,
                  meter: CpuMeter | None = None,
                  cpu: dict[int, dict[str, dict[str, float]]] | None = None) -> dict[int, Rate]:
    """Events per second appended with `batch` events per transaction, on `connections`."""
    await migrate(url, SCHEMA, [], source=SOURCE)
    telemetry = configure_telemetry(SOURCE)
    metrics = CoreMetrics(telemetry.meter_provider.get_meter("golden_thread.bench"), SOURCE)
    store = EventStore(SOURCE, metrics)
    pool = await create_pool(url, SCHEMA, max_size=connections, min_size=connections)
    drafts = DraftSupply(Drafts())
    out: dict[int, Rate] = {}
    try:
        for batch in batches:
            # Drafts are built before the clock starts: building them is the caller's work.
            ceiling = RATE_CEILING.get(batch, RATE_CEILING_LARGE)
            drafts.prepare(int(max(expected_rate, ceiling) * (seconds + 1)))

            def step_of(_: int, batch: int = batch) -> Any:
                async def step() -> int:
                    chunk = drafts.take(batch)
                    async with pool.acquire() as conn:
                        await store.append(conn, chunk)
                    return batch
                return step
            warmup = min(0.5, seconds / 4)
            timer = (asyncio.get_running_loop().call_later(warmup, meter.start)
                     if meter is not None else None)
            # The collector as in a service (`settle_collector`): the drafts made ahead, many
            # objects no service holds, out of its sight, and the young generation collected
            # every 50,000 allocations, not 700 (with the default it walked each 100-draft
            # append's own rows several times: 11 -> 4 us per row to return the records).
            thresholds = gc.get_threshold()
            settle_collector()
            try:
                out[batch] = await closed_loop(connections, seconds, step_of, warmup_s=warmup)
            finally:
                gc.unfreeze()
                gc.set_threshold(*thresholds)
            if meter is not None and cpu is not None:
                cpu[batch] = meter.stop(out[batch].items)
            if timer is not None:
                timer.cancel()
    finally:
        await pool.close()
        telemetry.shutdown()
    return out
