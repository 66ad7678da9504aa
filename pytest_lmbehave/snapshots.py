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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syrupy.data import SnapshotCollection
from syrupy.extensions.amber import AmberSnapshotExtension
from syrupy.utils import snapshot_file_lock_enabled

from . import defaults, environment
from .errors import LMBehaveError
from .records import to_record
from .verdict import Difference, Teacher, Tolerances, compare

if TYPE_CHECKING:
    from syrupy.location import PyTestLocation

SETS_DIRNAME = "__lm_snapshots__"
SEPARATOR = "---"
# Near-tie flips that let a snapshot pass in this process, waiting to be attached to the running test's report.
NEAR_TIE_NOTES: list[str] = []


class DamagedSnapshotFile(LMBehaveError):
    """A snapshot file cut short (an interrupted write or a bad merge): its later records cannot be read."""


def damage(location: str) -> str | None:
    """Why a snapshot file is damaged (it ends inside a record), or None when it is whole or absent."""
    path = Path(location)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.strip() or text.rstrip("\n").endswith("# ---"):
        return None
    names = re.findall(r"^# name: (.*)$", text, flags=re.M)
    complete = names[:-1] if names else []
    last = f"the last whole record is {complete[-1]!r}" if complete else "no record in it is whole"
    location = os.path.relpath(location) if path.resolve().is_relative_to(Path.cwd()) else location
    return (
        f"{location} is damaged: it ends in the middle of a record ({last}); restore it with "
        f"`git checkout -- {location}`, or record it again with `pytest --snapshot-update`"
    )


def remove_stale_sidecars(folder: Path) -> list[Path]:
    """Lock and staging files that an interrupted update left beside the sets (``x.ambr.lock``, ``x.ambr.tmp``);
    a lock another process holds is left alone."""
    import fcntl

    removed = []
    for path in sorted(folder.rglob("*.ambr.*")) if folder.is_dir() else []:
        if path.suffix not in (".lock", ".tmp") or not path.is_file():
            continue
        try:
            with open(path, "a") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink()
                removed.append(path)
        except OSError:
            continue  # held by a running writer
    return removed


def render(data: Any, env: str, top: int = defaults.TOP) -> str:
    items = data if isinstance(data, (list, tuple)) else [data]
    return f"\n{SEPARATOR}\n".join(render_record({**to_record(item, top), "env": env}) for item in items)


def render_record(record: dict[str, Any]) -> str:
    """One record as snapshot lines: ``key: <json>``, one ``top`` line per row."""
    lines = []
    for key, value in record.items():
        rows = value if key == "top" else [value]
        lines += [f"{key}: {json.dumps(row, ensure_ascii=False)}" for row in rows]
    return "\n".join(lines)


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


VARIANT = "@"  # a set recorded in another environment: __lm_snapshots__/<model>@<variant>/
# How much each field counts when a run picks the recorded variant closest to its environment.
VARIANT_WEIGHTS = {"transformers_major": 100, "dtype": 20, "device": 20, "torch_minor": 10, "tokenizers_minor": 5}
VARIANT_WEIGHTS |= {"transformers": 2, "torch": 1, "cpu_capability": 1, "blas": 1, "gpu": 1}


def _derived(environment: dict[str, str]) -> dict[str, str]:
    found = dict(environment)
    for key, parts in (("transformers", 1), ("torch", 2), ("tokenizers", 2)):
        if key in environment:
            found[f"{key}_{'major' if parts == 1 else 'minor'}"] = ".".join(environment[key].split(".")[:parts])
    return found


def variants(test_dir: Path, slug: str) -> dict[str, Path]:
    """A model's recorded sets beside a test module: '' for the plain set, else the variant's name."""
    sets = test_dir / SETS_DIRNAME
    found = {"": sets / slug} if (sets / slug).is_dir() else {}
    for folder in sorted(sets.glob(f"{slug}{VARIANT}*")) if sets.is_dir() else []:
        if folder.is_dir():
            found[folder.name.split(VARIANT, 1)[1]] = folder
    return found


def recorded_environment(folder: Path) -> dict[str, str]:
    """The environment a set was recorded in, from the first `env` line of its files ({} when none)."""
    for path in sorted(folder.glob("*.ambr")):
        match = re.search(r'^  env: "(.*)"$', path.read_text(encoding="utf-8", errors="replace"), flags=re.M)
        if match:
            return environment.parse_line(match.group(1))
    return {}


def choose_variant(test_dir: Path, slug: str, now: dict[str, str], named: str | None) -> tuple[str, str]:
    """The set a run compares against (its folder name) and why: the one ``--lm-variant`` names, else the variant
    whose recorded environment matches this run's best (the plain set on a tie)."""
    if named:
        folder = slug if named == "default" else f"{slug}{VARIANT}{named}"
        return folder, f"named by --lm-variant={named}"
    found = variants(test_dir, slug)
    if not found:
        return slug, ""
    current = _derived(now)
    recorded_in = {name: _derived(recorded_environment(folder)) for name, folder in found.items()}

    def score(name: str) -> int:
        recorded = recorded_in[name]
        return sum(w for key, w in VARIANT_WEIGHTS.items() if key in recorded and recorded[key] == current.get(key))

    best = max(found, key=lambda name: (score(name), name == ""))
    recorded = recorded_in[best]
    differing = [
        k for k in ("transformers", "torch", "tokenizers", "dtype", "device") if recorded.get(k) != current.get(k)
    ]
    if not differing:
        return found[best].name, "recorded in this run's environment"
    return found[best].name, "the recorded variant closest to this run; it differs in " + ", ".join(differing)


class LMSnapshotExtension(AmberSnapshotExtension):
    """Stores observations of one model; subclasses set the model's slug, environment and tolerances."""

    model_slug = "model"
    set_name = ""  # the folder of the set compared against: the model's slug, or <slug>@<variant>
    variant_reason = ""
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
        """None when the shapes differ (a different number of observations); else the differences."""
        got, want = parse(serialized_data), parse(snapshot_data)
        if len(got) != len(want):
            return None
        tolerances = Tolerances(
            prob=self.tolerance, score=self.tolerance, margin=self.tolerance, near_tie=self.near_tie
        )
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
            NEAR_TIE_NOTES.append(diff.text.split("\n")[0])
        return True

    def diff_lines(self, serialized_data: Any, snapshot_data: Any) -> Iterator[str]:
        try:
            diffs = self._differences(serialized_data, snapshot_data)
        except (ValueError, TypeError):
            diffs = None
        name = self.set_name or self.model_slug
        if self.variant_reason:
            yield f"compared against the set {name} ({self.variant_reason})"
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
        yield from self._environment_lines(snapshot_data)
        yield f"to accept the new behaviour: pytest --snapshot-update (rewrites only the {name} set)"
        yield "line diff (- recorded, + now):"
        yield from super().diff_lines(serialized_data, snapshot_data)

    def _environment_lines(self, snapshot_data: Any) -> Iterator[str]:
        try:
            recorded = {str(r["env"]) for r in parse(snapshot_data) if r.get("env") is not None}
        except (ValueError, TypeError):
            return
        if not recorded:
            yield "environment: the snapshot records none (transcribed by hand)"
            return
        for env in sorted(recorded):
            yield environment.describe_differences(
                environment.parse_line(env), environment.parse_line(self.environment)
            )

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
) -> type[LMSnapshotExtension]:
    """A subclass bound to one model's set: the one attribute-setting subclass syrupy expects."""
    set_name = set_name or slug
    attributes = {
        "__module__": __name__,
        "model_slug": slug,
        "set_name": set_name,
        "variant_reason": variant_reason,
        "updating": updating,
        "environment": env,
        "tolerance": tolerance,
        "near_tie": near_tie,
        "strict": strict,
        "top": top,
        "teacher": staticmethod(teacher) if teacher is not None else None,
    }
    return type(f"{CLASS_PREFIX}{re.sub(r'[^0-9A-Za-z_]', '_', set_name)}", (LMSnapshotExtension,), attributes)
