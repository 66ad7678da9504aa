"""Results kept in files: ``--lm-cache`` across runs, and the batches xdist workers share within one run.

Every entry is keyed by the full environment fingerprint and the request: any change of model bytes, dtype,
device, threads, attention, torch or transformers lands in another folder, so an upgrade never reads stale
results; an unchanged re-run reads instead of computing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config.files import read_keyed, write_atomically, write_keyed

# The shape of what is stored (observations, numbers): raised whenever it changes, so entries an older plugin wrote
# are never read back as the new shape (they land in another folder, like any other change of environment).
VALUES_VERSION = 2


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ObservationStore:
    def __init__(self, root: Path, fingerprint: dict[str, str], space: str = "") -> None:
        kept = {k: v for k, v in sorted(fingerprint.items()) if k != "model"}
        identity = json.dumps({**kept, "stored_values": VALUES_VERSION}, sort_keys=True)
        self.root, self.fingerprint, self.space = root, fingerprint, space
        self.folder = root / digest(identity)[:20]
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self.folder / "environment.json", identity)

    def within(self, space: str) -> ObservationStore:
        """The same folder for keys of their own: a fresh runtime's results never answer the main runtime's."""
        return ObservationStore(self.root, self.fingerprint, space)

    def _path(self, key: tuple[Any, ...]) -> Path:
        return self.folder / f"{digest(self.space + repr(key))[:32]}.pkl"

    def has(self, key: tuple[Any, ...]) -> bool:
        return self._path(key).is_file()

    def get(self, key: tuple[Any, ...]) -> Any | None:
        return read_keyed(self._path(key), self.space + repr(key))

    def put(self, key: tuple[Any, ...], value: Any) -> None:
        write_keyed(self._path(key), self.space + repr(key), value)


class SharedBatches:
    """Batches computed by one xdist worker and read by the others, for the length of one run.

    The controller makes the folder and removes it at the end. A batch is computed under its lock, named by a
    hash of the batch itself, so a worker that needs a batch another is computing waits for it instead of
    computing it a second time.
    """

    def __init__(self, folder: Path, fingerprint: dict[str, str]) -> None:
        self.entries = ObservationStore(folder, fingerprint)

    def once(self, batch: Any, compute: Callable[[], Any], wait: bool) -> tuple[str, Any]:
        """('read', values) another worker wrote, ('computed', values) computed here and written for the others,
        or ('busy', None) when another worker holds the batch and ``wait`` is false."""
        from filelock import FileLock, Timeout

        name = digest(repr(batch))[:32]
        lock = FileLock(str(self.entries.folder / f"{name}.lock"))
        try:
            lock.acquire(timeout=-1 if wait else 0)
        except Timeout:
            return "busy", None
        try:
            found = self.entries.get(("batch", name))
            if found is not None:
                return "read", found
            values = compute()
            self.entries.put(("batch", name), values)
            return "computed", values
        finally:
            lock.release()
