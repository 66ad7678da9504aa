"""Answers the LM API's questions about one model (from the memo, the plan's batches or the backend): requests
in (``plan.key``: one identity for every question), observations out as plain data; the backend speaks ids."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy

from ..backends import ALTERNATIVES, Backend, Decoded, Logprobs
from ..backends.sampling import GREEDY, ORDER, Policy, Sampling, row_seed
from ..config import defaults, engines
from ..config.errors import BackendUnavailable, InputError, LMBehaveError
from ..observations.choice import Choice
from ..observations.conformance import Draws, Knobs
from ..observations.generation import Generation
from ..observations.next_token import Distribution, exact_kl
from ..observations.scores import Scores, scored
from ..observations.tensors import tensor
from ..observations.tokenization import Tokenization
from ..observations.verdict import StepCheck
from . import plan
from .memo import Memo
from .scheduler import Scheduler
from .store import ObservationStore, SharedBatches
from .tokens import Prompt, Tokens

Asked = Callable[[plan.Ask], None]  # told of every request, normalised, for the plan (--lm-plan-update)


class Runtime:
    def __init__(
        self,
        backend: Backend,
        store: ObservationStore | None = None,
        shared: SharedBatches | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.backend = backend
        self.announce = announce
        self.memo = Memo(store)
        self.schedule = Scheduler(self.memo, self._compute, shared)
        self.drafts: plan.Drafts = {}  # a row's ids last time
        self.vocabulary = backend.vocabulary()
        self.tokens = Tokens(backend, self.vocabulary, backend.context, self.memo)

    @property
    def fingerprint(self) -> dict[str, str]:
        return self.backend.fingerprint()

    @property
    def stats(self) -> Any:
        return self.memo.stats

    @property
    def sharing(self) -> bool:
        """Whether other xdist workers share this run's batches."""
        return self.schedule.shared is not None

    # -- the plan ---------------------------------------------------------------------------------------------
    def use_plan(self, asks: Iterable[plan.Ask], drafts: plan.Drafts | None = None) -> None:
        """Batch the plan's requests for the tests this run collected into fixed groups; each generation's ids from
        the last run (the plan's, else a recorded snapshot's: ``drafts``) are verified instead of decoded."""
        rows, dropped = [], []
        self.drafts = dict(drafts or {})
        for ask in asks:
            try:
                ids = tuple(self.ids(ask.prompt, ask.n if ask.kind == "generation" else 0))
            except LMBehaveError as error:
                dropped.append(f"{ask.prompt!r:.40}: {str(error).splitlines()[0]}")
                continue  # a request the model cannot take is left to its test to report
            rows.append(plan.Row(ask.kind, ids, ask.n, ask.policy))
            if ask.draft:
                plan.add_draft(self.drafts, plan.key("generation", ids, ask.policy), ask.draft)
        if dropped and self.announce is not None:
            self.announce(
                f"pytest-lmbehave: {len(dropped)} request(s) of the plan dropped, the model cannot take them "
                f"(first: {dropped[0]}); rewrite the plan with --lm-plan-update"
            )
        self.schedule.use(rows)

    def prefetch(self, batches: int | None = None) -> int:
        return self.schedule.prefetch(batches)

    def _compute(self, group: plan.Group) -> list[Any]:
        if group.kind == "next_token":
            return self.backend.next_logprobs([row.ids for row in group.rows])
        rows = group.rows
        decoded = self._decode([row.ids for row in rows], [row.n for row in rows], [row.policy for row in rows])
        return [(generation, row.n) for generation, row in zip(decoded, rows)]

    def forget(self) -> None:
        """Drop remembered results and stop reading --lm-cache, so what is asked next is computed afresh (e.g. to
        compare batched and single runs); results are still written to the cache."""
        self.memo.forget()

    def fresh(self) -> Runtime:
        """A runtime on the same backend with nothing remembered and no plan: to show a result is computed afresh,
        not sliced from another. It verifies drafts as its parent does (every token is still the model's, checked
        by teacher forcing). Under --lm-cache it keeps its results apart, so a re-run reads what a fresh runtime
        computed, never what the main one did."""
        store = self.memo.store
        fresh = Runtime(self.backend, None if store is None else store.within("fresh"))
        fresh.drafts = self.drafts  # it still computes every token: a draft is checked by teacher forcing
        return fresh

    def encode(self, text: str, special: bool = True) -> list[int]:
        return self.tokens.encode(text, special)

    def decode(self, ids: Sequence[int] | int) -> str:
        __tracebackhide__ = True
        return self.tokens.decode(ids)

    def tokenize(self, text: str) -> Tokenization:
        __tracebackhide__ = True
        return self.tokens.tokenize(text)

    def chat(self, messages: Sequence[dict[str, str]]) -> tuple[str, list[int]]:
        """A conversation rendered by the model's own chat template (the assistant's turn opened): text and ids."""
        return self.tokens.chat(messages)

    def ids(self, prompt: Prompt, extra: int = 0) -> list[int]:
        __tracebackhide__ = True
        return self.tokens.ids(prompt, extra)

    # -- next-token distributions -------------------------------------------------------------------------------
    def next_tokens(self, prompts: Sequence[Prompt], asked: Asked | None = None) -> list[Distribution]:
        # One forward pass per prompt, never a padded batch: a prompt's numbers then do not depend on which
        # prompts it was asked with, so results are the same in any test order and on any xdist worker.
        results = []
        for prompt in prompts:
            ids = self.ids(prompt)
            if asked is not None:
                asked(plan.Ask.of("next_token", _asked(prompt)))
            results.append(self._distribution(self.tokens.text(prompt, ids), ids, self._next(tuple(ids))))
        return results

    def _next(self, ids: tuple[int, ...]) -> Logprobs:
        key = plan.key("next_token", ids)
        self.memo.asked(key)
        found = self.memo.get(key)
        if found is None:
            found = self.schedule.provide(key, 1)
        if found is None:
            found = self.memo.put(key, self.backend.next_logprobs([ids])[0])
        return found  # type: ignore[no-any-return]

    def _distribution(self, text: str, ids: Sequence[int], numbers: Logprobs) -> Distribution:
        return Distribution(text, numbers.values, self.vocabulary, tuple(ids), numbers.known, numbers.ranks)

    # -- generation -------------------------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[Prompt],
        max_new_tokens: int,
        sampling: Sampling | None,
        seed: int | None,
        asked: Asked | None = None,
    ) -> list[Generation]:
        """Greedy, or sampled with one seed per row (row 0 takes ``seed``); a row's tokens never depend on the others."""
        __tracebackhide__ = True
        if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
            raise InputError(f"max_new_tokens={max_new_tokens!r} must be a whole number >= 1")
        id_rows = [self.ids(p, max_new_tokens) for p in prompts]
        policies = [
            GREEDY if sampling is None else Policy(sampling, row_seed(seed or 0, i)) for i in range(len(prompts))
        ]
        rows = [plan.Row.of("generation", tuple(r), max_new_tokens, policy) for r, policy in zip(id_rows, policies)]
        results = [self._remembered(row) for row in rows]
        todo = [i for i, found in enumerate(results) if found is None]
        if todo:
            fresh = self._decode([rows[i].ids for i in todo], max_new_tokens, [rows[i].policy for i in todo])
            for i, generation in zip(todo, fresh):
                self.memo.put(rows[i].key, (generation, max_new_tokens))
                results[i] = generation
        done = [g for g in results if g is not None]
        if asked is not None:  # with the ids each row gave, as the next run's drafts
            for prompt, policy, generation in zip(prompts, policies, done):
                asked(plan.Ask.of("generation", _asked(prompt), max_new_tokens, policy, generation.ids))
        texts = [self.tokens.text(p, r) for p, r in zip(prompts, id_rows)]
        return [replace(g, prompt=t) if g.prompt != t else g for g, t in zip(done, texts)]

    def _remembered(self, row: plan.Row) -> Generation | None:
        """A remembered (or planned) run of this row; a run of n tokens is a prefix of any longer run of it."""
        if row.kind == "next_token":  # one greedy token is the argmax of the next-token question
            return self._one_token(row.ids, self._next(row.ids))
        self.memo.asked(row.key)
        found = self._prefix_of(row.key, row.n)
        if found is None and self.schedule.provide(row.key, row.n) is not None:
            found = self._prefix_of(row.key, row.n)
        return found

    def _prefix_of(self, key: tuple[Any, ...], n: int) -> Generation | None:
        cached = self.memo.get(key)
        if cached is None:
            return None
        generation, asked = cached
        if n > asked and len(generation.ids) == asked:  # the cached run stopped at its limit, not at EOS
            return None
        return self.tokens.truncate(generation, n)

    def _one_token(self, ids: tuple[int, ...], numbers: Logprobs) -> Generation:
        dist = self._distribution("", ids, numbers)
        token = dist.argmax_id
        best = tuple((c.id, c.logprob) for c in dist.top(min(ALTERNATIVES, numbers.known or dist.vocab_size)))
        return self.tokens.generation(
            ids, Decoded((token,), (dist.logprob(token),), (dist.margin,), (token,), (best,)), GREEDY
        )

    def _decode(
        self, id_rows: Sequence[Sequence[int]], n: int | Sequence[int], policies: Sequence[Policy]
    ) -> list[Generation]:
        drafts = [self.drafts.get(plan.key("generation", r, p)) for r, p in zip(id_rows, policies)]
        decoded = self.backend.generate(id_rows, n, policies, drafts if any(drafts) else None)
        for row in decoded:
            self.memo.stats["tokens verified"] += row.verified
            self.memo.stats["tokens decoded"] += len(row.ids) - row.verified
        return [self.tokens.generation(tuple(r), d, p) for r, d, p in zip(id_rows, decoded, policies)]

    # -- scoring and teacher forcing --------------------------------------------------------------------------
    def choose(self, prompt: Prompt, options: Sequence[str], asked: Asked | None = None) -> Choice:
        __tracebackhide__ = True
        if isinstance(options, str) or len(options) < 2 or not all(isinstance(o, str) and o for o in options):
            raise InputError(
                f"options={options!r} must be a list of at least two non-empty strings, e.g. [' good', ' bad']"
            )
        repeated = sorted({o for o in options if list(options).count(o) > 1})
        if repeated:
            raise InputError(f"options={options!r} name {repeated[0]!r} more than once; give each option once")
        context = self.ids(prompt)
        continuations = [self.encode(option, special=False) for option in options]
        row = plan.Row.of("choice", tuple(context), one_token=all(len(c) == 1 for c in continuations))
        if asked is not None and row.kind == "next_token":
            asked(plan.Ask.of("next_token", _asked(prompt)))
        key = plan.key("choice", context, tuple(options))
        scores = self.memo.get(key)
        if scores is None:
            scores = self.memo.put(key, self._scores(row, context, continuations))
        return Choice(self.tokens.text(prompt, context), tuple(options), tuple(scores), tuple(context))

    def _scores(self, row: plan.Row, context: Sequence[int], continuations: list[list[int]]) -> tuple[float, ...]:
        """Each option's log-likelihood after the context."""
        dist = self._distribution("", context, self._next(row.ids)) if row.kind == "next_token" else None
        if dist is not None and all(dist.known == 0 or dist.values[c[0]] > -math.inf for c in continuations):
            return tuple(dist.logprob(c[0]) for c in continuations)  # one-token options: read off the distribution
        # Longer options, or one a served model did not report among its top candidates: teacher forcing.
        forced = self.backend.forced_logprobs([(context, c) for c in continuations])
        return tuple(sum(float(s.values[t]) for s, t in zip(steps, c)) for steps, c in zip(forced, continuations))

    def _forced(self, prompt: Sequence[int], ids: Sequence[int], generated: bool) -> list[Logprobs]:
        """A continuation's steps by teacher forcing (as generate read them, when ``generated``), computed once."""
        key = plan.key("forced", prompt, tuple(ids), generated)
        found = self.memo.get(key)
        if found is None:
            found = self.memo.put(key, self.backend.forced_logprobs([(prompt, ids)], generated)[0])
        return found  # type: ignore[no-any-return]

    def steps(self, generation: Generation) -> list[Distribution]:
        """The model's next-token distribution before each new token of a generation (teacher forcing)."""
        prompt, ids = tuple(generation.prompt_ids), tuple(generation.ids)
        found = self._forced(prompt, ids, False)
        read = list(prompt) + list(ids)
        return [
            self._distribution(self.decode(read[: len(prompt) + i]), read[: len(prompt) + i], numbers)
            for i, numbers in enumerate(found)
        ]

    def score(self, text: Prompt) -> Scores:
        """Each token of ``text`` after the first, scored given the ones before it, from one teacher-forced pass."""
        __tracebackhide__ = True
        ids = self.ids(text)
        steps = self._forced(ids[:1], tuple(ids[1:]), False) if len(ids) > 1 else []
        return scored(self.tokens.text(text, ids), ids, steps, self.vocabulary)

    def kl_from(self, observation: Any) -> dict[str, Any] | None:
        """This model's distributions for the ids ``observation`` read (another engine's, on the same weights), each
        position's exact KL(this || observed) over the full vocabulary and whether the top candidate is the same;
        None for an observation without whole distributions (a server's, or another kind)."""
        if isinstance(observation, Scores) and observation.whole is not None:
            pairs = list(zip(self.score(list(observation.ids)).whole or (), observation.whole))
        elif isinstance(observation, Distribution) and not observation.known:
            pairs = [(self.next_tokens([list(observation.prompt_ids)])[0].values, observation.values)]
        else:
            return None
        return {
            "engine": self.fingerprint.get("engine") or engines.DEFAULT,
            "kl": [float(f"{exact_kl(mine, theirs):.6g}") for mine, theirs in pairs],
            "same_top": [int(mine.argmax()) == int(theirs.argmax()) for mine, theirs in pairs],
        }

    def teacher_force(self, prompt: Prompt, ids: Sequence[int]) -> list[StepCheck]:
        """Score a recorded continuation under this model, one forward pass over prompt + continuation: at each
        step the recorded token's log-probability and rank, and today's top candidate. Empty when the ids are not
        this model's (a tampered or foreign record)."""
        context, ids = self.ids(prompt), list(ids)
        if not ids or any(not 0 <= i < self.vocabulary.size for i in ids):
            return []
        checks = []
        for numbers, token in zip(self._forced(context, ids, True), ids):
            dist = self._distribution("", context, numbers)
            value = dist.logprob(token)  # the token read is always reported, by a served model too
            try:
                rank = dist.rank(token)
            except BackendUnavailable:
                rank = numbers.known + 1  # below the top candidates a served model reports: at least this
            best = dist.argmax_id
            checks.append(StepCheck(token, best, value, rank, dist.logprob(best) - value))
        return checks

    def draw_count(self) -> int:
        """How many draws ``lm.draws`` takes when not told: 2,000 where they cost one pass, fewer where each is a
        decode of its own (a server: about 30 to 45 a second on 2 cores)."""
        return defaults.DRAWS_DECODED if self.backend.decodes_each_draw else defaults.DRAWS

    def draws(self, prompt: Prompt, sampling: Sampling, seed: int | None, n: int) -> Draws:
        """``n`` draws of the next token through the engine's own sampler, with the untempered distribution they
        are held to (which must be whole: a served model's top candidates are not enough)."""
        ids = tuple(self.ids(prompt))
        policy = Policy(sampling, seed)
        key = plan.key("draws", ids, policy, n)  # remembered, and under --lm-cache read back without the model
        drawn = self.memo.get(key)
        if drawn is None:
            drawn = self.memo.put(key, self.backend.draws(ids, policy, n))
        numbers, applied = drawn.numbers, drawn.sampling
        if numbers.known and not (applied.top_k is not None and applied.top_k <= numbers.known):
            raise BackendUnavailable(
                f"draws are held to the candidates their sampler draws from ({applied.top_k or 'the whole vocabulary'}"
                f"), and {self.backend.name} reported its top {numbers.known} only"
            )
        knobs = Knobs(applied.temperature or 1.0, applied.top_k, applied.top_p, order=drawn.order or ORDER)
        text = self.tokens.text(prompt, list(ids))
        return Draws(
            text, ids, tuple(drawn.tokens), knobs, numpy.asarray(numbers.values, dtype=numpy.float64), self.decode
        )

    def logits(self, prompt: Prompt) -> Any:
        """The raw logits [1, tokens, vocab] as a float32 tensor (a copy)."""
        ids = tuple(self.ids(prompt))
        key = plan.key("logits", ids)
        found = self.memo.get(key)
        if found is None:
            found = self.memo.put(key, numpy.asarray(self.backend.logits(ids), dtype=numpy.float32))
        return tensor(found)


def _asked(prompt: Prompt) -> str | tuple[int, ...]:
    return prompt if isinstance(prompt, str) else tuple(prompt)
