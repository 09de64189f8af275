"""Group commit: callers that append at the same time share one commit (PostgreSQL-style).

The first caller to arrive when no commit is in flight becomes the *leader*: it takes its own rows
and those of every caller queued behind it (up to `max_rows`), writes them as one batch on its own
connection, hands each caller its own slice of the results and passes the lead to the first caller
that queued meanwhile. Followers only wait: their connections sit idle until they get their
results. While one group commits, the next one forms, so the commit rate, not the caller count,
sets how many round trips and WAL flushes there are — PostgreSQL's own group commit of WAL
flushes, done one level up, where it also spares the row lock and round trips. Like PostgreSQL's
`commit_delay`, a leader waits briefly (at most `max_delay_s`, and at most half the last commit's
time) for the callers the last group released to queue again, so that callers in a loop commit
together instead of splitting into two groups that take turns.

Unless their own work is what the database waits for. Callers share one event loop, so the
callers a group released do their work between appends (serialising their next rows, say) one
after another, and while they do, no statement is in flight: with large appends the client and
the database took turns, each idle half the time. So when the released callers took longer to
come back than half the last commit (the commit's fixed cost, round trip and WAL flush, is then
smaller than their work), the callers are split into two cohorts that take turns on purpose:
each group takes at most half of them and does not wait for the rest, and the lead passes to
the next group before the released callers get the event loop, so its statement is on its way
while they work.

Failures stay with the caller that caused them. If the group's batch fails with an error that one
caller's rows can cause (`isolate(exc)`: a concurrency conflict, a constraint, bad data), the
leader gives the error to the caller whose row it names (`blame(exc, rows)`) and commits the
others again as a group; when no row is named, it retries the group one caller at a time, in
queue order. Either way on its own connection, so the conflicting caller gets its error and the
others their results. Any other error (the leader's connection broke: the outcome is unknown)
is given to every caller of the group.

Cancellation: a follower cancelled while queued leaves the queue; one cancelled after being named
leader passes the lead on. A cancelled leader waits for its batch to finish before it lets the
cancellation through — the batch runs on its connection, and the followers' outcomes depend on it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

C = TypeVar("C")
R = TypeVar("R")
T = TypeVar("T")

_LEAD = object()  # a waiter's outcome that says: lead the next group
#: The clock the commit delay and the cohorts are timed by. Not the event loop's: uvloop's
#: `loop.time()` counts whole milliseconds, about what a commit takes here (docs/performance.md,
#: finding 108).
_now = time.perf_counter


@dataclass(eq=False, slots=True)
class _Waiter(Generic[R]):
    rows: Sequence[R]
    future: asyncio.Future[object] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())
    #: The caller's task: a caller in a loop comes back in the same task.
    task: asyncio.Task[object] | None = field(default_factory=asyncio.current_task)


class GroupCommit(Generic[C, R, T]):
    """Coalesces concurrent `submit(conn, rows)` calls into `commit(conn, all_rows)` calls.

    `commit` must return one result per row, in order, and be atomic: when it raises, no row was
    written. (A result may still say that its row was not written, a conflict, while the others
    were: `EventStore.append_with`'s groups.)
    """

    def __init__(
        self,
        commit: Callable[[C, list[R]], Awaitable[list[T]]],
        *,
        isolate: Callable[[Exception], bool],
        blame: Callable[[Exception, Sequence[R]], int | None] = lambda exc, rows: None,
        max_rows: int = 1_000,
        max_delay_s: float = 0.005,
    ) -> None:
        self._commit = commit
        self._isolate = isolate
        self._blame = blame
        self._max_rows = max_rows
        self._max_delay_s = max_delay_s
        self._queue: deque[_Waiter[R]] = deque()
        self._leading = False
        # The commit delay: how many callers the last group released or left waiting (they
        # are expected back), until when to wait for them, and a signal for each arrival.
        self._expected = 0
        self._wait_until = 0.0
        self._arrival: asyncio.Future[None] | None = None
        # Cohorts: the most callers a group takes (None: all); when the last group released its
        # callers, the tasks of those not back yet, and how long the last release's callers
        # took to come back, all of them (None: some never did, as one-off callers never do).
        self._cohort: int | None = None
        self._released_at = 0.0
        self._away: set[asyncio.Task[object]] = set()
        self._return_s: float | None = None

    async def submit(self, conn: C, rows: Sequence[R]) -> list[T]:
        """Commit `rows` atomically, in a group with whoever else is committing now."""
        waiter: _Waiter[R] = _Waiter(rows)
        self._queue.append(waiter)
        if waiter.task in self._away:
            self._away.discard(waiter.task)
            if not self._away:
                self._return_s = _now() - self._released_at
        if self._arrival is not None and not self._arrival.done():
            self._arrival.set_result(None)
        if self._leading:
            try:
                outcome = await waiter.future
            except asyncio.CancelledError:
                self._abandon(waiter)
                raise
            if outcome is not _LEAD:
                return cast(list[T], outcome)
        self._leading = True
        return await self._lead(conn, waiter)

    async def _lead(self, conn: C, own: _Waiter[R]) -> list[T]:
        try:
            await self._commit_delay()
        except asyncio.CancelledError:
            self._queue.remove(own)
            self._hand_off()
            raise
        group = self._take(own)
        batch = asyncio.ensure_future(self._run(conn, group))
        try:
            return await asyncio.shield(batch)
        except asyncio.CancelledError:
            # The batch runs on our connection: the caller must not release it, and the
            # followers must get their outcomes, before the cancellation goes through.
            while not batch.done():
                try:
                    await asyncio.wait({batch})
                except asyncio.CancelledError:
                    continue
            if not batch.cancelled():
                batch.exception()  # retrieved: the caller is cancelled, the outcome unknown
            raise

    async def _commit_delay(self) -> None:
        """Wait (briefly) for the callers the last group released to come back.

        Without it, a closed loop of callers splits into two groups that take turns (those
        queued while one commits, then those it released), each paying a commit of its own.
        The wait ends when as many callers are queued as the last round had (a cohort's worth
        when they take turns), or at `max_delay_s` (at most half the last commit's duration)
        after its release.
        """
        loop = asyncio.get_running_loop()
        while len(self._queue) < (self._cohort or self._expected):
            remaining = self._wait_until - _now()
            if remaining <= 0:
                return
            self._arrival = loop.create_future()
            # At least a millisecond: uvloop's timers count whole ones and would wake a shorter
            # wait at once, again and again, until the clock passed (the standard library's
            # selector rounds up to one too).
            await asyncio.wait({self._arrival}, timeout=max(remaining, 0.001))

    def _take(self, own: _Waiter[R]) -> list[_Waiter[R]]:
        self._queue.remove(own)
        group, count = [own], len(own.rows)
        most = self._cohort or len(self._queue) + 1
        while (self._queue and len(group) < most
               and count + len(self._queue[0].rows) <= self._max_rows):
            waiter = self._queue.popleft()
            if waiter.future.done():  # cancelled, not yet out of the queue
                continue
            group.append(waiter)
            count += len(waiter.rows)
        return group

    async def _run(self, conn: C, group: list[_Waiter[R]]) -> list[T]:
        started = _now()
        try:
            outcomes = await self._outcomes(conn, group)
        except BaseException:  # cancelled (loop shutdown): nobody learns the outcome
            for waiter in group[1:]:
                waiter.future.cancel()
            raise
        finally:
            self._next_round(group, _now() - started)
            named = self._hand_off()
        try:
            if named and self._cohort:  # its statement goes out before the released callers:
                await asyncio.sleep(0)  # the next leader wakes and starts its batch,
                await asyncio.sleep(0)  # whose first step sends the statement
        finally:
            for waiter, outcome in zip(group[1:], outcomes[1:], strict=True):
                if waiter.future.done():
                    continue
                if isinstance(outcome, Exception):
                    waiter.future.set_exception(outcome)
                else:
                    waiter.future.set_result(outcome)
        if isinstance(outcomes[0], Exception):
            raise outcomes[0]
        return outcomes[0]

    def _next_round(self, released: list[_Waiter[R]], took_s: float) -> None:
        """After the group `released` committed in `took_s`: whom the next group waits for, and
        whether the callers take turns in two cohorts (see the module's docstring)."""
        now = _now()
        callers = len(released) + len(self._queue)
        self._expected = callers
        self._wait_until = now + min(self._max_delay_s, took_s / 2)
        # Split when coming back took longer than half the commit; once split, go on until it
        # takes less than a quarter (a cohort's commit is partly per row: halving the callers
        # shortens it less than their return, and without this margin the two modes alternate).
        # Only callers that come back (in a loop) can take turns: one-off callers never split.
        margin = 4 if self._cohort else 2
        back = self._return_s if not self._away else None
        split = callers > 1 and back is not None and back > took_s / margin
        self._cohort = -(-callers // 2) if split else None
        self._released_at, self._return_s = now, None
        self._away = {w.task for w in released if w.task is not None}

    async def _outcomes(self, conn: C, group: list[_Waiter[R]]) -> list[list[T] | Exception]:
        outcomes: list[list[T] | Exception | None] = [None] * len(group)
        pending = list(range(len(group)))
        while pending:
            rows = [row for n in pending for row in group[n].rows]
            try:
                results = await self._commit(conn, rows)
            except Exception as exc:  # noqa: BLE001 - handed to the callers it belongs to
                if len(pending) == 1 or not self._isolate(exc):
                    for n in pending:
                        outcomes[n] = exc
                    break
                culprit = self._owner(group, pending, self._blame(exc, rows))
                if culprit is None:  # not one row's fault that we can tell: one by one
                    for n in pending:
                        outcomes[n] = await self._alone(conn, group[n].rows)
                    break
                outcomes[culprit] = exc  # and the others try again without it
                pending.remove(culprit)
                continue
            start = 0
            for n in pending:
                outcomes[n] = results[start:start + len(group[n].rows)]
                start += len(group[n].rows)
            break
        return [outcome if outcome is not None else [] for outcome in outcomes]

    @staticmethod
    def _owner(group: list[_Waiter[R]], pending: list[int], row: int | None) -> int | None:
        """The waiter whose rows hold `row` (an index into the pending waiters' rows)."""
        if row is None:
            return None
        for n in pending:
            if row < len(group[n].rows):
                return n
            row -= len(group[n].rows)
        return None

    async def _alone(self, conn: C, rows: Sequence[R]) -> list[T] | Exception:
        try:
            return await self._commit(conn, list(rows))
        except Exception as exc:  # noqa: BLE001 - this caller's own outcome
            return exc

    def _hand_off(self) -> bool:
        """Name the first caller still waiting as the next leader (True), or stand down."""
        while self._queue:
            waiter = self._queue[0]
            if not waiter.future.done():
                waiter.future.set_result(_LEAD)
                return True
            self._queue.popleft()
        self._leading = False
        return False

    def _abandon(self, waiter: _Waiter[R]) -> None:
        """A waiting caller was cancelled: leave the queue, and pass the lead on if it had it."""
        future = waiter.future
        named_leader = (future.done() and not future.cancelled() and future.exception() is None
                        and future.result() is _LEAD)
        if waiter in self._queue:
            self._queue.remove(waiter)
        if named_leader:
            self._hand_off()
