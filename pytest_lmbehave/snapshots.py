"""The syrupy extension for LM observations: readable records, tolerant numbers, explained differences.

Each model's expectations live in their own set, ``<test dir>/__lm_snapshots__/<model slug>/<module>.ambr``, away
from syrupy's ``__snapshots__`` (whose cleanup treats foreign files as unused), so updating one model's set can
never touch another's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syrupy.data import SnapshotCollection
from syrupy.extensions.amber import AmberSnapshotExtension
from syrupy.utils import snapshot_file_lock_enabled

from .records import first_difference, is_near_tie, to_record

if TYPE_CHECKING:
    from syrupy.location import PyTestLocation

SETS_DIRNAME = "__lm_snapshots__"
SEPARATOR = "---"
METADATA = ("env", "margin", "margins")  # recorded to explain a failure, never compared


def environment_line(fingerprint: dict[str, str]) -> str:
    keys = ("model_sha256", "dtype", "device", "threads", "attention", "torch", "transformers")
    return " ".join(f"{key}={fingerprint.get(key, '?')}" for key in keys)


def render(data: Any, env: str, top: int = 5) -> str:
    items = data if isinstance(data, (list, tuple)) else [data]
    blocks = []
    for item in items:
        lines = []
        for key, value in to_record(item, top).items():
            rows = value if key == "top" else [value]
            lines += [f"{key}: {json.dumps(row, ensure_ascii=False)}" for row in rows]
        lines.append(f"env: {json.dumps(env)}")
        blocks.append("\n".join(lines))
    return f"\n{SEPARATOR}\n".join(blocks)


def parse(text: str) -> list[dict[str, Any]]:
    """Read rendered records back; a hand-written (transcribed) record may hold only some keys."""
    records: list[dict[str, Any]] = []
    for block in str(text).split(f"\n{SEPARATOR}\n"):
        entry: dict[str, Any] = {}
        for line in block.splitlines():
            if not line.strip():
                continue
            key, _, raw = line.partition(": ")
            value = json.loads(raw)
            if key == "top":
                entry.setdefault("top", []).append(value)
            else:
                entry[key] = value
        records.append(entry)
    return records


class Difference:
    """One way a received observation differs from its recorded expectation."""

    def __init__(self, text: str, near_tie: bool = False) -> None:
        self.text = text
        self.near_tie = near_tie


def compare(received: dict[str, Any], recorded: dict[str, Any], tolerance: float, near_tie: float) -> list[Difference]:
    diffs: list[Difference] = []
    kind = recorded.get("kind", received.get("kind"))
    for key, want in recorded.items():
        if key in METADATA or key == "top":
            continue
        got = received.get(key)
        if key == "scores" and isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
            for option, a, b in zip(recorded.get("options", want), want, got):
                if abs(a - b) > tolerance:
                    diffs.append(Difference(f"score of {option!r}: {a} -> {b} (tolerance {tolerance})"))
            continue
        if got == want:
            continue
        if kind == "generation" and key in ("text", "ids"):
            diffs.append(_generation_difference(received, recorded, near_tie))
        elif kind == "next_token" and key == "argmax":
            margin = recorded.get("margin", received.get("margin"))
            tie = is_near_tie(margin, near_tie)
            diffs.append(
                Difference(
                    f"top-1 after {recorded.get('prompt', '')!r}: {want!r} -> {got!r} ({_margin_words(margin, near_tie)})",
                    tie,
                )
            )
        elif kind == "choice" and key == "best":
            margin = recorded.get("margin", received.get("margin"))
            tie = is_near_tie(margin, near_tie)
            diffs.append(Difference(f"choice: {want!r} -> {got!r} ({_margin_words(margin, near_tie)})", tie))
        else:
            diffs.append(Difference(f"{key}: {want!r} -> {got!r}"))
    if "top" in recorded:
        diffs += _top_differences(received.get("top", []), recorded["top"], tolerance)
    # A generation that differs in both text and ids is one change, reported once.
    unique: dict[str, Difference] = {d.text: d for d in diffs}
    return list(unique.values())


def _margin_words(margin: float | None, near_tie: float) -> str:
    if margin is None:
        return "no margin recorded"
    if is_near_tie(margin, near_tie):
        return f"NEAR-TIE: recorded margin {margin:.4f} nats < {near_tie}, likely numerical noise rather than a change of behaviour"
    return f"recorded margin {margin:.4f} nats: a real change of behaviour"


def _generation_difference(received: dict[str, Any], recorded: dict[str, Any], near_tie: float) -> Difference:
    want_ids, got_ids = recorded.get("ids"), received.get("ids") or []
    if want_ids is not None:
        step = first_difference(want_ids, got_ids)
        margins = [m[step] for m in (recorded.get("margins"), received.get("margins")) if m and step < len(m)]
        margin = min(margins) if margins else None
        where = f"first diverging token {step}: recorded {want_ids[step : step + 1]} vs now {got_ids[step : step + 1]}"
    else:  # transcribed text only: locate by characters
        want, got = recorded.get("text", ""), received.get("text", "")
        step = first_difference(want, got)
        margin, where = None, f"texts part at character {step}"
    text = (
        f"generation after {recorded.get('prompt', received.get('prompt', ''))!r}: {where} ({_margin_words(margin, near_tie)})\n"
        f"      recorded: {recorded.get('text')!r}\n      now:      {received.get('text')!r}"
    )
    return Difference(text, is_near_tie(margin, near_tie))


def _top_differences(got_rows: list[list[Any]], want_rows: list[list[Any]], tolerance: float) -> list[Difference]:
    diffs = []
    got = {row[1]: row for row in got_rows}
    floor = min((row[2] for row in got_rows), default=0.0)
    for piece, token, prob in want_rows:
        if token in got:
            if abs(got[token][2] - prob) > tolerance:
                diffs.append(
                    Difference(f"probability of {piece!r} ({token}): {prob} -> {got[token][2]} (tolerance {tolerance})")
                )
        elif prob > floor + tolerance:  # it fell out of the top rows by more than noise
            diffs.append(
                Difference(
                    f"{piece!r} ({token}) left the top {len(got_rows)}: it had p={prob}, the last row now has p={floor}"
                )
            )
    return diffs


class LMSnapshotExtension(AmberSnapshotExtension):
    """Stores observations of one model; subclasses set the model's slug, environment and tolerances."""

    model_slug = "model"
    environment = ""
    tolerance = 1e-3
    near_tie = 0.05
    accept_near_ties = False
    top = 5

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(Path(test_location.filepath).parent / SETS_DIRNAME / cls.model_slug)

    def serialize(self, data: Any, **kwargs: Any) -> str:
        return render(data, self.environment, self.top)

    def _differences(self, serialized_data: Any, snapshot_data: Any) -> list[Difference] | None:
        """None when the shapes differ (a different number of observations); else the differences."""
        got, want = parse(serialized_data), parse(snapshot_data)
        if len(got) != len(want):
            return None
        return [d for a, b in zip(got, want) for d in compare(a, b, self.tolerance, self.near_tie)]

    def matches(self, *, serialized_data: Any, snapshot_data: Any) -> bool:
        try:
            diffs = self._differences(serialized_data, snapshot_data)
        except (ValueError, TypeError):
            return False
        if diffs is None:
            return False
        return not diffs or (self.accept_near_ties and all(d.near_tie for d in diffs))

    def diff_lines(self, serialized_data: Any, snapshot_data: Any) -> Iterator[str]:
        try:
            diffs = self._differences(serialized_data, snapshot_data)
        except (ValueError, TypeError):
            diffs = None
        if diffs is None:
            yield f"the recorded snapshot of {self.model_slug} does not have the same observations as this run"
        else:
            yield f"{len(diffs)} difference(s) from the {self.model_slug} snapshot:"
            for diff in diffs:
                first, *rest = diff.text.split("\n")
                yield f"  - {first}"
                yield from rest
        yield from self._environment_lines(snapshot_data)
        yield f"to accept the new behaviour: pytest --snapshot-update (rewrites only the {self.model_slug} set)"
        yield "line diff (- recorded, + now):"
        yield from super().diff_lines(serialized_data, snapshot_data)

    def _environment_lines(self, snapshot_data: Any) -> Iterator[str]:
        try:
            recorded = {r.get("env") for r in parse(snapshot_data)} - {None}
        except (ValueError, TypeError):
            return
        if not recorded:
            yield "environment: the snapshot records none (transcribed by hand)"
            return
        for env in recorded:
            if env == self.environment:
                yield "environment: the same as when the snapshot was recorded"
                continue
            old = dict(part.split("=", 1) for part in str(env).split())
            new = dict(part.split("=", 1) for part in self.environment.split())
            changed = [
                f"{k} {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
            ]
            yield "environment differs from the recording: " + ", ".join(changed)

    @classmethod
    def write_snapshot_collection(cls, *, snapshot_collection: Any, name_order: dict[str, int] | None = None) -> None:
        if snapshot_file_lock_enabled():  # under xdist syrupy locks, merges and replaces atomically itself
            super().write_snapshot_collection(snapshot_collection=snapshot_collection, name_order=name_order)
            return
        merged = cls.serializer_class.read_file(snapshot_collection.location)
        merged.merge(snapshot_collection)
        _write_atomically(cls, merged, name_order)

    def delete_snapshots(self, snapshot_location: str, snapshot_names: set[str]) -> None:
        if snapshot_file_lock_enabled():
            super().delete_snapshots(snapshot_location, snapshot_names)
            return
        remaining = self.serializer_class.read_file(snapshot_location)
        for name in snapshot_names:
            remaining.remove(name)
        if remaining.has_snapshots:
            _write_atomically(type(self), remaining, None)
        else:  # syrupy reports every unused snapshot it removes; an emptied file goes with them
            Path(snapshot_location).unlink(missing_ok=True)


def _write_atomically(cls: type[LMSnapshotExtension], collection: Any, name_order: dict[str, int] | None) -> None:
    """Write a whole collection to a sidecar, then rename it over the set: a crash never leaves half a file."""
    target = collection.location
    staged = SnapshotCollection(location=f"{target}.tmp")
    for snapshot in collection:
        staged.add(snapshot)
    try:
        cls.serializer_class.write_file(staged, merge=False, name_order=name_order, file_lock=False)
        os.replace(staged.location, target)
    finally:
        Path(staged.location).unlink(missing_ok=True)


def __getattr__(name: str) -> Any:
    # The xdist controller re-imports each worker's extension by "module.qualname" to delete unused snapshots;
    # per-model classes are made at run time, so rebuild one on demand (deleting needs no model settings).
    if name.startswith(CLASS_PREFIX):
        return type(name, (LMSnapshotExtension,), {"model_slug": name[len(CLASS_PREFIX) :], "__module__": __name__})
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


CLASS_PREFIX = "LMSnapshot_"


def extension_for(
    slug: str, environment: str, tolerance: float, near_tie: float, accept_near_ties: bool, top: int = 5
) -> type[LMSnapshotExtension]:
    """A subclass bound to one model's set: the one attribute-setting subclass syrupy expects."""
    attributes = {
        "__module__": __name__,
        "model_slug": slug,
        "environment": environment,
        "tolerance": tolerance,
        "near_tie": near_tie,
        "accept_near_ties": accept_near_ties,
        "top": top,
    }
    return type(f"{CLASS_PREFIX}{slug.replace('-', '_').replace('.', '_')}", (LMSnapshotExtension,), attributes)
