"""The columnar influence graph read back as mappings of small objects (`nodes`), keyed as
before: `UUID.int` for conversations, insights, priorities, actions and notifications, the
pseudonymous id for participants. Built on demand, for `trace`, `stats` and `report`.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from golden_thread.audit.columns import Interned, RefLists, TextTable, UuidTable
from golden_thread.audit.nodes import (
    Action,
    Conversation,
    Insight,
    Notification,
    Participant,
    Priority,
)

if TYPE_CHECKING:
    from golden_thread.audit.nodes import EventIndex

K = TypeVar("K")
V = TypeVar("V")


class TableView(Mapping[K, V], Generic[K, V]):
    """A read-only mapping over a table: `find` gives a number (or -1), `build` the object."""

    def __init__(self, find: Callable[[K], int], keys: Callable[[], Iterator[K]],
                 build: Callable[[int], V], size: Callable[[], int]) -> None:
        self._find, self._keys, self._build, self._size = find, keys, build, size

    def __getitem__(self, key: K) -> V:
        n = self._find(key)
        if n < 0:
            raise KeyError(key)
        return self._build(n)

    def __contains__(self, key: object) -> bool:
        try:
            return self._find(key) >= 0  # type: ignore[arg-type]
        except TypeError:
            return False

    def __iter__(self) -> Iterator[K]:
        return self._keys()

    def __len__(self) -> int:
        return self._size()


class GraphViews:
    """Mixin of `InfluenceGraph`: the columns it fills, read back as mappings."""

    index: EventIndex
    names: Interned[Any]
    people: TextTable
    p_node: array[int]
    p_equity: array[int]
    p_erased: bytearray
    p_conversations: array[int]
    convs: UuidTable
    c_node: array[int]
    c_participant: array[int]
    c_categories: array[int]
    c_place: array[int]
    c_time: array[float]
    notes: UuidTable
    n_node: array[int]
    n_participant: array[int]
    n_action: RefLists
    n_conversations: RefLists
    n_channel: array[int]
    n_time: array[float]
    ins: UuidTable
    i_node: array[int]
    i_conversations: RefLists
    i_category: array[int]
    i_time: array[float]
    i_revision: array[int]
    i_revised: array[float]
    pri: UuidTable
    r_node: array[int]
    r_insights: RefLists
    r_time: array[float]
    act: UuidTable
    a_node: array[int]
    a_priorities: RefLists
    a_time: array[float]
    a_names: array[int]

    @cached_property
    def participants(self) -> Mapping[str, Participant]:
        def find(pid: str) -> int:
            p = self.people.find(pid) if isinstance(pid, str) else -1
            return p if p >= 0 and self.p_node[p] >= 0 else -1

        def keys() -> Iterator[str]:
            return (self.people.text(p) for p in range(len(self.p_node)) if self.p_node[p] >= 0)

        def build(p: int) -> Participant:
            e = self.p_equity[p]
            return Participant(self.p_node[p], None if e < 0 else self.names.values[e],
                               bool(self.p_erased[p]), self.p_conversations[p])

        return TableView(find, keys, build, lambda: sum(1 for n in self.p_node if n >= 0))

    @cached_property
    def conversations(self) -> Mapping[int, Conversation]:
        def build(n: int) -> Conversation:
            return Conversation(self.c_node[n], self.people.text(self.c_participant[n]),
                                self.names.values[self.c_categories[n]],
                                self.names.values[self.c_place[n]], self.c_time[n])

        return _uuid_view(self.convs, build)

    @cached_property
    def insights(self) -> Mapping[int, Insight]:
        def build(n: int) -> Insight:
            return Insight(self.i_node[n], self.i_conversations.get(n),
                           self.names.values[self.i_category[n]], self.i_time[n],
                           self.i_revision[n], self.i_revised[n])

        return _uuid_view(self.ins, build)

    @cached_property
    def priorities(self) -> Mapping[int, Priority]:
        return _uuid_view(self.pri, lambda n: Priority(self.r_node[n], self.r_insights.get(n),
                                                       self.r_time[n]))

    @cached_property
    def actions(self) -> Mapping[int, Action]:
        def build(n: int) -> Action:
            status, place, service, framework = (self.names.values[v]
                                                 for v in self.a_names[4 * n:4 * n + 4])
            return Action(self.a_node[n], self.a_priorities.get(n), self.a_time[n], status,
                          place, service, framework)

        return _uuid_view(self.act, build)

    @cached_property
    def notifications(self) -> Mapping[int, Notification]:
        def build(n: int) -> Notification:
            return Notification(self.n_node[n], self.people.text(self.n_participant[n]),
                                self.n_action.get(n)[0], self.n_conversations.get(n),
                                self.names.values[self.n_channel[n]], self.n_time[n])

        return _uuid_view(self.notes, build)


def _uuid_view(table: UuidTable, build: Callable[[int], V]) -> TableView[int, V]:
    def find(key: int) -> int:
        return table.find(key) if isinstance(key, int) else -1

    return TableView(find, table.keys, build, table.__len__)
