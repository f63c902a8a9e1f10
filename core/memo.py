"""Remembering pure results per immutable input object, for replays that show the same day many times.

A backtest steps every preset, baseline and sweep run through the same replayed snapshot of a
day, so the functions of that frozen snapshot (its freshness, its targets) are asked the same
question dozens of times. `SameInputMemo` answers repeats from a small table keyed by the
inputs' identity. Entries hold their inputs alive, so an id cannot be reused while it is
remembered; the table is emptied when full. (A replayed day's signals are looked up in tables
of the whole history instead: core/signal_tables.py.)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


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
