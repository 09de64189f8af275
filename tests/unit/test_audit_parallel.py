"""Checking messages in worker processes gives the very outcome of a single process: the same
summary, the same breaks in the same order, the same graph."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from golden_thread.audit import parallel_store
from golden_thread.audit.parallel import feed_batches
from golden_thread.audit.scenario import Story, build_story
from golden_thread.audit.synthetic import deliver
from golden_thread.audit.trace import trace_action, trace_participant
from golden_thread.audit.verify import Replay, ReplayOptions

Message = dict[str, Any]


@pytest.fixture(scope="module")
def story() -> Story:
    return build_story(seed=17, conversations=40)


def messages_of(story: Story) -> list[Message]:
    return [e.model_dump(mode="json") for e in deliver(story.events, seed=3)]


async def _batches(raws: list[str], size: int) -> AsyncIterator[list[str | bytes]]:
    for i in range(0, len(raws), size):
        yield list(raws[i:i + size])


def replay_both(messages: list[Message], **options: Any) -> tuple[Replay, Replay]:
    raws = [json.dumps(m) for m in messages] + ['{"type": "Nonsense"}']
    alone = Replay(ReplayOptions(**options)).feed_all(raws)
    parallel = Replay(ReplayOptions(parallel_after=7, **options))
    asyncio.run(feed_batches(parallel, _batches(raws, 5), workers=2))
    return alone, parallel


def test_an_untouched_history_gives_the_same_outcome(story: Story) -> None:
    alone, parallel = replay_both(messages_of(story))
    expected, found = alone.finish(), parallel.finish()
    assert found.as_json() == expected.as_json()
    assert found.breaks_total == 1  # the message that is not an event
    action = str(story.actions[0].data.action_id)
    assert trace_action(parallel.graph, action) == trace_action(alone.graph, action)
    assert story.erased is not None
    assert (trace_participant(parallel.graph, story.erased)
            == trace_participant(alone.graph, story.erased))


def test_a_tampered_history_names_the_same_breaks(story: Story) -> None:
    messages = messages_of(story)
    at = next(i for i, m in enumerate(messages)
              if m["source"] == "intake" and m["sequence"] == 9)
    messages[at]["data"]["place"] = "Elsewhere"
    del messages[next(i for i, m in enumerate(messages)
                      if m["source"] == "insight" and m["sequence"] == 2)]
    messages.append(dict(messages[3]))  # a redelivery
    alone, parallel = replay_both(messages, max_buffered=50)
    expected, found = alone.finish(), parallel.finish()
    assert not found.verified
    assert found.as_json() == expected.as_json()


def test_a_replay_leaves_the_collector_as_it_found_it(story: Story) -> None:
    """The long replay quiets the cycle collector for its own run only (it may run inside a
    longer-lived process: this test session, say)."""
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    seen: list[tuple[int, ...]] = []

    async def watched() -> AsyncIterator[list[str | bytes]]:
        async for batch in _batches([json.dumps(m) for m in messages_of(story)], 5):
            seen.append(gc.get_threshold())
            yield batch

    replay = Replay(ReplayOptions(parallel_after=7))
    asyncio.run(feed_batches(replay, watched(), workers=2))
    assert replay.finish().verified
    assert seen and all(t[0] >= 20_000 for t in seen)  # quieted while it ran
    assert (gc.get_threshold(), gc.get_freeze_count()) == (thresholds, frozen)


def _dies(pipe: Any, database_url: str, parents: Any) -> None:
    os._exit(3)


def _fails(pipe: Any, database_url: str, parents: Any) -> None:
    pipe.recv()
    pipe.send((False, ValueError("range 1 could not be read")))


def _answers_at_length(pipe: Any, database_url: str, parents: Any) -> None:
    for inherited in parents:
        inherited.close()
    try:
        while pipe.recv() is not None:
            pipe.send((True, [b"x" * 1_000_000]))  # more than a socket buffer holds
    except (EOFError, OSError):
        os._exit(0)


TASK = (("intake", 1, 2), None)


@pytest.mark.parametrize(("serve", "worker", "error", "says"), [
    (_dies, 0, RuntimeError, "worker 0 exited \\(exit code 3\\)"),  # not a wait for ever
    (_fails, 1, ValueError, "range 1 could not be read"),  # the worker's own error
])
def test_a_store_replay_worker_that_fails_fails_the_replay(
        monkeypatch: pytest.MonkeyPatch, serve: Any, worker: int, error: type[Exception],
        says: str) -> None:
    monkeypatch.setattr(parallel_store, "_serve", serve)
    with parallel_store._Workers(2, "postgresql://unused") as workers, \
            pytest.raises(error, match=says):
        workers.receive(workers.send(worker, TASK))


def test_a_store_replay_worker_that_cannot_connect_says_why() -> None:
    with parallel_store._Workers(1, "postgresql://audit@127.0.0.1:1/none") as workers, \
            pytest.raises(OSError):
        workers.send(0, TASK)
        workers.send(0, TASK)
        workers.receive(0)


def test_workers_stop_at_once_when_the_replay_fails_with_records_unread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel_store, "_serve", _answers_at_length)
    started = time.monotonic()
    with pytest.raises(ValueError, match="the fold failed"), \
            parallel_store._Workers(2, "postgresql://unused") as workers:
        for n in range(5):
            workers.send(n % 2, TASK)
        workers.receive(0)
        raise ValueError("the fold failed")
    assert time.monotonic() - started < 3
    assert [p.exitcode for p in workers._processes] == [0, 0]  # stopped, not terminated
