"""Remembering pure results per immutable input object, for replays that show the same day many times.

A backtest steps every preset, baseline and sweep run through the same replayed snapshot of a
day, so the functions of that frozen snapshot (volatility of its closes, its funding series,
its freshness) are asked the same question dozens of times. `SameInputMemo` answers repeats
from a small table keyed by the inputs' identity. Entries hold their inputs alive, so an id
cannot be reused while it is remembered; the table is emptied when full.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
V = TypeVar("V")


class SameInputMemo(Generic[T]):
    """A bounded table of results keyed by the identity of immutable inputs plus hashable args."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._entries: dict[tuple, tuple[tuple[object, ...], T]] = {}

    def get(self, inputs: tuple[object, ...], args: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
        """The remembered result for these very input objects and args, else `compute()`."""
        # Every remembered input is kept alive by its entry, so no other live object can have
        # its id: a matching key means the very same objects.
        key = (*map(id, inputs), *args)
        hit = self._entries.get(key)
        if hit is not None:
            return hit[1]
        value = compute()
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[key] = (inputs, value)
        return value


class _Chain(Generic[V]):
    """Items met in a row, the value of each with its predecessor (values[0] has none)."""

    __slots__ = ("ids", "items", "values")

    def __init__(self, items: list[object], ids: list[int], values: list[V | None]) -> None:
        self.items = items  # kept alive: their ids stay theirs while the chain is remembered
        self.ids = ids
        self.values = values


class PairChains(Generic[V]):
    """`pairs(items)`: a value for each two consecutive items, for windows sliding along a series.

    A replay hands out the same series day after day as a window moved on by one item (the
    closes of the last N days). Each window is matched against a chain of items met before: if
    the chain holds it, its values are a slice of the chain's; if it is the chain plus one new
    item, the chain grows by that item; otherwise the window starts a chain of its own. Only a
    chain's newest item is registered for look-up, so a window that is never seen again (a live
    snapshot's) costs one entry. Matching compares the items' identities, so equal values in
    other objects never match; chains are dropped when they hold more than `limit` items.
    `pairs` must give each pair's value from those two items alone.
    """

    def __init__(self, pairs: Callable[[Sequence[Any]], list[V]], limit: int) -> None:
        self.pairs, self.limit = pairs, limit
        self._where: dict[int, tuple[_Chain[V], int]] = {}  # id(item) → chain, its position
        self._size = 0
        self.has_none = False  # whether a remembered value is None (a pair with no value)

    def values(self, items: tuple[Any, ...]) -> list[V]:
        """The pair values of `items` in order (len(items) − 1 of them)."""
        n = len(items)
        if n < 2:
            return []
        ids = list(map(id, items))
        hit = self._where.get(ids[-1])
        if hit is not None:  # a window ending at an item met before
            chain, j = hit
            if j + 1 >= n and chain.ids[j - n + 1 : j + 1] == ids:
                return chain.values[j - n + 2 : j + 1]
        hit = self._where.get(ids[-2])
        if hit is not None:  # a chain's newest items, and one more
            chain, j = hit
            if j == len(chain.ids) - 1 and j + 2 >= n and chain.ids[j - n + 2 : j + 1] == ids[:-1]:
                [value] = self.pairs(items[-2:])
                chain.items.append(items[-1])
                chain.ids.append(ids[-1])
                chain.values.append(value)
                self.has_none = self.has_none or value is None
                self._register(ids[-1], chain, j + 1, 1)
                return chain.values[j - n + 3 : j + 2]
        values = self.pairs(items)
        self._register(ids[-1], _Chain(list(items), ids, [None, *values]), n - 1, n)
        self.has_none = self.has_none or None in values
        return values

    def _register(self, key: int, chain: _Chain[V], position: int, items: int) -> None:
        if self._size + items > self.limit:
            self._where.clear()
            self._size = 0
            self.has_none = False
        self._where[key] = (chain, position)
        self._size += items
