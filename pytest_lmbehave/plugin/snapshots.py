"""The syrupy extension for LM observations: readable records, tolerant numbers, explained differences.

Each model's expectations live in their own set, ``<test dir>/__lm_snapshots__/<model slug>/<module>.ambr``, away
from syrupy's ``__snapshots__`` (whose cleanup treats foreign files as unused), so updating one model's set can
never touch another's.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syrupy.data import SnapshotCollection
from syrupy.extensions.amber import AmberSnapshotExtension
from syrupy.utils import snapshot_file_lock_enabled

from ..backends.sampling import Policy
from ..config import defaults
from ..config.environment import parse_line
from ..config.errors import LMBehaveError
from ..observations.records import to_record
from ..observations.verdict import Difference, Teacher, Tolerances, compare
from ..reports.causes import environment_lines, recorded_envs, root_cause
from ..runtime import plan
from .snapshot_sets import SETS_DIRNAME, VARIANT, choose_variant, damage

if TYPE_CHECKING:
    from syrupy.location import PyTestLocation

SEPARATOR = "---"
__all__ = ["SEPARATOR", "SETS_DIRNAME", "LMSnapshotExtension", "extension_for", "parse", "render", "render_records"]


class DamagedSnapshotFile(LMBehaveError):
    """A snapshot file cut short (an interrupted write or a bad merge): its later records cannot be read."""


def render(data: Any, env: str, top: int = defaults.TOP) -> str:
    items = data if isinstance(data, (list, tuple)) else [data]
    return render_records([{**to_record(item, top), "env": env} for item in items])


def render_records(records: list[dict[str, Any]]) -> str:
    """Records as one snapshot's text: the only writer of the line format (tools/transcribe_360m.py uses it too)."""
    return f"\n{SEPARATOR}\n".join(render_record(record) for record in records)


def render_record(record: dict[str, Any]) -> str:
    """One record as snapshot lines: ``key: <json>``, one ``top`` line per row."""
    lines = []
    for key, value in record.items():
        rows = value if key == "top" else [value]
        lines += [f"{key}: {json.dumps(row, ensure_ascii=False)}" for row in rows]
    return "\n".join(lines)


def parse(text: str) -> list[dict[str, Any]]:
    """Read rendered records back; a hand-written (transcribed) record may hold only some keys. A snapshot's text
    is read once however often its test asks (matching, explaining a failure, its environments)."""
    return [dict(record) for record in _parsed(str(text))]


@lru_cache(maxsize=256)
def _parsed(text: str) -> tuple[dict[str, Any], ...]:
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
    return tuple(records)


def recorded_drafts(
    folders: list[Path], slug: str, now: dict[str, str] | None = None, named: str | None = None
) -> plan.Drafts:
    """Every recorded generation of a model's sets (its variants too), as drafts for the next run to verify, by
    their request's ``plan.key`` (input ids and policy); of equal length, the set a run in environment ``now``
    compares against wins (llama.cpp's own generations, not transformers'). A damaged file is left to its test to
    report."""
    from syrupy.extensions.amber.serializer import AmberDataSerializer

    drafts: plan.Drafts = {}
    for folder in folders:
        test_dir = folder.parent
        chosen = choose_variant(test_dir, slug, now, named)[0] if now is not None else None
        paths = sorted(folder.glob(f"{slug}*/*.ambr"), key=lambda path: (path.parent.name != chosen, str(path)))
        for path in paths:
            if path.parent.name != slug and not path.parent.name.startswith(slug + VARIANT):
                continue
            try:
                collection = AmberDataSerializer.read_file(str(path))
                records = [r for snapshot in collection for r in parse(str(snapshot.data or ""))]
            except (ValueError, TypeError, OSError):
                continue
            for record in records:
                if record.get("kind") == "generation" and record.get("ids") and record.get("input_ids"):
                    policy = Policy.from_words(str(record.get("sampling", "greedy")), record.get("seed"))
                    plan.add_draft(drafts, plan.key("generation", record["input_ids"], policy), record["ids"])
    return drafts


class LMSnapshotExtension(AmberSnapshotExtension):
    """Stores observations of one model; subclasses set the model's slug, environment and tolerances."""

    model_slug = "model"
    set_name = ""  # the folder of the set compared against: the model's slug, or <slug>@<variant>
    variant_reason = ""
    accept = ""  # the command that accepts a failure, when not a plain --snapshot-update
    notes: list[str] = []  # near-tie flips that passed, for the session to list (NearTieSummary.pending)  # noqa: RUF012
    environment = ""
    tolerance = defaults.TOLERANCE
    near_tie = defaults.NEAR_TIE
    strict = False  # near-tie flips fail too
    updating = False  # under --snapshot-update
    top = defaults.TOP
    teacher: Teacher | None = None  # scores a recorded continuation under today's model

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(Path(test_location.filepath).parent / SETS_DIRNAME / (cls.set_name or cls.model_slug))

    def serialize(self, data: Any, **kwargs: Any) -> str:
        return render(data, self.environment, self.top)

    def read_snapshot_data_from_location(self, snapshot_location: str, snapshot_name: str, session_id: str) -> Any:
        data = super().read_snapshot_data_from_location(
            snapshot_location=snapshot_location, snapshot_name=snapshot_name, session_id=session_id
        )
        if data is None and not self.updating:  # an update rewrites a damaged file instead
            problem = damage(snapshot_location)
            if problem is not None:
                raise DamagedSnapshotFile(problem)
        return data

    def _differences(self, serialized_data: Any, snapshot_data: Any) -> list[Difference] | None:
        """None when the shapes differ (a different number of observations); else the differences, compared once
        for the match and its explanation."""
        seen = self.__dict__.setdefault("_compared", {})
        if (serialized_data, snapshot_data) not in seen:
            seen[(serialized_data, snapshot_data)] = self._compare(serialized_data, snapshot_data)
        found: list[Difference] | None = seen[(serialized_data, snapshot_data)]
        return found

    def _compare(self, serialized_data: Any, snapshot_data: Any) -> list[Difference] | None:
        got, want = parse(serialized_data), parse(snapshot_data)
        if len(got) != len(want):
            return None
        tolerances = Tolerances(
            prob=self.tolerance, score=self.tolerance, margin=self.tolerance, near_tie=self.near_tie
        ).for_numerics(*(parse_line(line) for line in [self.environment, *recorded_envs(want)]))
        return [d for a, b in zip(got, want) for d in compare(b, a, tolerances, self.teacher)]

    def matches(self, *, serialized_data: Any, snapshot_data: Any) -> bool:
        try:
            diffs = self._differences(serialized_data, snapshot_data)
        except (ValueError, TypeError):
            return False
        if diffs is None:
            return False
        if not diffs:
            return True
        if self.strict or not all(d.near_tie for d in diffs):
            return False
        for diff in diffs:  # passes, but is listed in the terminal summary
            self.notes.append(diff.text.split("\n")[0])
        return True

    def diff_lines(self, serialized_data: Any, snapshot_data: Any) -> Iterator[str]:
        name = self.set_name or self.model_slug
        if not snapshot_data:  # nothing recorded yet (syrupy passes ""): no differences, no environment to compare
            yield f"no snapshot yet: the {name} set holds no recording of this observation"
            yield f"to record one: pytest --snapshot-update (writes only the {name} set)"
            return
        try:
            diffs = self._differences(serialized_data, snapshot_data)
        except (ValueError, TypeError):
            diffs = None
        try:
            envs: list[str] | None = recorded_envs(parse(snapshot_data))
        except (ValueError, TypeError):
            envs = None
        if self.variant_reason:
            yield f"compared against the set {name} ({self.variant_reason})"
        yield from root_cause(envs or [], self.environment, diffs)
        if diffs is None:
            yield f"the recorded snapshot of {name} does not have the same observations as this run"
        else:
            ties = sum(d.near_tie for d in diffs)
            yield f"{len(diffs)} difference(s) from the {name} snapshot" + (
                f" ({ties} near-tie flip(s), failing under --lm-strict):" if ties and self.strict else ":"
            )
            for diff in diffs:
                first, *rest = diff.text.split("\n")
                yield f"  - [{diff.layer}] {first}"
                yield from rest
        if envs is not None:
            yield from environment_lines(envs, self.environment)
        yield f"to accept the new behaviour: {self.accept or f'pytest --snapshot-update (rewrites only the {name} set)'}"
        yield "line diff (- recorded, + now):"
        yield from super().diff_lines(serialized_data, snapshot_data)

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
    slug: str,
    env: str,
    tolerance: float,
    near_tie: float,
    strict: bool,
    top: int = defaults.TOP,
    teacher: Teacher | None = None,
    set_name: str = "",
    variant_reason: str = "",
    updating: bool = False,
    accept: str = "",
    notes: list[str] | None = None,
) -> type[LMSnapshotExtension]:
    """A subclass bound to one model's set: the one attribute-setting subclass syrupy expects."""
    set_name = set_name or slug
    attributes = {
        "__module__": __name__,
        "model_slug": slug,
        "set_name": set_name,
        "variant_reason": variant_reason,
        "updating": updating,
        "accept": accept,
        "notes": notes if notes is not None else [],
        "environment": env,
        "tolerance": tolerance,
        "near_tie": near_tie,
        "strict": strict,
        "top": top,
        "teacher": staticmethod(teacher) if teacher is not None else None,
    }
    return type(f"{CLASS_PREFIX}{re.sub(r'[^0-9A-Za-z_]', '_', set_name)}", (LMSnapshotExtension,), attributes)
