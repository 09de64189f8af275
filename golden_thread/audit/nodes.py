"""Nodes of the influence graph: ids, times and codes, never words or contact details.

The graph keeps them in columns (`graph`, `columns`); the small objects here are what `views`
builds on demand for `trace`, `stats` and `report`. Ids are `UUID.int` (or the string, for
pseudonymous participant ids), times epoch seconds. `EventIndex` holds every event's position.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from uuid import UUID

from golden_thread.audit.columns import UuidTable

Key = int | str

#: The self-described equity dimensions of a ConversationLogged, in report order.
EQUITY_DIMENSIONS = ("age_band", "ethnicity", "gender", "disability", "language", "area")


def key_of(reference: str | UUID) -> Key:
    """The compact key of an id: a UUID's integer, or the string itself.

    Accepts what `uuid.UUID` accepts for a 36-character text, as `UUID(text).int` would.
    """
    if isinstance(reference, UUID):
        return reference.int
    if len(reference) == 36:
        digits = reference.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "")
        if len(digits) == 32:
            try:
                return int(digits, 16)
            except ValueError:
                return reference
    return reference


def show(key: Key) -> str:
    return str(UUID(int=key)) if isinstance(key, int) else key


@dataclass(slots=True)
class Participant:
    node: int  # the event that first named them
    equity: tuple[str | None, ...] | None = None
    erased: bool = False
    conversations: int = 0


@dataclass(slots=True)
class Conversation:
    node: int
    participant: str
    categories: tuple[str, ...]
    place: str
    time: float


@dataclass(slots=True)
class Insight:
    node: int
    conversations: tuple[int, ...]
    category: str
    time: float  # first drafted
    revision: int
    revised: float  # this revision


@dataclass(slots=True)
class Priority:
    node: int
    insights: tuple[int, ...]
    time: float


@dataclass(slots=True)
class Action:
    node: int
    priorities: tuple[int, ...]
    time: float  # first recorded
    status: str
    place: str
    service: str
    framework: str


@dataclass(slots=True)
class Notification:
    node: int
    participant: str
    action: int
    conversations: tuple[int, ...]
    channel: str
    time: float


class EventIndex:
    """Every replayed event by id: its position, hash and recorded time, in flat arrays."""

    def __init__(self) -> None:
        self._ids = UuidTable()
        self._source: array[int] = array("H")
        self._sequence: array[int] = array("q")
        self._recorded: array[float] = array("d")
        self._hashes = bytearray()
        self._source_names: list[str] = []
        self._source_number: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: int, source: str, sequence: int, hash_: bytes, recorded: float) -> int:
        """The new event's node; if its id is already known, -1 - that event's node."""
        node = self._ids.put(event_id)
        if node < 0:
            return node
        number = self._source_number.get(source)
        if number is None:
            number = self._source_number[source] = len(self._source_names)
            self._source_names.append(source)
        self._source.append(number)
        self._sequence.append(sequence)
        self._recorded.append(recorded)
        self._hashes += hash_
        return node

    def node(self, event_id: int) -> int:
        """The node of an event id, or -1."""
        return self._ids.find(event_id)

    def position(self, node: int) -> tuple[str, int, bytes]:
        return (self._source_names[self._source[node]], self._sequence[node],
                bytes(self._hashes[node * 32:node * 32 + 32]))

    def recorded(self, node: int) -> float:
        return self._recorded[node]

    def event_id(self, node: int) -> str:
        return str(UUID(int=self._ids.key(node)))
