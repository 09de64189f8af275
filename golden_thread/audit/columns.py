"""Compact lookup tables for the influence graph: a key maps to a dense number, and everything
else about the entity lives in `array`s indexed by that number (see `graph`).

Open addressing over an `array` of numbers: ~8 bytes of slots per entry at the load kept here,
against ~100 bytes for a `dict` entry with its key and value objects. Ids are kept whole, so a
probe compares the full id and collisions are impossible to miss.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

_M64 = (1 << 64) - 1
_START = 1 << 14
T = TypeVar("T", bound=Hashable)


class UuidTable:
    """128-bit ids (`UUID.int`) → dense numbers 0, 1, 2... in order of first sight."""

    def __init__(self) -> None:
        self._slots = array("i", bytes(4 * _START))  # number + 1; 0 is empty
        self._mask = _START - 1
        self.his: array[int] = array("Q")
        self.los: array[int] = array("Q")

    def __len__(self) -> int:
        return len(self.his)

    def find(self, key: int) -> int:
        """The number of `key`, or -1."""
        hi, lo = key >> 64, key & _M64
        slots, his, mask = self._slots, self.his, self._mask
        i = (hi ^ (hi >> 29) ^ lo) & mask
        while True:
            n = slots[i] - 1
            if n < 0:
                return -1
            if his[n] == hi and self.los[n] == lo:
                return n
            i = (i + 1) & mask

    def add(self, key: int) -> int:
        """Number a key not in the table yet (check with `find` first)."""
        n = self.put(key)
        if n < 0:
            raise KeyError("already numbered")
        return n

    def put(self, key: int) -> int:
        """Number `key` if new and return its number; if known, return -1 - its number."""
        if 2 * len(self.his) >= self._mask:
            self._grow()
        hi, lo = key >> 64, key & _M64
        slots, his, mask = self._slots, self.his, self._mask
        i = (hi ^ (hi >> 29) ^ lo) & mask
        while True:
            n = slots[i] - 1
            if n < 0:
                break
            if his[n] == hi and self.los[n] == lo:
                return -1 - n
            i = (i + 1) & mask
        n = len(his)
        his.append(hi)
        self.los.append(lo)
        slots[i] = n + 1
        return n

    def key(self, n: int) -> int:
        return (self.his[n] << 64) | self.los[n]

    def keys(self) -> Iterator[int]:
        for hi, lo in zip(self.his, self.los, strict=True):
            yield (hi << 64) | lo

    def _place(self, n: int, hi: int, lo: int) -> None:
        slots, mask = self._slots, self._mask
        i = (hi ^ (hi >> 29) ^ lo) & mask
        while slots[i]:
            i = (i + 1) & mask
        slots[i] = n + 1

    def _grow(self) -> None:
        size = 2 * (self._mask + 1)
        self._slots = array("i", bytes(4 * size))
        self._mask = size - 1
        for n, (hi, lo) in enumerate(zip(self.his, self.los, strict=True)):
            self._place(n, hi, lo)


class TextTable:
    """Short texts (pseudonymous participant ids) → dense numbers, held as one UTF-8 buffer."""

    def __init__(self) -> None:
        self._slots = array("i", bytes(4 * _START))
        self._mask = _START - 1
        self._hashes: array[int] = array("q")
        self._ends: array[int] = array("L")
        self._text = bytearray()

    def __len__(self) -> int:
        return len(self._hashes)

    def find(self, text: str) -> int:
        h = hash(text)
        slots, hashes, mask = self._slots, self._hashes, self._mask
        i = h & mask
        while True:
            n = slots[i] - 1
            if n < 0:
                return -1
            if hashes[n] == h and self.text(n) == text:
                return n
            i = (i + 1) & mask

    def number(self, text: str) -> int:
        """The number of `text`, added if new."""
        if 2 * len(self._hashes) >= self._mask:
            self._grow()
        h = hash(text)
        slots, hashes, mask = self._slots, self._hashes, self._mask
        i = h & mask
        while True:
            n = slots[i] - 1
            if n < 0:
                break
            if hashes[n] == h and self.text(n) == text:
                return n
            i = (i + 1) & mask
        n = len(hashes)
        hashes.append(h)
        self._text += text.encode("utf-8")
        self._ends.append(len(self._text))
        slots[i] = n + 1
        return n

    def text(self, n: int) -> str:
        start = self._ends[n - 1] if n else 0
        return self._text[start:self._ends[n]].decode("utf-8")

    def _place(self, n: int, h: int) -> None:
        slots, mask = self._slots, self._mask
        i = h & mask
        while slots[i]:
            i = (i + 1) & mask
        slots[i] = n + 1

    def _grow(self) -> None:
        size = 2 * (self._mask + 1)
        self._slots = array("i", bytes(4 * size))
        self._mask = size - 1
        for n, h in enumerate(self._hashes):
            self._place(n, h)


class Interned(Generic[T]):
    """Few distinct values (codes, places, category sets, equity profiles) → small numbers."""

    def __init__(self) -> None:
        self.values: list[T] = []
        self._number: dict[T, int] = {}

    def number(self, value: T) -> int:
        n = self._number.get(value)
        if n is None:
            n = self._number[value] = len(self.values)
            self.values.append(value)
        return n


class RefLists:
    """A list of 128-bit ids per entity number, all in flat arrays (`start` of each list)."""

    def __init__(self) -> None:
        self._his: array[int] = array("Q")
        self._los: array[int] = array("Q")
        self._starts: array[int] = array("L")
        self._replaced: dict[int, tuple[int, ...]] = {}

    def append(self, refs: tuple[int, ...]) -> None:
        self._starts.append(len(self._his))
        for ref in refs:
            self._his.append(ref >> 64)
            self._los.append(ref & _M64)

    def set(self, n: int, refs: tuple[int, ...]) -> None:
        """Replace entity `n`'s list (a newer version of it)."""
        self._replaced[n] = refs

    def get(self, n: int) -> tuple[int, ...]:
        replaced = self._replaced.get(n)
        if replaced is not None:
            return replaced
        start = self._starts[n]
        end = self._starts[n + 1] if n + 1 < len(self._starts) else len(self._his)
        return tuple((self._his[i] << 64) | self._los[i] for i in range(start, end))
