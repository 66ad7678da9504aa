"""A pytest plugin for the bench (`-p meter`, with bench/ on PYTHONPATH and $LMBEHAVE_METER a folder): each process
writes what its engine was asked and what it read into $LMBEHAVE_METER/<pid>.json at its end.

- ``questions``: every request that reached an engine (a backend method called from outside the backend), as the
  sequences it needs read: ``[ids, prompt_length, kind]``, where the positions after ``prompt_length`` are a forced
  continuation (``forced``: scored, teacher-forced) or generated tokens (``generated``); and the draws asked
  (``[ids, policy, n]``).
- ``read``: positions the model read in passes of more than one position (``batched``, the real ones; ``padded``,
  with their pads) and in one-position steps (``steps``), the forward passes, and the seconds spent in them.
- ``imported``: which of torch, transformers, scipy and llama_cpp the process imported.

It changes nothing the engine computes: it wraps the backends' methods and counts on the way.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

STATE: dict[str, Any] = {
    "questions": [],
    "draws": [],
    "read": {"batched": 0, "padded": 0, "steps": 0, "passes": 0, "forward_s": 0.0},
}
DEPTH = [0]


def _outermost(method: Any, record: Any) -> Any:
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        DEPTH[0] += 1
        try:
            found = method(self, *args, **kwargs)
        finally:
            DEPTH[0] -= 1
        if DEPTH[0] == 0:
            record(found, *args, **kwargs)
        return found

    return wrapped


def _next(found: Any, rows: Any, *_: Any, **__: Any) -> None:
    STATE["questions"] += [[list(r), len(r), "prompt"] for r in rows]


def _forced(found: Any, rows: Any, *_: Any, **__: Any) -> None:
    STATE["questions"] += [[[*p, *c][:-1], len(p), "forced"] for p, c in rows]


def _generated(found: Any, rows: Any, *_: Any, **__: Any) -> None:
    STATE["questions"] += [[[*r, *d.ids][:-1], len(r), "generated"] for r, d in zip(rows, found)]


def _draws(found: Any, ids: Any, policy: Any, n: int, *_: Any, **__: Any) -> None:
    STATE["questions"].append([list(ids), len(ids), "prompt"])
    STATE["draws"].append([list(ids), repr(policy), n])


def _count(batch: int, width: int, real: int, seconds: float) -> None:
    read = STATE["read"]
    read["passes"] += 1
    if width > 1:
        read["batched"] += real
        read["padded"] += batch * width
    else:
        read["steps"] += real
    read["forward_s"] += seconds


def _watch_torch(model: Any) -> None:
    started: list[float] = []

    def before(module: Any, args: Any, kwargs: Any) -> None:
        started.append(time.perf_counter())

    def after(module: Any, args: Any, kwargs: Any, output: Any) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            return
        batch, width = ids.shape
        mask = kwargs.get("attention_mask")
        real = int(mask[:, -width:].sum()) if mask is not None else batch * width
        _count(batch, width, real, time.perf_counter() - started.pop())

    model.register_forward_pre_hook(before, with_kwargs=True)
    model.register_forward_hook(after, with_kwargs=True)


def _watch_llama(llama: Any) -> None:
    evaluate = llama.eval

    def counted(tokens: Any) -> Any:
        started = time.perf_counter()
        found = evaluate(tokens)
        _count(1, len(tokens), len(tokens), time.perf_counter() - started)
        return found

    llama.eval = counted


def _wrap(cls: Any, watch: Any) -> None:
    wrapped = (("next_logprobs", _next), ("forced_logprobs", _forced), ("generate", _generated), ("draws", _draws))
    for name, record in wrapped:
        setattr(cls, name, _outermost(getattr(cls, name), record))
    init = cls.__init__

    def opened(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        watch(self)

    cls.__init__ = opened


def pytest_configure(config: pytest.Config) -> None:
    from pytest_lmbehave.backends.transformers.inprocess import TransformersBackend

    _wrap(TransformersBackend, lambda backend: _watch_torch(backend.model))
    try:
        from pytest_lmbehave.backends.llamacpp.backend import LlamaCppBackend
    except ImportError:
        return
    _wrap(LlamaCppBackend, lambda backend: _watch_llama(backend.llama))


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = Path(os.environ["LMBEHAVE_METER"])
    folder.mkdir(parents=True, exist_ok=True)
    STATE["imported"] = {name: name in sys.modules for name in ("torch", "transformers", "scipy", "llama_cpp")}
    (folder / f"{os.getpid()}.json").write_text(json.dumps(STATE))
