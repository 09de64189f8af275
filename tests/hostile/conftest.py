"""One running app per service for the whole hostile suite (consumer-group joins are slow), on the
session's real broker and PostgreSQL, torn down when the package is done so that no consumer of
ours stays in a group the next test module joins.

Hypothesis runs in a worker thread and each example hops onto the event loop the apps run on, so
the services' background work (consumers' heartbeats, relays, the scheduler) keeps running
between examples.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI

from eventcore.embedded import StackEndpoints
from services.feedback.domain.delivery import ContactLookup, Gone
from tests.integration.feedback_fixtures import Clock, running_feedback, smtp_server
from tests.integration.insight_fixtures import running_insight
from tests.integration.intake_fixtures import running_intake
from tests.integration.priority_fixtures import running_priority

T = TypeVar("T")

#: suite -> case -> number of hypothesis examples run, printed at the end of the session.
CASES_TRIED: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


class NobodyToContact:
    """Feedback's contact reader: the hostile suite never sends anything to anyone."""

    async def read(self, participant_id: str) -> ContactLookup:
        return Gone(participant_id, "unknown_participant")


@dataclass
class Service:
    name: str
    app: FastAPI
    client: Any  # the fixture's httpx client (its default headers carry the credentials)
    running: Any

    @property
    def pool(self) -> Any:
        return self.app.state.runtime.pool


@dataclass
class Services:
    loop: asyncio.AbstractEventLoop
    by_name: dict[str, Service] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Service:
        return self.by_name[name]

    def run(self, coro: Awaitable[T], timeout_s: float = 120.0) -> T:
        """From the hypothesis thread: run `coro` on the apps' loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)  # type: ignore[arg-type]


@pytest.fixture(scope="package")
async def services(endpoints: StackEndpoints) -> AsyncIterator[Services]:
    async with AsyncExitStack() as stack:
        _, smtp_port = await stack.enter_async_context(smtp_server())
        contexts: dict[str, Any] = {
            "intake": running_intake(endpoints),
            "insight": running_insight(endpoints),
            "priority": running_priority(endpoints),
            "feedback": running_feedback(endpoints, contacts=NobodyToContact(), clock=Clock(),
                                         smtp_port=smtp_port,
                                         feedback_trusted_action_sources=("trust.hostile",)),
        }
        # Started together: each consumer group join takes seconds on the embedded broker.
        started = await asyncio.gather(*(stack.enter_async_context(c) for c in contexts.values()))
        found = Services(asyncio.get_running_loop())
        for name, running in zip(contexts, started, strict=True):
            found.by_name[name] = Service(name, running.app, running.client, running)
        yield found


async def in_thread(test: Callable[[], None]) -> None:
    """Run a (synchronous) hypothesis test off the loop, so the loop can serve its examples."""
    await asyncio.to_thread(test)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not CASES_TRIED:
        return
    terminalreporter.section("hostile input: cases tried")
    for suite, cases in sorted(CASES_TRIED.items()):
        terminalreporter.write_line(f"{suite}: {sum(cases.values())} cases")
        for case, count in sorted(cases.items()):
            terminalreporter.write_line(f"    {count:6d}  {case}")
