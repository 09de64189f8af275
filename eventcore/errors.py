"""Describing errors without personal data: the type and where it happened, never the message
(driver and validation messages can quote the values they choked on)."""

from __future__ import annotations

import asyncio
import traceback


def describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    where = " <- ".join(f"{f.name}@{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in reversed(frames))
    return f"{type(exc).__name__} at {where}" if where else type(exc).__name__


def waiting_at(task: asyncio.Task[object]) -> str:
    """Where a task is suspended: its await chain, outermost first (function@file:line, no
    values), down to the coroutine that waits on a future."""
    steps: list[str] = []
    awaitable: object = task.get_coro()
    while awaitable is not None and len(steps) < 50:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "ag_frame", None)
        if frame is None:
            break
        steps.append(f"{frame.f_code.co_name}@{frame.f_code.co_filename.rsplit('/', 2)[-1]}"
                     f":{frame.f_lineno}")
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "ag_await", None)
    return " -> ".join(steps) or "(not started)"
