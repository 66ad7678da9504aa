"""The request plan's batches at run time: fixed groups, each computed once when first needed (or ahead of time),
and under xdist shared among workers, so every mode computes the same batches and no batch twice."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..config.errors import BackendGone, BackendUnavailable
from . import plan
from .memo import Memo
from .store import SharedBatches


class Scheduler:
    def __init__(
        self, memo: Memo, compute: Callable[[plan.Group], list[Any]], shared: SharedBatches | None = None
    ) -> None:
        self.memo = memo
        self.compute = compute  # a group's values, one per row, in its order
        self.shared = shared  # under xdist: batches computed by one worker, read by the others
        self.groups: list[plan.Group] = []
        self.settled: set[int] = set()
        self.refused: set[int] = set()  # batches the engine refused: their requests are asked one by one
        self._planned: dict[tuple[Any, ...], tuple[int, int]] = {}  # request key -> (group, steps planned for it)

    def use(self, rows: Iterable[plan.Row]) -> None:
        """Batch these requests (the plan's, for the tests this run collected: a request once per test that asks
        it) into fixed groups; the memo keeps what they will ask before what they have asked."""
        rows = list(rows)
        self.memo.owe(row.key for row in rows)
        self.groups = plan.groups(rows)
        self.settled, self.refused = set(), set()
        self._planned = {row.key: (index, row.n) for index, group in enumerate(self.groups) for row in group.rows}

    def prefetch(self, batches: int | None = None) -> int:
        """Compute up to ``batches`` of the plan's batches now (all when None), costliest first, skipping any that
        another worker holds or has written. Workers that each take one before every test share the batches out
        by how busy they are. Returns how many this call computed."""
        computed = 0
        for index in sorted(range(len(self.groups)), key=lambda i: (-self.groups[i].cost, i)):
            if batches is not None and computed >= batches:
                break
            if index not in self.settled and self._settle(index, wait=False)[0] == "computed":
                computed += 1
        return computed

    def provide(self, key: tuple[Any, ...], n: int) -> Any | None:
        """The value its planned batch holds for this request (for at least ``n`` steps), settling the batch (and
        waiting for another worker that is computing it); None when no batch holds it or the engine refused it.

        A batch settled before whose value the memo has let go (``memo.py``) is settled again: its rows are the same
        rows, read the same way (or read back from the other workers' file), so the numbers are the same bits."""
        found = self._planned.get(key)
        if found is None or found[1] < n or found[0] in self.refused:
            return None
        self.settled.discard(found[0])
        return self._settle(found[0], wait=True, wanted=key)[1]

    def _settle(self, index: int, wait: bool, wanted: tuple[Any, ...] | None = None) -> tuple[str, Any]:
        """Make a batch's results known here: 'remembered', 'computed', 'read' (another worker's), 'busy' or
        'refused'; with the value of the ``wanted`` row, when one is named."""
        group = self.groups[index]
        if all(row.key in self.memo for row in group.rows):
            self.settled.add(index)  # every row is remembered already (e.g. read from --lm-cache)
            return "remembered", None if wanted is None else self.memo.get(wanted)
        try:
            if self.shared is None:
                outcome, values = "computed", self.compute(group)
            else:
                outcome, values = self.shared.once(group, lambda: self.compute(group), wait)
                if outcome == "busy":
                    return outcome, None  # another worker is computing it; a test that needs it will wait then
        except BackendUnavailable as error:
            if isinstance(error, BackendGone):
                raise
            # One row the backend refuses (a temperature a server does not take) must not cost the others: each
            # request of this batch is computed when its test asks, and only the refused one fails there.
            self.settled.add(index)
            self.refused.add(index)
            return "refused", None
        for row, value in zip(group.rows, values):
            if outcome == "computed":
                self.memo.put(row.key, value)
            else:
                self.memo.share(row.key, value)
        self.settled.add(index)
        return outcome, next((value for row, value in zip(group.rows, values) if row.key == wanted), None)
