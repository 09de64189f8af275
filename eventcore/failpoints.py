"""Failpoints: named places in the core where a fault test can make a process die, fail or stall.

Off unless the environment names them, so production pays one dictionary lookup per call.

    GT_FAILPOINTS="relay.after_ack:0.2"           kill -9 at each hit with probability 0.2
    GT_FAILPOINTS="relay.after_ack:3"             kill -9 at the 3rd hit (once)
    GT_FAILPOINTS="consumer.handler:2:sleep=3"    stall 3 s at the 2nd hit (awaited points only)
    GT_FAILPOINTS="consumer.handler:1.0:raise"    raise FailpointError at every hit

Several are separated by commas. A trigger with a dot is a probability, without one the Nth hit.
GT_FAILPOINTS_FILE names a file holding the same text, read again whenever it changes, so a
supervisor can arm and disarm a running process (hit counters restart with each new text).

The points: `relay.before_publish` (events committed, not yet sent), `relay.after_ack` (the
broker acknowledged, the cursor not yet moved), `consumer.handler` (inside the inbox
transaction, before the handler), `consumer.before_offset_commit` (effects committed, offset
not yet committed).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from dataclasses import dataclass

ENV = "GT_FAILPOINTS"
FILE_ENV = "GT_FAILPOINTS_FILE"
_RECHECK_S = 0.05


class FailpointError(RuntimeError):
    """Raised by a failpoint armed with the `raise` action."""


@dataclass
class _Point:
    probability: float | None
    nth: int | None
    action: str  # kill | raise | sleep
    seconds: float = 0.0
    hits: int = 0

    def fires(self) -> bool:
        self.hits += 1
        if self.nth is not None:
            return self.hits == self.nth
        return random.random() < (self.probability or 0.0)


def parse(text: str) -> dict[str, _Point]:
    """`name:trigger[:action]`, comma-separated; raises ValueError on a malformed entry."""
    points: dict[str, _Point] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, _, rest = entry.partition(":")
        trigger, _, action = rest.partition(":")
        if not name or not trigger:
            raise ValueError(f"failpoint {entry!r}: expected name:trigger[:action]")
        probability = float(trigger) if "." in trigger else None
        nth = None if probability is not None else int(trigger)
        kind, _, value = (action or "kill").partition("=")
        if kind not in ("kill", "raise", "sleep"):
            raise ValueError(f"failpoint {entry!r}: action must be kill, raise or sleep=SECONDS")
        points[name] = _Point(probability, nth, kind, float(value or 0))
    return points


class _Registry:
    def __init__(self) -> None:
        self.points = parse(os.environ.get(ENV, ""))
        self.file = os.environ.get(FILE_ENV) or None
        self._file_text: str | None = None
        self._checked = 0.0

    def armed(self, name: str) -> _Point | None:
        if self.file is not None:
            self._reload()
        return self.points.get(name) if self.points else None

    def _reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < _RECHECK_S:
            return
        self._checked = now
        try:
            with open(self.file or "", encoding="utf-8") as f:
                text = f.read()
        except OSError:
            text = ""
        if text != self._file_text:
            self._file_text = text
            self.points = {**parse(os.environ.get(ENV, "")), **parse(text)}


_registry = _Registry()


def configure(text: str) -> None:
    """Arm failpoints in this process (tests); replaces what was armed."""
    _registry.points = parse(text)


def _fire(name: str) -> _Point | None:
    point = _registry.armed(name)
    if point is None or not point.fires():
        return None
    print(f"{time.strftime('%H:%M:%S')} failpoint {name}: {point.action} (hit {point.hits})",
          file=sys.stderr, flush=True)
    if point.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if point.action == "raise":
        raise FailpointError(f"failpoint {name}")
    return point


def hit(name: str) -> None:
    """A failpoint in synchronous flow: kill or raise (a sleep here would block the loop)."""
    _fire(name)


async def hit_async(name: str) -> None:
    """A failpoint that may also stall (sleep) without blocking the event loop."""
    point = _fire(name)
    if point is not None and point.action == "sleep":
        await asyncio.sleep(point.seconds)
