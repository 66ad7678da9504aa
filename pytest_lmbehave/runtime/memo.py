"""Work done once: each result remembered for the process, and across runs on disk under ``--lm-cache``."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .store import ObservationStore


class Memo:
    """Results by request key: in memory, then on disk (``--lm-cache``, keyed by the environment fingerprint).

    Values are plain data (numbers, ids, texts, observations), so they pickle as they are.
    """

    def __init__(self, store: ObservationStore | None = None) -> None:
        self.store = store
        self.reading_disk = True  # forget() turns it off: what is asked next is computed afresh
        self._values: dict[tuple[Any, ...], Any] = {}
        self.stats: Counter[str] = Counter()  # computed, reused, from_disk, shared

    def get(self, key: tuple[Any, ...], counted: bool = True) -> Any | None:
        """The remembered result, or None. ``counted`` False keeps token lookups out of the figures."""
        if key in self._values:
            self.stats["reused"] += counted
            return self._values[key]
        if self.store is not None and self.reading_disk:
            found = self.store.get(key)
            if found is not None:
                self.stats["from_disk"] += counted
                self._values[key] = found
                return found
        return None

    def __contains__(self, key: tuple[Any, ...]) -> bool:
        return key in self._values or (self.store is not None and self.reading_disk and self.store.has(key))

    def put(self, key: tuple[Any, ...], value: Any, counted: bool = True) -> Any:
        """A result computed here: remembered, and written to --lm-cache."""
        self.stats["computed"] += counted
        self._values[key] = value
        if self.store is not None:
            self.store.put(key, value)
        return value

    def share(self, key: tuple[Any, ...], value: Any) -> None:
        """A result another worker computed in this run: remembered, not counted as computed here."""
        self.stats["shared"] += 1
        self._values[key] = value

    def through(self, key: tuple[Any, ...], compute: Any) -> Any:
        """A token lookup (encode, decode): remembered, and read back under --lm-cache so an unchanged re-run needs
        no tokenizer; kept out of the figures."""
        found = self.get(key, counted=False)
        return found if found is not None else self.put(key, compute(), counted=False)

    def forget(self) -> None:
        """Drop what is remembered and stop reading --lm-cache; results are still written to it."""
        self._values.clear()
        self.reading_disk = False
