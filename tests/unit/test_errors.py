"""Describing errors and stuck tasks without values (they may quote personal data)."""

from __future__ import annotations

import asyncio

from eventcore.errors import describe, waiting_at


async def test_waiting_at_names_the_whole_await_chain_of_a_suspended_task() -> None:
    never = asyncio.get_running_loop().create_future()

    async def innermost(secret: str) -> None:
        await never

    async def middle() -> None:
        await innermost("alice@example.org")

    task = asyncio.create_task(middle(), name="stuck")
    await asyncio.sleep(0)
    where = waiting_at(task)
    task.cancel()
    assert where.startswith("middle@test_errors.py:")
    assert " -> innermost@test_errors.py:" in where
    assert "alice" not in where  # places only, never values


async def test_waiting_at_a_task_not_started_yet() -> None:
    async def later() -> None:
        await asyncio.sleep(0)

    task = asyncio.create_task(later())
    assert waiting_at(task).startswith("later@")  # a coroutine not yet run has a frame too
    await task


def test_describe_names_type_and_place_but_not_the_message() -> None:
    try:
        raise ValueError("alice@example.org is not allowed")
    except ValueError as exc:
        text = describe(exc)
    assert text.startswith("ValueError at ") and "alice" not in text
