"""Broken stacks: each the bug one invariant catches (its negative control), built by wrapping a working transformers
backend or runtime and breaking one thing. ``CONTROLS[name](backend)`` gives an ``LM`` handle on the broken stack;
tests/test_invariants.py holds each invariant's check to fail on its control."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy

from pytest_lmbehave.api.lm import LM
from pytest_lmbehave.backends.protocol import Decoded, Drawn, Logprobs
from pytest_lmbehave.backends.sampling import Policy
from pytest_lmbehave.backends.vocabulary import Vocabulary
from pytest_lmbehave.runtime.runtime import Runtime


class Wrapped:
    """A backend that answers as ``inner`` does, except where a subclass breaks it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.decodes_each_draw = inner.decodes_each_draw

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    @property
    def vocab_size(self) -> int:
        return int(self.inner.vocab_size)

    @property
    def context(self) -> int:
        return int(self.inner.context)


def normalised(values: Any) -> Logprobs:
    values = numpy.asarray(values, dtype=numpy.float64)
    return Logprobs((values - numpy.logaddexp.reduce(values)).astype(numpy.float32))


def ranked(numbers: Logprobs, rank: int) -> int:
    """The id at ``rank`` (1 the best) of a distribution."""
    return int(numpy.argsort(-numbers.values, kind="stable")[rank - 1])


def with_ids(decoded: Decoded, ids: Sequence[int]) -> Decoded:
    n = len(ids)
    pad = n - len(decoded.ids)
    extend = lambda field, fill: tuple(field)[:n] + (fill,) * max(pad, 0)  # noqa: E731
    return Decoded(
        tuple(ids), extend(decoded.logprobs, 0.0), extend(decoded.margins, 0.0), extend(decoded.argmax_ids, 0)
    )


def steered(inner: Any, row: Sequence[int], decoded: Decoded, step: int, rank: int, steps: int) -> Decoded:
    """A greedy row that takes the ``rank``-th candidate at ``step`` and decodes greedily on from there."""
    if len(decoded.ids) <= step:
        return decoded
    prefix = [*row, *decoded.ids[:step]]
    chosen = ranked(inner.next_logprobs([prefix])[0], rank)
    rest = inner.generate([[*prefix, chosen]], steps - step - 1, [Policy()])[0].ids if steps - step - 1 > 0 else ()
    return with_ids(decoded, [*decoded.ids[:step], chosen, *rest])


def _limit(steps: int | Sequence[int], index: int) -> int:
    return steps if isinstance(steps, int) else list(steps)[index]


class DropsTheLastPosition(Wrapped):
    def logits(self, ids: Sequence[int]) -> Any:
        return self.inner.logits(ids)[:, :-1]


class NanInTheLogits(Wrapped):
    def logits(self, ids: Sequence[int]) -> Any:
        found = self.inner.logits(ids).clone()
        found[0, -1, 7] = float("nan")
        return found


class UnnormalisedLogprobs(Wrapped):
    def next_logprobs(self, rows: Sequence[Sequence[int]]) -> list[Logprobs]:
        return [Logprobs(n.values + numpy.float32(0.5)) for n in self.inner.next_logprobs(rows)]


class HiddenTemperature(Wrapped):
    def next_logprobs(self, rows: Sequence[Sequence[int]]) -> list[Logprobs]:
        return [normalised(n.values / 0.9) for n in self.inner.next_logprobs(rows)]


class GreedyStartsWithTheRunnerUp(Wrapped):
    def generate(self, rows: Any, steps: Any, policies: Any, drafts: Any = None) -> list[Decoded]:
        done = self.inner.generate(rows, steps, policies)
        return [steered(self.inner, r, d, 0, 2, _limit(steps, i)) for i, (r, d) in enumerate(zip(rows, done))]


class StateLeaksBetweenRequests(Wrapped):
    """A reused cache that keeps a little of each request: every call reads a bit further off."""

    calls = 0

    def next_logprobs(self, rows: Sequence[Sequence[int]]) -> list[Logprobs]:
        StateLeaksBetweenRequests.calls += 1
        drift = numpy.linspace(0, 0.01 * self.calls, self.vocab_size)
        return [normalised(n.values + drift) for n in self.inner.next_logprobs(rows)]


class PaddingLeaksIntoTheBatch(Wrapped):
    def next_logprobs(self, rows: Sequence[Sequence[int]]) -> list[Logprobs]:
        found = [self.inner.next_logprobs([row])[0] for row in rows]
        longest = max(len(row) for row in rows)
        rng = numpy.random.default_rng(0)
        return [
            n if len(row) == longest else normalised(n.values + rng.normal(0, 0.01, n.values.shape))
            for row, n in zip(rows, found)
        ]


class PaddingUnmasked(Wrapped):
    """Left padding without its attention mask: a shorter row reads the pad tokens before it as text."""

    def generate(self, rows: Any, steps: Any, policies: Any, drafts: Any = None) -> list[Decoded]:
        longest = max(len(row) for row in rows)
        pad = int(self.inner.tokenizer.pad_token_id)
        return [
            self.inner.generate([[pad] * (longest - len(row)) + list(row)], _limit(steps, i), [p])[0]
            for i, (row, p) in enumerate(zip(rows, policies))
        ]


class RowIndexLeaks(Wrapped):
    def generate(self, rows: Any, steps: Any, policies: Any, drafts: Any = None) -> list[Decoded]:
        done = self.inner.generate(rows, steps, policies)
        return [
            d if i == 0 else steered(self.inner, r, d, 1, 3, _limit(steps, i))
            for i, (r, d) in enumerate(zip(rows, done))
        ]


class GreedyPicksALowerRank(Wrapped):
    def generate(self, rows: Any, steps: Any, policies: Any, drafts: Any = None) -> list[Decoded]:
        done = self.inner.generate(rows, steps, policies)
        return [
            steered(self.inner, r, d, 3, 10, _limit(steps, i)) if p.greedy else d
            for i, (r, d, p) in enumerate(zip(rows, done, policies))
        ]


class LengthDependentDecoding(Wrapped):
    def generate(self, rows: Any, steps: Any, policies: Any, drafts: Any = None) -> list[Decoded]:
        done = self.inner.generate(rows, steps, policies)
        return [
            steered(self.inner, r, d, 2, 5, _limit(steps, i)) if _limit(steps, i) > 10 else d
            for i, (r, d) in enumerate(zip(rows, done))
        ]


class StaleKvCache(Wrapped):
    def generate(self, rows: Any, steps: Any, policies: Any, drafts: Any = None) -> list[Decoded]:
        done = self.inner.generate(rows, steps, policies)
        return [replace(d, logprobs=(*d.logprobs[:1], *(v - 0.05 for v in d.logprobs[1:]))) for d in done]


class RecordsTemperedLogprobs(Wrapped):
    def generate(self, rows: Any, steps: Any, policies: Any, drafts: Any = None) -> list[Decoded]:
        done = self.inner.generate(rows, steps, policies)
        return [
            d
            if p.greedy or not p.sampling.temperature
            else replace(d, logprobs=tuple(v / p.sampling.temperature for v in d.logprobs))
            for d, p in zip(done, policies)
        ]


class DecodesPastEos(Wrapped):
    """EOS read as an ordinary token: a row that reaches it (here at step 2) decodes on."""

    def generate(self, rows: Any, steps: Any, policies: Any, drafts: Any = None) -> list[Decoded]:
        done = self.inner.generate(rows, steps, policies)
        eos = min(self.inner.stop_ids)
        return [with_ids(d, [*d.ids[:2], eos, *d.ids[2:]][: _limit(steps, i)]) for i, d in enumerate(done)]


class OneTokenTooMany(Wrapped):
    def generate(self, rows: Any, steps: Any, policies: Any, drafts: Any = None) -> list[Decoded]:
        more = steps + 1 if isinstance(steps, int) else [s + 1 for s in steps]
        return list(self.inner.generate(rows, more, policies))


def _reseeded(policies: Sequence[Policy], seed: Callable[[Policy], int | None]) -> list[Policy]:
    return [p if p.greedy else Policy(p.sampling, seed(p)) for p in policies]


class UnseededSampler(Wrapped):
    def generate(self, rows: Any, steps: Any, policies: Any, drafts: Any = None) -> list[Decoded]:
        fresh = _reseeded(policies, lambda p: int.from_bytes(os.urandom(4), "little"))
        return list(self.inner.generate(rows, steps, fresh))


class FixedSeedSampler(Wrapped):
    def draws(self, ids: Sequence[int], policy: Policy, n: int) -> Drawn:
        return self.inner.draws(ids, Policy(policy.sampling, 0), n)  # type: ignore[no-any-return]

    def generate(self, rows: Any, steps: Any, policies: Any, drafts: Any = None) -> list[Decoded]:
        return list(self.inner.generate(rows, steps, _reseeded(policies, lambda p: 0)))


class SamplerOffDistribution(Wrapped):
    """Uniform over the candidates the settings keep, not weighted by their probabilities."""

    def draws(self, ids: Sequence[int], policy: Policy, n: int) -> Drawn:
        drawn = self.inner.draws(ids, policy, n)
        k = policy.sampling.top_k or 50  # type: ignore[union-attr]
        kept = numpy.argsort(-drawn.numbers.values, kind="stable")[:k]
        rng = numpy.random.default_rng(policy.seed)
        return replace(drawn, tokens=[int(t) for t in rng.choice(kept, size=n)])


class _Knob(Wrapped):
    """Samples with one knob of the settings changed (``knob``)."""

    def knob(self, sampling: Any) -> Any:
        raise NotImplementedError

    def _policies(self, policies: Sequence[Policy]) -> list[Policy]:
        return [p if p.greedy else Policy(self.knob(p.sampling), p.seed) for p in policies]

    def generate(self, rows: Any, steps: Any, policies: Any, drafts: Any = None) -> list[Decoded]:
        return list(self.inner.generate(rows, steps, self._policies(policies)))

    def draws(self, ids: Sequence[int], policy: Policy, n: int) -> Drawn:
        drawn = self.inner.draws(ids, self._policies([policy])[0], n)
        return replace(drawn, sampling=policy.sampling)  # and says it applied what was asked


class TopKIgnored(_Knob):
    def knob(self, sampling: Any) -> Any:
        return replace(sampling, top_k=1000)


class TopPIgnored(_Knob):
    def knob(self, sampling: Any) -> Any:
        return replace(sampling, top_p=None)


class TemperatureIgnored(_Knob):
    def knob(self, sampling: Any) -> Any:
        return replace(sampling, temperature=None)


class TemperatureInverted(_Knob):
    def knob(self, sampling: Any) -> Any:
        t = sampling.temperature
        return replace(sampling, temperature=None if t is None else 1 / t)


class ScoresShiftedByOne(Wrapped):
    def forced_logprobs(self, rows: Any, generated: bool = False) -> list[list[Logprobs]]:
        return [[*found[:1], *found[:-1]] for found in self.inner.forced_logprobs(rows, generated)]


class CleansUpSpaces(Wrapped):
    """clean_up_tokenization_spaces: decoding that tidies spaces, as some tokenizers' defaults do."""

    def detokenize(self, ids: Sequence[int]) -> str:
        text = str(self.inner.detokenize(ids))
        while "  " in text:
            text = text.replace("  ", " ")
        return text


class BosAtTheEnd(Wrapped):
    def tokenize(self, text: str, special: bool = True) -> list[int]:
        ids = list(self.inner.tokenize(text, special=False))
        return [*ids, min(self.inner.stop_ids)] if special else ids


class VocabularyShort(Wrapped):
    def vocabulary(self) -> Vocabulary:
        whole = self.inner.vocabulary()
        return Vocabulary(whole.pieces[:-1], whole.ids, whole.digest)

    @property
    def vocab_size(self) -> int:
        return int(self.inner.vocab_size)


class PaddingRowsFavoured(Wrapped):
    def next_logprobs(self, rows: Sequence[Sequence[int]]) -> list[Logprobs]:
        tokens = self.inner.vocabulary().tokens
        found = []
        for numbers in self.inner.next_logprobs(rows):
            values = numbers.values.astype(numpy.float64)
            values[tokens:] = values.max() + 1
            found.append(normalised(values))
        return found


class NoGenerationPrompt(Wrapped):
    def chat(self, messages: Any) -> tuple[str, list[int]]:
        self.inner.chat(messages)  # a model without a template says so (NotApplicable) as the working stack does
        text = self.inner.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=False)
        return str(text), list(self.inner.tokenizer(text, add_special_tokens=False)["input_ids"])


class ChatAddsABos(Wrapped):
    def chat(self, messages: Any) -> tuple[str, list[int]]:
        text, ids = self.inner.chat(messages)
        return text, [int(self.inner.tokenizer.bos_token_id), *ids]


class ChooseAverages(Runtime):
    def _scores(self, row: Any, context: Any, continuations: list[list[int]]) -> tuple[float, ...]:
        return tuple(s / len(c) for s, c in zip(super()._scores(row, context, continuations), continuations))


class ChooseSplitsTheWholeText(Runtime):
    """lm-eval's split: the context and each option tokenized as one text, split at the context's length."""

    def choose(self, prompt: Any, options: Any, asked: Any = None) -> Any:
        from pytest_lmbehave.observations.choice import Choice

        context = self.ids(prompt)
        scores = []
        for option in options:
            whole = self.encode(prompt + option)
            head, tail = whole[: len(context)], whole[len(context) :]
            if not tail:
                scores.append(0.0)
                continue
            steps = self.backend.forced_logprobs([(head, tail)])[0]
            scores.append(float(sum(float(s.values[t]) for s, t in zip(steps, tail))))
        return Choice(prompt, tuple(options), tuple(scores), tuple(context))


class TruncatesSilently(Runtime):
    """The context check taken out: a longer prompt reaches the model, which reads what it can."""

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        self.tokens.context = 0


def _backend(kind: type[Wrapped]) -> Callable[[Any], LM]:
    return lambda inner: LM(Runtime(kind(inner)))


def _runtime(kind: type[Runtime]) -> Callable[[Any], LM]:
    return lambda inner: LM(kind(inner))


CONTROLS: dict[str, Callable[[Any], LM]] = {
    "drops-the-last-position": _backend(DropsTheLastPosition),
    "nan-in-the-logits": _backend(NanInTheLogits),
    "unnormalised-logprobs": _backend(UnnormalisedLogprobs),
    "hidden-temperature": _backend(HiddenTemperature),
    "greedy-starts-with-the-runner-up": _backend(GreedyStartsWithTheRunnerUp),
    "state-leaks-between-requests": _backend(StateLeaksBetweenRequests),
    "padding-leaks-into-the-batch": _backend(PaddingLeaksIntoTheBatch),
    "padding-unmasked": _backend(PaddingUnmasked),
    "row-index-leaks": _backend(RowIndexLeaks),
    "greedy-picks-a-lower-rank": _backend(GreedyPicksALowerRank),
    "length-dependent-decoding": _backend(LengthDependentDecoding),
    "stale-kv-cache": _backend(StaleKvCache),
    "records-tempered-logprobs": _backend(RecordsTemperedLogprobs),
    "decodes-past-eos": _backend(DecodesPastEos),
    "one-token-too-many": _backend(OneTokenTooMany),
    "unseeded-sampler": _backend(UnseededSampler),
    "fixed-seed-sampler": _backend(FixedSeedSampler),
    "sampler-off-distribution": _backend(SamplerOffDistribution),
    "top-k-ignored": _backend(TopKIgnored),
    "top-p-ignored": _backend(TopPIgnored),
    "temperature-ignored": _backend(TemperatureIgnored),
    "temperature-inverted": _backend(TemperatureInverted),
    "scores-shifted-by-one": _backend(ScoresShiftedByOne),
    "choose-averages": _runtime(ChooseAverages),
    "choose-splits-the-whole-text": _runtime(ChooseSplitsTheWholeText),
    "cleans-up-spaces": _backend(CleansUpSpaces),
    "bos-at-the-end": _backend(BosAtTheEnd),
    "vocabulary-short": _backend(VocabularyShort),
    "padding-rows-favoured": _backend(PaddingRowsFavoured),
    "truncates-silently": _runtime(TruncatesSilently),
    "no-generation-prompt": _backend(NoGenerationPrompt),
    "chat-adds-a-bos": _backend(ChatAddsABos),
}

# The model of the matrix each control is shown on, where not the Llama under SmolLM2's tokenizer.
SHOWN_ON = {"padding-rows-favoured": "qwen2+padded"}
