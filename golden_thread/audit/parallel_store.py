"""A long replay of the services' event stores: each worker process reads its own ranges of a
store (its own connection, the query `sources.store_messages` runs) and checks them, so raw
rows never pass through the parent, which folds the compact records range by range, in the
order a single reader would have read them.

Ranges stop at each store's head as found when the replay starts: a store is append-only and
its sequence numbers become visible in order, so what lies below that head does not change.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Self, cast

import asyncpg
import uvloop

from golden_thread.audit.model import AuditBreak
from golden_thread.audit.parallel import quiet_collector
from golden_thread.audit.record import parse_batch
from golden_thread.audit.sources import connect_stores, envelope, store_query
from golden_thread.audit.verify import Replay

Range = tuple[str, int, int]  # schema, first and last sequence
#: Sequence numbers per range: a few MB of rows in a worker at a time.
RANGE = 2_000

_worker: dict[str, Any] = {}


async def plan_ranges(database_url: str, schemas: Sequence[str],
                      missing: list[str]) -> list[Range]:
    """Each store's sequence numbers up to its current head, in ranges, stores in order."""
    conn = await connect_stores(database_url, schemas)
    ranges: list[Range] = []
    try:
        for schema in schemas:
            if await conn.fetchval("SELECT to_regclass($1)", f"{schema}.events") is None:
                missing.append(schema)
                continue
            low, high = await conn.fetchrow(
                f"SELECT min(sequence), max(sequence) FROM {schema}.events")
            if low is not None:
                ranges += [(schema, s, min(s + RANGE - 1, high))
                           for s in range(low, high + 1, RANGE)]
    finally:
        await conn.close()
    return ranges


def replay_ranges(replay: Replay, database_url: str, ranges: list[Range], workers: int,
                  stop: threading.Event | None = None) -> None:
    """Check the ranges in `workers` processes, fold them in order into `replay`; when `stop`
    is set, stop after the range being folded (the workers with it)."""
    as_of = replay.options.as_of
    window: deque[int] = deque()  # the worker of each range sent and not yet folded, in order
    with _Workers(workers, database_url) as pool:

        def fold_next() -> bool:
            """Fold the oldest range sent; whether to stop."""
            replay.feed_records(pool.receive(window.popleft()))
            return stop is not None and stop.is_set()

        for n, part in enumerate(ranges):
            window.append(pool.send(n % workers, (part, as_of)))
            if len(window) > 2 * workers and fold_next():
                return
        while window:
            if fold_next():
                return


class _Workers:
    """Worker processes with a pipe each: ranges go out in turn, and their records are read
    back in the order they went out, by the parent's own thread.

    (A `multiprocessing.Pool` hands each result to the parent through threads of its own, which
    contend with the fold for the interpreter: the parent spent 10-15 % more CPU with one.)
    A worker that dies is an error here, not a wait for ever.
    """

    def __init__(self, count: int, database_url: str) -> None:
        context = multiprocessing.get_context("fork")  # the contracts already imported
        self._pipes: list[Connection] = []
        self._processes: list[BaseProcess] = []
        try:
            for _ in range(count):
                ours, theirs = context.Pipe()
                # The child closes its copies of the parent's ends (its own and the earlier
                # workers'), so that it sees the parent go: EOF or a broken pipe, not a wait.
                process = context.Process(target=_serve,
                                          args=(theirs, database_url, [*self._pipes, ours]),
                                          daemon=True, name="audit-replay-worker")
                process.start()
                theirs.close()
                self._pipes.append(ours)
                self._processes.append(process)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, worker: int, task: tuple[Range, datetime | None]) -> int:
        try:
            self._pipes[worker].send(task)
        except OSError:
            raise self._gone(worker) from None
        return worker

    def receive(self, worker: int) -> list[tuple[Any, ...] | AuditBreak]:
        try:
            ok, value = self._pipes[worker].recv()
        except (EOFError, OSError):
            raise self._gone(worker) from None
        if not ok:
            raise value
        return cast(list[tuple[Any, ...] | AuditBreak], value)

    def _gone(self, worker: int) -> RuntimeError:
        process = self._processes[worker]
        process.join(timeout=5)
        return RuntimeError(f"audit replay worker {worker} exited (exit code {process.exitcode})")

    def close(self) -> None:
        """Tell each worker to stop and close its pipe (a worker still sending records it will
        never read gets a broken pipe and stops too), then wait for them all, 5 s at most."""
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
            pipe.close()
        deadline = time.monotonic() + 5
        for process in self._processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
        for process in self._processes:
            if process.is_alive():
                process.terminate()
                process.join()


def _serve(pipe: Connection, database_url: str, parents: list[Connection]) -> None:
    """A worker's life: open its connection, check each range it is sent, send the records
    back (or the error), until told to stop or the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to act on
    for inherited in parents:
        inherited.close()
    try:
        _open(database_url)
    except Exception as exc:  # noqa: BLE001 - the answer to every range it is sent
        with contextlib.suppress(EOFError, OSError):
            while pipe.recv() is not None:
                _answer(pipe, exc)
        return
    try:
        while (task := pipe.recv()) is not None:
            try:
                records = _check_range(*task)
            except Exception as exc:  # noqa: BLE001 - raised again in the parent
                _answer(pipe, exc)
            else:
                pipe.send((True, records))
    except (EOFError, OSError):  # the parent is gone, or closed the pipe
        return
    finally:
        with contextlib.suppress(Exception):  # leaving anyway; the server drops it if need be
            _worker["loop"].run_until_complete(_worker["conn"].close(timeout=2))


def _answer(pipe: Connection, error: Exception) -> None:
    """Send `error` to the parent; one that cannot be pickled goes as its type's name."""
    try:
        pipe.send((False, error))
    except (pickle.PicklingError, TypeError, AttributeError):
        pipe.send((False, RuntimeError(
            f"audit replay worker: {type(error).__name__} (it could not be sent as it was)")))


def _open(database_url: str) -> None:
    quiet_collector()
    loop = uvloop.new_event_loop()
    _worker["loop"] = loop
    _worker["conn"] = loop.run_until_complete(asyncpg.connect(database_url))


def _check_range(part: Range, as_of: datetime | None) -> list[tuple[Any, ...] | AuditBreak]:
    schema, first, last = part
    loop: asyncio.AbstractEventLoop = _worker["loop"]
    conn: asyncpg.Connection = _worker["conn"]
    rows = loop.run_until_complete(conn.fetch(
        store_query(schema, "WHERE sequence BETWEEN $1 AND $2"), first, last))
    return parse_batch([envelope(row) for row in rows], as_of)
