"""Work done once: each result remembered for the process, and across runs on disk under ``--lm-cache``.

Whole distributions are heavy (a float32 per vocabulary entry: 1 MB at 262,144 rows, and a scored text holds one per
position), so the memo holds at most ``defaults.MEMO_MB`` of them, the least recently used let go first; a result the
plan still owes a test (``owe``: computed with its batch, not yet asked as often as the plan asks it) goes only when
nothing else is left to let go, since letting it go costs its whole batch read again. A result let go is read again
exactly as it was first read: a single request alone (teacher forcing, logits, draws, a next-token question outside
the plan), a planned one in its own batch (``Scheduler.provide``), or from --lm-cache's file. So numbers never
depend on what was let go, and a run's reports stay the same bytes."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy

from ..config import defaults
from .store import ObservationStore

HEAVY = 1 << 16  # bytes of numbers from which a result counts against the budget (a distribution of 16,384 entries)


def weight(value: Any) -> int:
    """Bytes of numbers a result holds: its arrays, through lists, tuples and the backends' plain records."""
    if isinstance(value, numpy.ndarray):
        return int(value.nbytes)
    if isinstance(value, (list, tuple)):
        return sum(weight(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return sum(weight(getattr(value, name)) for name in value.__dataclass_fields__)
    return 0


class Memo:
    """Results by request key: in memory, then on disk (``--lm-cache``, keyed by the environment fingerprint).

    Values are plain data (numbers, ids, texts, observations), so they pickle as they are.
    """

    def __init__(self, store: ObservationStore | None = None, budget_mb: int | None = None) -> None:
        self.store = store
        self.reading_disk = True  # forget() turns it off: what is asked next is computed afresh
        self._values: dict[tuple[Any, ...], Any] = {}
        self.stats: Counter[str] = Counter()  # computed, reused, from_disk, shared, let go
        self.budget = (defaults.MEMO_MB if budget_mb is None else budget_mb) << 20
        self._heavy: OrderedDict[tuple[Any, ...], int] = OrderedDict()  # heavy results' bytes, least recent first
        self.held = 0  # bytes of heavy results held
        self._owed: Counter[tuple[Any, ...]] = Counter()  # how many more times the plan's tests ask each request

    def owe(self, keys: Iterable[tuple[Any, ...]]) -> None:
        """The requests the plan's tests will ask, once per test that asks each (a key twice: two tests ask it)."""
        self._owed = Counter(keys)

    def asked(self, key: tuple[Any, ...]) -> None:
        """A test asked this request: one fewer time owed."""
        if self._owed.get(key, 0) > 0:
            self._owed[key] -= 1

    def _unowed(self) -> tuple[Any, ...] | None:
        """The least recently used heavy result no test is owed any more (None when every one is owed)."""
        return next((key for key in self._heavy if self._owed.get(key, 0) == 0), None)

    def _keep(self, key: tuple[Any, ...], value: Any) -> None:
        """Remember a result; over the budget, let the least recently used heavy ones go (never the newest)."""
        self.held -= self._heavy.pop(key, 0)
        self._values[key] = value
        size = weight(value)
        if size < HEAVY:
            return
        self._heavy[key] = size
        self.held += size
        while self.held > self.budget and len(self._heavy) > 1:
            gone = self._unowed()
            if gone is None or gone == key:  # all owed (or only the newest is not): the least recently used
                gone = next(iter(self._heavy))
            self.held -= self._heavy.pop(gone)
            del self._values[gone]
            self.stats["let go"] += 1

    def get(self, key: tuple[Any, ...], counted: bool = True) -> Any | None:
        """The remembered result, or None. ``counted`` False keeps token lookups out of the figures."""
        if key in self._values:
            self.stats["reused"] += counted
            if key in self._heavy:
                self._heavy.move_to_end(key)
            return self._values[key]
        if self.store is not None and self.reading_disk:
            found = self.store.get(key)
            if found is not None:
                self.stats["from_disk"] += counted
                self._keep(key, found)
                return found
        return None

    def __contains__(self, key: tuple[Any, ...]) -> bool:
        return key in self._values or (self.store is not None and self.reading_disk and self.store.has(key))

    def put(self, key: tuple[Any, ...], value: Any, counted: bool = True) -> Any:
        """A result computed here: remembered, and written to --lm-cache."""
        self.stats["computed"] += counted
        self._keep(key, value)
        if self.store is not None:
            self.store.put(key, value)
        return value

    def share(self, key: tuple[Any, ...], value: Any) -> None:
        """A result another worker computed in this run: remembered, not counted as computed here."""
        self.stats["shared"] += 1
        self._keep(key, value)

    def through(self, key: tuple[Any, ...], compute: Any) -> Any:
        """A token lookup (encode, decode): remembered, and read back under --lm-cache so an unchanged re-run needs
        no tokenizer; kept out of the figures."""
        found = self.get(key, counted=False)
        return found if found is not None else self.put(key, compute(), counted=False)

    def forget(self) -> None:
        """Drop what is remembered and stop reading --lm-cache; results are still written to it."""
        self._values.clear()
        self._heavy.clear()
        self.held = 0
        self.reading_disk = False
