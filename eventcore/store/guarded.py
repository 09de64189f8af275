"""Appends that rest on rows of the caller's own: a guard locks those rows before the head is
touched and lets through only the callers whose rows still allow the append.

Intake logs a returning participant's conversation this way: the guard locks the participant's
row and refuses the append if they were erased after their key was read. Every writer that
locks such a row and then appends (an erasure, a consent change) locks it before the head too,
and a guard's statement orders the rows it locks (by primary key), so no two of them wait on
each other in a cycle.

A group of such callers (`EventStore.append_with` with a guard) costs one transaction: BEGIN,
the guard for every caller at once, the appends in one pipelined round trip
(`single.append_many`), COMMIT. The head row is locked from the appends to the commit, once per
group, where one transaction per caller held it through a locked read, the append, the read
models' statement and the commit, one caller after another. In a group the guard skips rows that
another transaction holds (`SKIP LOCKED`): their callers are not waited for there but try again
each on its own (`GuardSkipped`), so one held row delays its own caller, not every group.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from eventcore.store.batch import BatchConflict, Prepared
from eventcore.store.records import RecordedEvent
from eventcore.store.single import append_many

_ENDS_LOCKING = re.compile(r"\bFOR\s+UPDATE(\s+OF\s+\w+(\s*,\s*\w+)*)?\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Guard:
    """`statement` is given the keys of a group's callers as a text array ($1), locks their rows
    in one order (`ORDER BY` the primary key, ending `FOR UPDATE`, to which a group adds
    `SKIP LOCKED`) and returns the keys (one column) whose callers may append; `key` is this
    caller's. In a transaction that has appended already, a guard would lock after the head:
    guard a transaction's first append only."""

    statement: str
    key: str

    def __post_init__(self) -> None:
        if not _ENDS_LOCKING.search(self.statement):
            raise ValueError("guard: the statement must end in FOR UPDATE [OF ...], to which a "
                             "group adds SKIP LOCKED")


class GuardRefused(Exception):
    """The guard did not let the caller through: nothing of theirs was written."""

    def __init__(self, key: str) -> None:
        super().__init__("refused by the append's guard")
        self.key = key


class GuardSkipped(GuardRefused):
    """In a group, another transaction held the caller's row: try again alone, waiting for it."""


#: Per caller of a guarded group: its row, its writes' arguments and its guard's key.
GuardedItem = tuple[Prepared, Sequence[Any], str]


async def append_guarded(conn: asyncpg.Connection, source: str, channel: str | None,
                         statement: str, guard: str, items: Sequence[GuardedItem], *,
                         wait: bool) -> list[RecordedEvent | BatchConflict | GuardRefused]:
    """In one transaction (a savepoint in the caller's, if there is one): `guard` for all the
    items' keys, then `statement` for each item it let through. Per item its record, the
    conflict that left it unwritten, or `GuardRefused` (`GuardSkipped` when not `wait`ing: the
    guard skipped rows other transactions held). A conflict raised by the appends names its
    item's index in `items` (`BatchConflict.row`), as a group commit's `blame` expects."""
    async with conn.transaction():
        passed = {row[0] for row in await conn.fetch(
            guard if wait else f"{guard} SKIP LOCKED", sorted({k for _, _, k in items}))}
        through = [n for n, (_, _, key) in enumerate(items) if key in passed]
        try:
            written = await append_many(conn, source, channel, statement,
                                        [(items[n][0], items[n][1]) for n in through]
                                        ) if through else []
        except BatchConflict as exc:
            if exc.row is not None:
                exc.row = through[exc.row]
            raise
    refused = GuardRefused if wait else GuardSkipped
    outcomes: list[RecordedEvent | BatchConflict | GuardRefused] = [
        refused(key) for _, _, key in items]
    for n, outcome in zip(through, written, strict=True):
        outcomes[n] = outcome
    return outcomes
