"""Group commit (eventcore/store/group.py) with a fake commit: grouping, conflicts, cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from eventcore.store.group import GroupCommit


class Conflict(Exception):
    pass


class Broken(Exception):
    pass


class FakeStore:
    """Commits rows (strings) atomically after a short delay; 'bad' rows conflict."""

    def __init__(self, delay_s: float = 0.005) -> None:
        self.delay_s = delay_s
        self.batches: list[list[str]] = []
        self.committed: list[str] = []
        self.gate: asyncio.Event | None = None
        self.broken = False

    async def commit(self, conn: str, rows: list[str]) -> list[str]:
        self.batches.append(list(rows))
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.delay_s)
        if self.broken:
            raise Broken(conn)
        if any(r.startswith("bad") for r in rows):
            raise Conflict(next(r for r in rows if r.startswith("bad")))
        self.committed.extend(rows)
        return [f"{r}@{conn}" for r in rows]


def blame(exc: Exception, rows: Sequence[str]) -> int | None:
    """The bad row, when the conflict names one ('bad?' rows conflict without saying which)."""
    if isinstance(exc, Conflict) and not str(exc).startswith("bad?"):
        return list(rows).index(str(exc))
    return None


def group_of(store: FakeStore, max_rows: int = 1_000) -> GroupCommit[str, str, str]:
    return GroupCommit(store.commit, isolate=lambda e: isinstance(e, Conflict), blame=blame,
                       max_rows=max_rows)


async def submit_all(group: GroupCommit[str, str, str], work: Sequence[list[str]]) -> list[object]:
    async def one(n: int, rows: list[str]) -> object:
        try:
            return await group.submit(f"conn{n}", rows)
        except Exception as exc:  # noqa: BLE001
            return exc
    return list(await asyncio.gather(*(one(n, rows) for n, rows in enumerate(work))))


async def test_concurrent_callers_share_commits_and_each_gets_its_own_results() -> None:
    store = FakeStore()
    work = [[f"r{n}a", f"r{n}b"] for n in range(20)]
    results = await submit_all(group_of(store), work)
    assert len(store.batches) < 20, "callers were grouped"
    for rows, got in zip(work, results, strict=True):
        assert isinstance(got, list) and [g.split("@")[0] for g in got] == rows
    assert sorted(store.committed) == sorted(r for rows in work for r in rows)
    assert len(store.committed) == len(set(store.committed))
    # The first caller commits alone; the rest queued behind it commit together, in order.
    assert store.batches[0] == work[0] and store.batches[1] == [r for w in work[1:] for r in w]


async def test_a_conflicting_caller_gets_its_error_and_the_others_commit_as_a_group() -> None:
    store = FakeStore()
    work = [["a"], ["b"], ["x", "bad-c"], ["d"], ["bad-e"], ["f"]]
    results = await submit_all(group_of(store), work)
    assert isinstance(results[2], Conflict) and isinstance(results[4], Conflict)
    # `a` led alone; the others queued meanwhile and were led by b on its connection: each
    # conflict was given to the caller whose row it named, and the rest tried again together.
    assert [results[n] for n in (0, 1, 3, 5)] == [["a@conn0"], ["b@conn1"], ["d@conn1"],
                                                  ["f@conn1"]]
    assert store.batches == [["a"], ["b", "x", "bad-c", "d", "bad-e", "f"],
                             ["b", "d", "bad-e", "f"], ["b", "d", "f"]]
    assert store.committed == ["a", "b", "d", "f"]


async def test_a_conflict_that_names_no_row_is_retried_caller_by_caller() -> None:
    store = FakeStore()
    work = [["a"], ["b"], ["bad?c"], ["d"]]
    results = await submit_all(group_of(store), work)
    assert isinstance(results[2], Conflict)
    assert [results[n] for n in (0, 1, 3)] == [["a@conn0"], ["b@conn1"], ["d@conn1"]]
    assert store.batches == [["a"], ["b", "bad?c", "d"], ["b"], ["bad?c"], ["d"]]


async def test_an_error_no_caller_owns_goes_to_the_whole_group() -> None:
    store = FakeStore()
    store.gate = asyncio.Event()
    group = group_of(store)
    first = asyncio.create_task(group.submit("conn0", ["x"]))
    await asyncio.sleep(0)
    store.broken = True
    rest = [asyncio.create_task(group.submit(f"conn{n}", [f"y{n}"])) for n in range(1, 4)]
    await asyncio.sleep(0.01)
    store.gate.set()
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    assert all(isinstance(r, Broken) for r in results)
    # The group after the first failed as one (a broken connection is not retried per caller).
    assert store.batches == [["x"], ["y1", "y2", "y3"]]


async def test_groups_respect_max_rows_but_a_large_caller_still_goes() -> None:
    store = FakeStore()
    work = [["a"] * 3, ["b"] * 3, ["c"] * 3, ["d"] * 7, ["e"]]
    results = await submit_all(group_of(store, max_rows=6), work)
    assert all(isinstance(r, list) for r in results)
    assert [len(b) for b in store.batches] == [3, 6, 7, 1]


async def test_a_follower_cancelled_while_queued_leaves_without_stalling_anyone() -> None:
    store = FakeStore()
    store.gate = asyncio.Event()
    group = group_of(store)
    leader = asyncio.create_task(group.submit("conn0", ["lead"]))
    await asyncio.sleep(0)
    followers = [asyncio.create_task(group.submit(f"conn{n}", [f"f{n}"])) for n in range(1, 5)]
    await asyncio.sleep(0)
    followers[1].cancel()
    store.gate.set()
    results = await asyncio.wait_for(asyncio.gather(leader, *followers, return_exceptions=True), 5)
    assert isinstance(results[2], asyncio.CancelledError)
    assert "f2" not in store.committed
    assert sorted(store.committed) == ["f1", "f3", "f4", "lead"]
    assert await asyncio.wait_for(group.submit("conn9", ["later"]), 5) == ["later@conn9"]


async def test_a_cancelled_leader_lets_its_batch_finish_before_it_gives_up_its_connection() -> None:
    store = FakeStore()
    store.gate = asyncio.Event()
    group = group_of(store)
    leader = asyncio.create_task(group.submit("conn0", ["lead"]))
    await asyncio.sleep(0)
    follower = asyncio.create_task(group.submit("conn1", ["follow"]))
    await asyncio.sleep(0)
    queued = asyncio.create_task(group.submit("conn2", ["next"]))
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0.01)
    assert not leader.done(), "the batch on its connection is still running"
    store.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert store.committed[0] == "lead", "the batch was not abandoned"
    # The two that queued meanwhile commit together, led by the first of them.
    assert await asyncio.wait_for(follower, 5) == ["follow@conn1"]
    assert await asyncio.wait_for(queued, 5) == ["next@conn1"]


async def test_a_caller_cancelled_just_after_being_named_leader_passes_the_lead_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = FakeStore()
    store.gate = asyncio.Event()
    group = group_of(store)
    first = asyncio.create_task(group.submit("conn0", ["one"]))
    await asyncio.sleep(0)
    named = asyncio.create_task(group.submit("conn1", ["two"]))
    await asyncio.sleep(0)
    after = asyncio.create_task(group.submit("conn2", ["three"]))
    await asyncio.sleep(0)
    hand_off = group._hand_off
    hijacked = False

    def hand_off_then_cancel() -> None:
        nonlocal hijacked
        hand_off()  # names `named` leader (the first caller waiting)...
        if not hijacked:
            hijacked = True
            named.cancel()  # ...which is cancelled before it gets to run
    monkeypatch.setattr(group, "_hand_off", hand_off_then_cancel)
    store.gate.set()
    assert await asyncio.wait_for(first, 5) == ["one@conn0"]
    with pytest.raises(asyncio.CancelledError):
        await named
    # `two` was cancelled before it could lead: the lead passed to `three`, which commits alone.
    assert await asyncio.wait_for(after, 5) == ["three@conn2"]
    assert store.committed == ["one", "three"]


async def test_callers_coming_back_are_waited_for_so_a_closed_loop_commits_as_one_group() -> None:
    store = FakeStore(delay_s=0.01)
    group = group_of(store)

    async def loop(n: int) -> None:
        for k in range(10):
            await group.submit(f"conn{n}", [f"{n}.{k}"])
            await asyncio.sleep(0.001)  # what a caller does between appends (a round trip)
    await asyncio.wait_for(asyncio.gather(*(loop(n) for n in range(8))), 10)
    assert len(store.committed) == 80
    # Without the wait the loop splits into two groups taking turns (about 20 commits).
    assert len(store.batches) <= 13, [len(b) for b in store.batches]


async def test_a_lone_caller_never_waits_for_anyone() -> None:
    store = FakeStore(delay_s=0.01)
    group = group_of(store)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for k in range(10):
        await group.submit("conn", [str(k)])
    assert loop.time() - started < 10 * 0.01 * 1.4
    assert len(store.batches) == 10


def hold_the_loop(seconds: float) -> None:
    """A caller's own work between appends (serialising its rows, say): CPU that holds the
    event loop, which no other caller can use meanwhile."""
    time.sleep(seconds)


async def test_callers_whose_own_work_outlasts_the_commit_take_turns_with_it() -> None:
    """Callers share one event loop: work between appends (serialising rows, say) blocks it.
    When that work outlasts the commit, the callers split into two cohorts, so one cohort's
    statement is in flight while the other works; merged into one group, nobody's work ever
    overlapped a statement."""
    store = FakeStore(delay_s=0.004)
    group = group_of(store)
    in_flight = 0
    overlapped = worked = 0
    commit = store.commit

    async def counted(conn: str, rows: list[str]) -> list[str]:
        nonlocal in_flight
        in_flight += 1
        try:
            return await commit(conn, rows)
        finally:
            in_flight -= 1

    group._commit = counted

    async def loop(n: int) -> None:
        nonlocal overlapped, worked
        for k in range(30):
            await group.submit(f"conn{n}", [f"{n}.{k}"])
            worked += 1
            overlapped += in_flight > 0
            hold_the_loop(0.002)
    await asyncio.wait_for(asyncio.gather(*(loop(n) for n in range(8))), 30)
    assert len(store.committed) == 240
    middle = [len(b) for b in store.batches[5:-5]]  # the loops start and end raggedly
    assert middle.count(4) >= 0.8 * len(middle), f"two cohorts of four: {middle}"
    assert overlapped > worked / 2, (overlapped, worked)


async def test_callers_whose_work_is_short_beside_the_commit_still_commit_as_one_group() -> None:
    """The split is for work that outlasts the commit: when the commit's own cost (its WAL
    flush, say) dominates, one group per round is cheaper, and the callers stay together."""
    store = FakeStore(delay_s=0.02)
    group = group_of(store)

    async def loop(n: int) -> None:
        for k in range(10):
            await group.submit(f"conn{n}", [f"{n}.{k}"])
            hold_the_loop(0.0002)
    await asyncio.wait_for(asyncio.gather(*(loop(n) for n in range(8))), 30)
    assert len(store.committed) == 80
    middle = [len(b) for b in store.batches[2:-2]]  # a stalled machine may split one round
    assert middle.count(8) >= 0.7 * len(middle), middle


async def test_one_off_callers_never_split_into_cohorts() -> None:
    """Callers that append once and go (requests) never come back, however long it takes: they
    are not a loop whose work could overlap a commit, and keep committing as whole groups."""
    store = FakeStore(delay_s=0.003)
    group = group_of(store)

    async def once(n: int) -> None:
        await group.submit(f"conn{n}", [str(n)])
    for burst in range(12):
        await asyncio.gather(*(asyncio.create_task(once(burst * 6 + k)) for k in range(6)))
        await asyncio.sleep(0.01)
    assert len(store.committed) == 72
    assert len(store.batches) <= 24, [len(b) for b in store.batches]  # split: 30 or more
