"""``--lm-cache``: observations kept on disk, keyed by the full environment fingerprint and the request.

Any change of model bytes, dtype, device, threads, attention, torch or transformers lands in another folder, so
an upgrade never reads stale results; an unchanged re-run reads instead of computing.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

from .files import write_atomically


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ObservationStore:
    def __init__(self, root: Path, fingerprint: dict[str, str]) -> None:
        identity = json.dumps({k: v for k, v in sorted(fingerprint.items()) if k != "model"}, sort_keys=True)
        self.folder = root / _digest(identity)[:20]
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self.folder / "environment.json", identity)

    def _path(self, key: tuple[Any, ...]) -> Path:
        return self.folder / f"{_digest(repr(key))[:32]}.pkl"

    def get(self, key: tuple[Any, ...]) -> Any | None:
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                stored_key, value = pickle.load(handle)
        except FileNotFoundError:
            return None
        except Exception:  # a damaged entry is a miss; the next put replaces it whole
            return None
        if stored_key != repr(key):
            return None
        return value

    def put(self, key: tuple[Any, ...], value: Any) -> None:
        write_atomically(self._path(key), pickle.dumps((repr(key), value), protocol=pickle.HIGHEST_PROTOCOL))


class SharedBatches:
    """Batches computed by one xdist worker and read by the others, for the length of one run.

    The controller makes the folder and removes it at the end. A batch is computed under its lock, so a worker
    that needs a batch another is computing waits for it instead of computing it a second time.
    """

    def __init__(self, folder: Path, fingerprint: dict[str, str]) -> None:
        self.entries = ObservationStore(folder, fingerprint)

    def lock(self, name: str) -> Any:
        from filelock import FileLock

        return FileLock(str(self.entries.folder / f"{name}.lock"))

    def get(self, name: str) -> Any | None:
        return self.entries.get(("batch", name))

    def put(self, name: str, value: Any) -> None:
        self.entries.put(("batch", name), value)
