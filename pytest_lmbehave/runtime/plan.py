"""The request plan: what each test asked the model last time, so a run can batch it up front.

``--lm-plan-update`` (and ``--snapshot-update``) write, per test node id, the generations and next-token
distributions it asked for: prompts, lengths, sampling settings and seeds, and each generation's ids as a draft
for the next run to verify (``backends/drafts.py``); a draft is checked, never trusted. A later run reads the
plan, keeps the requests of the tests it collected and sorts them into fixed batches (``groups``); the first test
that needs any request of a batch computes the whole batch. A batch's rows are always the same whatever the test
order or the number of workers, so every mode computes the same numbers. A stale plan only costs time: a request
it lacks is computed when asked, and one no test makes any more is computed for nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..backends import PREFIX, TOGETHER_FROM, common_prefix
from ..backends.sampling import GREEDY, Policy, Sampling

FORMAT = "pytest-lmbehave plan"
# A request's kind is its observation's (``observations.KINDS``); the plan file keeps its own short spelling.
IN_FILE = {"next_token": "next", "generation": "gen"}
FROM_FILE = {short: kind for kind, short in IN_FILE.items()}
VERSION = 1
GROUP_ROWS = 24  # rows per generation batch: a decode step's cost grows slowly with its rows (docs/explanation/determinism.md, the request plan)
NEXT_ROWS = 3  # short prompts per next-token batch when each is its own forward pass (shorter than TOGETHER_FROM)


def normalise(kind: str, n: int, policy: Policy, one_token: bool = False) -> tuple[str, int, Policy]:
    """One request identity. A greedy generation of one token is the next-token question (its argmax), and so
    is a choice among one-token options (their scores are read off that distribution): each is asked, planned,
    remembered and computed as that question, so the three read the same numbers."""
    if kind == "choice" and one_token:
        return "next_token", 1, GREEDY
    if kind == "generation" and policy.greedy and n == 1:
        return "next_token", 1, GREEDY
    if kind == "next_token":
        return "next_token", 1, GREEDY
    return kind, n, policy


@dataclass(frozen=True)
class Ask:
    """One request as a test made it (a text prompt stays text, so a tokenizer change re-reads it): a generation
    (``gen``) or a next-token distribution (``next``)."""

    kind: str
    prompt: str | tuple[int, ...]
    n: int = 1
    policy: Policy = GREEDY
    draft: tuple[int, ...] | None = field(default=None, compare=False)  # a generation's ids last time
    # Another engine's ids for the same generation, where they are not ``draft`` (engine, ids): its own drafts
    # (an engine whose numbers are not the plan's adds them on an update and leaves the rest alone: ``own_drafts``).
    others: tuple[tuple[str, tuple[int, ...]], ...] = field(default=(), compare=False)

    @classmethod
    def of(
        cls,
        kind: str,
        prompt: str | tuple[int, ...],
        n: int = 1,
        policy: Policy = GREEDY,
        draft: tuple[int, ...] | None = None,
    ) -> Ask:
        kind, n, policy = normalise(kind, n, policy)
        return cls(kind, prompt, n, policy, tuple(draft) if kind == "generation" and draft else None)

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "kind": IN_FILE[self.kind],
            "prompt": self.prompt if isinstance(self.prompt, str) else list(self.prompt),
        }
        if self.kind == "generation":
            sampling = self.policy.sampling
            knobs = None if sampling is None else list(sampling.knobs)
            entry.update(n=self.n, knobs=knobs, seed=self.policy.seed)
            if self.draft:
                entry["draft"] = list(self.draft)
            if self.others:
                entry["drafts"] = {engine: list(ids) for engine, ids in self.others}
        return entry

    @classmethod
    def from_json(cls, entry: Any) -> Ask:
        kind, prompt = FROM_FILE.get(entry["kind"]), entry["prompt"]
        if kind is None or not isinstance(prompt, (str, list)) or not prompt:
            raise ValueError(f"not a request: {entry!r:.80}")
        knobs = entry.get("knobs")
        seed = None if entry.get("seed") is None else int(entry["seed"])
        policy = GREEDY if knobs is None else Policy(Sampling(knobs[0], knobs[1], knobs[2]), seed)
        text = prompt if isinstance(prompt, str) else tuple(int(i) for i in prompt)
        draft = entry.get("draft")
        ask = cls.of(kind, text, int(entry.get("n", 1)), policy, None if draft is None else tuple(map(int, draft)))
        others = entry.get("drafts") or {}
        if not isinstance(others, dict):
            raise ValueError(f"not a request: {entry!r:.80}")
        found = tuple(sorted((str(engine), tuple(map(int, ids))) for engine, ids in others.items() if ids))
        return replace(ask, others=found) if found and ask.kind == "generation" else ask

    def for_engine(self, engine: str) -> Ask:
        """This request with the engine's own draft, where it has one."""
        own = dict(self.others).get(engine)
        return self if own is None else replace(self, draft=own)

    def with_other(self, engine: str, ids: Sequence[int]) -> Ask:
        """This request keeping an engine's own ids (none where they are the plan's draft)."""
        others = dict(self.others)
        others.pop(engine, None)
        if tuple(ids) != self.draft:
            others[engine] = tuple(ids)
        return replace(self, others=tuple(sorted(others.items())))


Drafts = dict[tuple[Any, ...], tuple[int, ...]]  # a generation's ids from an earlier run, by its ``key``


def add_draft(drafts: Drafts, key: tuple[Any, ...], ids: Sequence[int]) -> None:
    """Keep the longest run of a row: it holds every shorter one (a shorter run is its prefix)."""
    if len(ids) > len(drafts.get(key, ())):
        drafts[key] = tuple(ids)


def key(kind: str, ids: Sequence[int], *more: Any) -> tuple[Any, ...]:
    """The one identity of a request, by which it is remembered, planned, shared, cached and found a draft for:
    its kind, the token ids it reads and what else decides its answer. A next-token question is its ids; a
    generation also its policy (sampling settings and seed), not its length (a shorter run is a prefix of a longer
    one); a teacher-forced pass its continuation and whether it reads the steps as generate did; a choice its
    options; logits nothing more."""
    if kind == "generation":
        more = more or (GREEDY,)
    return (kind, tuple(ids), *more)


@dataclass(frozen=True)
class Row:
    """A request resolved to token ids: what one batch row computes."""

    kind: str
    ids: tuple[int, ...]
    n: int = 1
    policy: Policy = GREEDY

    @classmethod
    def of(cls, kind: str, ids: tuple[int, ...], n: int = 1, policy: Policy = GREEDY, one_token: bool = False) -> Row:
        """The normalised request (see ``normalise``)."""
        kind, n, policy = normalise(kind, n, policy, one_token)
        return cls(kind, ids, n, policy)

    @property
    def key(self) -> tuple[Any, ...]:
        return key(self.kind, self.ids) if self.kind == "next_token" else key(self.kind, self.ids, self.policy)


@dataclass(frozen=True)
class Group:
    kind: str
    rows: tuple[Row, ...]

    @property
    def steps(self) -> int:
        return max(r.n for r in self.rows)

    @property
    def cost(self) -> float:
        """Seconds, roughly (fitted to one CPU core's timings): workers take the costliest batches first."""
        rows = len(self.rows)
        if self.kind == "next_token":
            shared = common_prefix([r.ids for r in self.rows]) if rows > 1 else 0
            shared = shared if shared >= PREFIX else 0
            lengths = {len(r.ids) for r in self.rows}
            together = not shared and len(lengths) == 1 and min(lengths) >= TOGETHER_FROM  # read in one pass
            passes = 1 + 0.25 * (rows - 1) if together else rows
            return 0.08 * passes + (shared + sum(len(r.ids) - shared for r in self.rows)) / 350
        return self.steps * (0.06 + 0.006 * rows) + sum(len(r.ids) for r in self.rows) / 400


def read(path: Path) -> tuple[dict[str, list[Ask]], int | None, str | None]:
    """The plan's tests, the base seed it was recorded under, and a problem to report (None when all is well)."""
    if not path.is_file():
        return {}, None, None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT or document.get("version") != VERSION:
            raise ValueError(f"format {document.get('format')!r} version {document.get('version')!r}")
        tests: dict[str, list[Ask]] = {}
        bad: list[str] = []
        for node, entries in document["tests"].items():
            for entry in entries:
                try:
                    tests.setdefault(str(node), []).append(Ask.from_json(entry))
                except (ValueError, KeyError, TypeError, IndexError, AttributeError):
                    bad.append(f"{entry!r:.60}")
        problem = None
        if bad:  # one bad line costs its own request, not the plan
            problem = (
                f"{path}: {len(bad)} unreadable request(s) dropped (first: {bad[0]}); --lm-plan-update rewrites them"
            )
        return tests, document.get("base_seed"), problem
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
        return (
            {},
            None,
            f"{path} is not a readable plan ({type(error).__name__}: {error}); it is ignored, and --lm-plan-update rewrites it",
        )


def render(tests: dict[str, list[Ask]], base_seed: int) -> str:
    """The plan as JSON with one request a line, so a change of specs shows as a readable diff."""
    lines = [
        "{",
        f' "format": {json.dumps(FORMAT)},',
        f' "version": {VERSION},',
        f' "base_seed": {base_seed},',
        ' "tests": {',
    ]
    entries = [(node, unique(asks)) for node, asks in sorted(tests.items()) if asks]
    for i, (node, asks) in enumerate(entries):
        rows = ",\n".join("   " + json.dumps(a.to_json(), ensure_ascii=False) for a in asks)
        lines.append(
            f"  {json.dumps(node, ensure_ascii=False)}: [\n{rows}\n  ]" + ("," if i < len(entries) - 1 else "")
        )
    lines += [" }", "}", ""]
    return "\n".join(lines)


def merge(old: dict[str, list[Ask]], ran: dict[str, list[Ask]], collected: set[str]) -> dict[str, list[Ask]]:
    """Tests that ran replace their entries (keeping other engines' drafts of the same requests); tests gone from a
    collected module are dropped; the rest are kept."""
    modules = {node.split("::")[0] for node in collected}
    kept = {node: asks for node, asks in old.items() if node in collected or node.split("::")[0] not in modules}
    others = {ask: ask.others for asks in old.values() for ask in asks if ask.others}
    kept.update({node: [_keeping(ask, others.get(ask, ())) for ask in asks] for node, asks in ran.items()})
    return kept


def _keeping(ask: Ask, others: tuple[tuple[str, tuple[int, ...]], ...]) -> Ask:
    for engine, ids in others:
        ask = ask.with_other(engine, ids)
    return ask


def own_drafts(old: dict[str, list[Ask]], ran: dict[str, list[Ask]], engine: str) -> dict[str, list[Ask]]:
    """The plan with an engine's own generations added to the requests they answer, as that engine's drafts: every
    test, request and draft of the plan's stays as it was (the plan is another engine's)."""
    found = {ask: ask.draft for asks in ran.values() for ask in asks if ask.kind == "generation" and ask.draft}
    return {
        node: [ask.with_other(engine, found[ask]) if ask in found else ask for ask in asks]
        for node, asks in old.items()
    }


def unique(asks: Iterable[Ask]) -> list[Ask]:
    seen: dict[Ask, None] = {}
    for ask in asks:
        seen.setdefault(ask, None)
    return list(seen)


def groups(rows: Iterable[Row]) -> list[Group]:
    """Fixed batches from a set of rows: the same rows always make the same groups, in the same order."""
    longest: dict[tuple[Any, ...], Row] = {}
    nexts: set[Row] = set()
    for row in rows:  # already normalised (Row.of): one greedy token is a next-token question
        if row.kind == "next_token":
            nexts.add(row)
            continue
        if row.key not in longest or longest[row.key].n < row.n:  # a shorter run of the same row is its prefix
            longest[row.key] = row
    result: list[Group] = []
    batch: list[Row] = []
    for row in sorted(longest.values(), key=_order):
        if batch and (len(batch) == GROUP_ROWS or 2 * row.n < batch[0].n):  # no row runs > twice its length
            result.append(Group("generation", tuple(batch)))
            batch = []
        batch.append(row)
    if batch:
        result.append(Group("generation", tuple(batch)))
    buckets: dict[tuple[int, ...], list[Row]] = {}
    for row in sorted(nexts, key=lambda r: r.ids):
        # Long prompts by their beginning (read once for the bucket), short ones by length (read together).
        length = len(row.ids) if len(row.ids) >= TOGETHER_FROM else 0
        buckets.setdefault(row.ids[:PREFIX] if len(row.ids) > PREFIX else (length,), []).append(row)
    for start, members in sorted(buckets.items()):
        size = NEXT_ROWS if start == (0,) else GROUP_ROWS
        result.extend(Group("next_token", tuple(members[i : i + size])) for i in range(0, len(members), size))
    return result


def _order(row: Row) -> tuple[Any, ...]:
    """Longest first, then by prompt, settings and seed: a fixed order, so the same rows make the same batches."""
    sampling = row.policy.sampling
    knobs = None if sampling is None else sampling.knobs
    return (-row.n, len(row.ids), row.ids, repr(knobs), row.policy.seed or 0)
