"""The group commit on uvloop, the services' event loop (eventcore/store/group.py): its clock.

uvloop's `loop.time()` counts whole milliseconds and is read once per turn of the loop; a group
timed by it saw a commit of under a millisecond take no time at all, so it never waited for the
callers it had just released, and any caller's return looked long beside it
(docs/performance.md finding 108). Each test runs its own uvloop loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import uvloop

from eventcore.store.group import GroupCommit


def answer_after(seconds: float) -> None:
    """The database's answer, arriving while the loop is held (within one turn of it)."""
    time.sleep(seconds)


def test_a_commit_shorter_than_a_millisecond_is_timed_as_it_took() -> None:
    took: list[float] = []

    async def commit(conn: str, rows: list[str]) -> list[str]:
        answer_after(0.0004)
        return rows

    async def main() -> None:
        group: GroupCommit[str, str, str] = GroupCommit(commit, isolate=lambda e: False)
        timed = group._next_round

        def spy(released: list[Any], took_s: float) -> None:
            took.append(took_s)
            timed(released, took_s)

        group._next_round = spy  # type: ignore[method-assign]
        for k in range(5):
            assert await group.submit("conn", [str(k)]) == [str(k)]

    uvloop.run(main())
    assert len(took) == 5 and min(took) >= 0.0004, took


def test_a_closed_loop_with_quick_commits_still_commits_as_one_group() -> None:
    """What the coarse clock cost: eight callers in a loop, commits of under a millisecond."""
    committed: list[str] = []
    commits: list[int] = []

    async def commit(conn: str, rows: list[str]) -> list[str]:
        commits.append(len(rows))
        answer_after(0.0004)
        await asyncio.sleep(0)  # the answer is read on a later turn of the loop
        committed.extend(rows)
        return rows

    async def main() -> None:
        group: GroupCommit[str, str, str] = GroupCommit(commit, isolate=lambda e: False)

        async def caller(n: int) -> None:
            for k in range(20):
                assert await group.submit(f"conn{n}", [f"{n}.{k}"]) == [f"{n}.{k}"]
        await asyncio.wait_for(asyncio.gather(*(caller(n) for n in range(8))), 30)

    uvloop.run(main())
    assert sorted(committed) == sorted(f"{n}.{k}" for n in range(8) for k in range(20))
    assert len(commits) <= 30, commits  # timed by the loop's clock: 39 (cohorts of four)
