"""The small LM API that specs, fixtures, snapshots and the command line all use: ``LM``, a test's handle.

It carries the test's decoding settings (greedy, or sampled with a seed), checks what it is given, and hands
each question to the model's ``Runtime``; every observation it returns is also shown to the report recorder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, overload

from ..backends.sampling import Sampling, derive_seed
from ..backends.vocabulary import Vocabulary
from ..config import defaults
from ..config.errors import InputError
from ..observations import changes
from ..observations.changes import Capability
from ..observations.chat import Chat
from ..observations.choice import Choice
from ..observations.conformance import Draws
from ..observations.generation import Generation
from ..observations.next_token import Distribution
from ..observations.perturbations import Change
from ..observations.rates import SequentialRate
from ..observations.scores import Scores
from ..observations.tokenization import Tokenization
from ..runtime import plan
from ..runtime.runtime import Runtime
from ..runtime.tokens import Prompt


def _check_prompt(prompt: Any) -> None:
    __tracebackhide__ = True
    if isinstance(prompt, str):
        if not prompt:
            raise InputError("the prompt is empty; pass at least one character of text")
        return
    if (
        isinstance(prompt, (list, tuple))
        and prompt
        and all(isinstance(i, int) and not isinstance(i, bool) for i in prompt)
    ):
        return
    raise InputError(
        f"the prompt must be a non-empty string (or a list of token ids), not {type(prompt).__name__}: {prompt!r:.80}"
    )


def _check_batch(prompts: Any) -> list[Prompt]:
    __tracebackhide__ = True
    if not prompts:
        raise InputError("the list of prompts is empty; pass one prompt or a non-empty list")
    for prompt in prompts:
        _check_prompt(prompt)
    return list(prompts)


def _check_messages(messages: Any) -> list[dict[str, str]]:
    __tracebackhide__ = True
    example = "e.g. [{'role': 'user', 'content': 'What is the capital of France?'}]"
    if isinstance(messages, (str, bytes)) or not isinstance(messages, (list, tuple)) or not messages:
        raise InputError(f"lm.chat takes a non-empty list of messages, {example}; not {messages!r:.80}")
    for index, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or set(message) != {"role", "content"}
            or not all(isinstance(message[k], str) for k in ("role", "content"))
            or not message["role"]
        ):
            raise InputError(
                f"message {index} must be a dict with a 'role' and a 'content', both strings, {example}; "
                f"not {message!r:.80}"
            )
    return [dict(message) for message in messages]


def _is_batch(prompt: Any) -> bool:
    return isinstance(prompt, (list, tuple)) and bool(prompt) and not isinstance(prompt[0], int)


class LM:
    """A test's handle on a model: greedy unless the test is marked sampled; see ``with_sampling``."""

    def __init__(
        self,
        runtime: Runtime,
        sampling: Sampling | None = None,
        seed: int | None = None,
        recorder: Callable[[Any], None] | None = None,
        asks: list[plan.Ask] | None = None,
        capabilities: list[Capability] | None = None,
    ) -> None:
        self.runtime = runtime
        self.sampling = sampling
        self.seed = seed if sampling is None or sampling.seed is None else sampling.seed
        self.recorder = recorder  # told of every observation (for --lm-report)
        self.asks = asks  # every request made, normalised by the runtime, for the plan (--lm-plan-update)
        self.capabilities = capabilities  # every capability judged, for the run's summary of rates
        self._calls = 0

    @property
    def _asked(self) -> Callable[[plan.Ask], None] | None:
        return None if self.asks is None else self.asks.append

    def _next_seed(self) -> int | None:
        """A sampled call's seed: the next in this handle's fixed sequence (None when greedy)."""
        if self.sampling is None:
            return None
        seed = derive_seed(self.seed or 0, f"call-{self._calls}")
        self._calls += 1
        return seed

    def _sampled(self, verb: str) -> Sampling:
        """This handle's sampling settings, for a verb that samples; a greedy handle is refused with the fix."""
        __tracebackhide__ = True
        if self.sampling is None:
            raise InputError(
                f"{verb} samples, and this handle decodes greedily: mark the test @sampled(...) or use "
                "lm.with_sampling(temperature=..., top_k=..., top_p=...)"
            )
        return self.sampling

    def _seen(self, observation: Any) -> Any:
        if self.recorder is not None:
            for item in observation if isinstance(observation, list) else [observation]:
                self.recorder(item)
        return observation

    @property
    def model(self) -> Any:
        """The raw transformers model (an in-process backend only)."""
        return _in_process(self.runtime, "model")

    @property
    def tokenizer(self) -> Any:
        """The raw transformers tokenizer (an in-process backend only)."""
        return _in_process(self.runtime, "tokenizer")

    @property
    def fingerprint(self) -> dict[str, str]:
        return self.runtime.fingerprint

    @property
    def noise(self) -> float:
        """How far a top candidate's log-probability moves between batch layouts and reading paths here, in nats:
        the dtype's measured noise floor (about 1e-5 in float32 on a CPU, 0.25 in bfloat16). A property spec that
        compares numbers read two ways allows this much; 0 when the backend did not measure it."""
        try:
            return float(self.fingerprint.get("noise", 0.0))
        except ValueError:
            return 0.0

    @property
    def vocabulary(self) -> Vocabulary:
        """Every token the model knows: ``len(lm.vocabulary)``, ``.piece(id)``, ``.id_of(piece)``."""
        return self.runtime.vocabulary

    def with_sampling(
        self,
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> LM:
        """A handle that samples with these settings; its seed is ``seed`` or derived from this handle's seed."""
        __tracebackhide__ = True
        base = seed if seed is not None else derive_seed(self.seed or 0, f"{temperature}/{top_p}/{top_k}")
        return LM(
            self.runtime, Sampling(temperature, top_p, top_k, seed), base, self.recorder, self.asks, self.capabilities
        )

    def greedy(self) -> LM:
        return LM(self.runtime, None, self.seed, self.recorder, self.asks, self.capabilities)

    def tokenize(self, text: str) -> Tokenization:
        __tracebackhide__ = True
        return self._seen(self.runtime.tokenize(text))  # type: ignore[no-any-return]

    def decode(self, ids: Sequence[int] | int) -> str:
        __tracebackhide__ = True
        return self.runtime.decode(ids)

    def logits(self, prompt: Prompt) -> Any:
        __tracebackhide__ = True
        _check_prompt(prompt)
        return self.runtime.logits(prompt)

    @overload
    def next_token(self, prompt: str | list[int] | tuple[int, ...]) -> Distribution: ...
    @overload
    def next_token(self, prompt: list[str]) -> list[Distribution]: ...
    def next_token(self, prompt: Any) -> Any:
        __tracebackhide__ = True
        if _is_batch(prompt):
            return self._seen(self.runtime.next_tokens(_check_batch(prompt), self._asked))
        _check_prompt(prompt)
        return self._seen(self.runtime.next_tokens([prompt], self._asked)[0])

    @overload
    def generate(self, prompt: str | list[int] | tuple[int, ...], max_new_tokens: int = 20) -> Generation: ...
    @overload
    def generate(self, prompt: list[str], max_new_tokens: int = 20) -> list[Generation]: ...
    def generate(self, prompt: Any, max_new_tokens: int = 20) -> Any:
        """Greedy, or sampled under this handle's seed; each sampled call gets the next seed in a fixed sequence."""
        __tracebackhide__ = True
        batch = _is_batch(prompt)
        prompts = _check_batch(prompt) if batch else [prompt]
        if not batch:
            _check_prompt(prompt)
        results = self.runtime.generate(prompts, max_new_tokens, self.sampling, self._next_seed(), self._asked)
        return self._seen(results if batch else results[0])

    def chat(self, messages: Sequence[dict[str, str]], max_new_tokens: int = 20) -> Chat:
        """The model's answer to a conversation, through its own chat template (the assistant's turn opened); greedy,
        or sampled under this handle's seed as ``generate`` is. ``.prompt`` is the rendered template and
        ``.prompt_ids`` its ids, so a snapshot of it pins the template too."""
        __tracebackhide__ = True
        checked = _check_messages(messages)
        seed = self._next_seed()
        template, ids = self.runtime.chat(checked)
        answer = self.runtime.generate([ids], max_new_tokens, self.sampling, seed, self._asked)[0]
        return self._seen(Chat.answering(checked, template, answer))  # type: ignore[no-any-return]

    def draws(self, prompt: Prompt, n: int | None = None) -> Draws:
        """``n`` independent draws of the next token through the engine's own sampler, under this handle's sampling
        settings (mark the test ``@sampled(...)`` or use ``with_sampling``) and its next seed. Hold them to the
        distribution asked with ``assert_sampled_from``. By default 2,000 (one pass and the sampling loop), or 1,000
        where each draw is a decode of its own (a server)."""
        __tracebackhide__ = True
        _check_prompt(prompt)
        sampling = self._sampled("lm.draws()")
        n = self.runtime.draw_count() if n is None else n
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InputError(
                f"n={n!r} must be a whole number >= 1 ({defaults.DRAWS} draws reject the known wrong samplers)"
            )
        return self._seen(self.runtime.draws(prompt, sampling, self._next_seed(), n))  # type: ignore[no-any-return]

    def rate(
        self, prompt: Prompt, predicate: Callable[[str], bool], n: int = defaults.DRAWS, tokens: int = 1
    ) -> SequentialRate:
        """How often ``predicate`` holds of a sampled continuation of ``tokens`` tokens (its text), under this
        handle's sampling settings. Nothing is drawn until the rate is held to a bound: ``assert rate >= 0.9`` draws
        in looks of 50, 100, 200, ... up to ``n`` and stops at the first that decides (pass, fail, or inconclusive
        when ``n`` draws cannot tell; α = 0.01 over all looks). One token draws through the engine's sampler from one
        pass (``draws``); more decode one sampled continuation per draw, each under its own seed."""
        __tracebackhide__ = True
        _check_prompt(prompt)
        sampling = self._sampled("lm.rate()")
        if not callable(predicate):
            raise InputError(f"predicate={predicate!r} must be a function of the sampled text, e.g. lambda t: ...")
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
            raise InputError(f"tokens={tokens!r} must be a whole number >= 1: how long each sampled continuation is")
        held: dict[int, bool] = {}  # a token's verdict, asked once

        def holds(text: str) -> bool:
            found = predicate(text)
            if not isinstance(found, (bool, int)):
                raise InputError(f"the predicate returned {found!r} for {text!r}; it must return True or False")
            return bool(found)

        def draw(k: int) -> int:
            if tokens == 1:
                drawn = self.runtime.draws(prompt, sampling, self._next_seed(), k)
                for token in set(drawn.tokens) - held.keys():
                    held[token] = holds(self.decode(token))
                return sum(held[token] for token in drawn.tokens)
            texts = [
                self.runtime.generate([prompt], tokens, sampling, self._next_seed(), self._asked)[0].text
                for _ in range(k)
            ]
            return sum(holds(text) for text in texts)

        shown = prompt if isinstance(prompt, str) else self.decode(list(prompt))
        return SequentialRate(draw, n, f"the predicate over {tokens} sampled token(s) after {shown[-40:]!r}")

    def choose(self, prompt: Prompt, options: Sequence[str]) -> Choice:
        __tracebackhide__ = True
        _check_prompt(prompt)
        return self._seen(self.runtime.choose(prompt, options, self._asked))  # type: ignore[no-any-return]

    def score(self, text: Prompt) -> Scores:
        """Each token of ``text`` after the first, scored given the ones before it (one teacher-forced pass): its
        log-probability (``.logprobs``, ``.total``, ``.perplexity``) and each position's best candidates."""
        __tracebackhide__ = True
        _check_prompt(text)
        return self._seen(self.runtime.score(text))  # type: ignore[no-any-return]

    def invariance(
        self,
        capability: str,
        cases: Sequence[Change],
        labels: Sequence[str | int] | None = None,
        max_kl: float | None = None,
    ) -> Capability:
        """Each change judged for invariance (``changes.invariance``: the top-1 or label holds unless the base was a
        near tie, and the KL stays under ``max_kl``), all of them as one capability with a failure rate:
        ``assert cap.rate <= 0.1`` gives pass, fail or inconclusive, ``cap == lm_snapshot`` holds the rate to the
        recorded one. Every prompt is read in one batch."""
        __tracebackhide__ = True
        pairs = self._pairs(capability, cases, labels)
        judged = [changes.invariance(c, b, v, labels, max_kl, self.noise) for c, b, v in pairs]
        return self._judged(Capability(capability, changes.INVARIANT, tuple(judged)))

    def direction(
        self,
        capability: str,
        cases: Sequence[Change],
        token: str | int,
        up: bool = True,
        by: float = defaults.DIRECTION_BY,
        labels: Sequence[str | int] | None = None,
    ) -> Capability:
        """Each change judged for a directional expectation (``token``'s probability, renormalised over ``labels``
        when given, moves up or down by at least ``by``; raised to the dtype's noise floor where that is larger),
        all of them as one capability with a failure rate."""
        __tracebackhide__ = True
        if labels is not None and token not in labels:
            raise InputError(f"token={token!r} must be one of the labels {list(labels)!r}")
        if not isinstance(by, (int, float)) or isinstance(by, bool) or not 0 < by < 1:
            raise InputError(f"by={by!r} must be a probability between 0 and 1, e.g. {defaults.DIRECTION_BY}")
        pairs = self._pairs(capability, cases, labels)
        judged = [changes.direction(c, b, v, token, up, by, labels, self.noise) for c, b, v in pairs]
        expectation = f"{token!r} {'up' if up else 'down'} by {changes.direction_floor(by, self.noise)[0]:.3g}"
        return self._judged(Capability(capability, expectation, tuple(judged)))

    def _pairs(
        self, capability: str, cases: Sequence[Change], labels: Sequence[str | int] | None
    ) -> list[tuple[Change, Distribution, Distribution]]:
        __tracebackhide__ = True
        if not isinstance(capability, str) or not capability.strip():
            raise InputError(f"the capability needs a name, e.g. 'name invariance', not {capability!r}")
        if isinstance(cases, Change):
            cases = [cases]
        if not cases or not all(isinstance(c, Change) for c in cases):
            raise InputError(
                "cases must be a non-empty list of changes (perturbations.typo(text), swap(text, old, new), ...), "
                f"not {cases!r:.80}"
            )
        if labels is not None and (isinstance(labels, str) or len(labels) < 2):
            raise InputError(f"labels must be two or more token pieces, e.g. (' good', ' bad'), not {labels!r}")
        texts = list(dict.fromkeys(t for c in cases for t in (c.base, c.variant)))
        for text in texts:
            _check_prompt(text)
        # Read without reporting each distribution: the capability is the observation (a report of its hundreds of
        # readings would hold near ties that any other engine's noise flips, which the rate already judges).
        read = dict(zip(texts, self.runtime.next_tokens(texts, self._asked)))
        return [(c, read[c.base], read[c.variant]) for c in cases]

    def _judged(self, capability: Capability) -> Capability:
        if self.capabilities is not None:
            self.capabilities.append(capability)
        return self._seen(capability)  # type: ignore[no-any-return]

    def steps(self, generation: Generation) -> list[Distribution]:
        """The next-token distribution before each new token of ``generation`` (one forward pass)."""
        return self._seen(self.runtime.steps(generation))  # type: ignore[no-any-return]


def _in_process(runtime: Runtime, name: str) -> Any:
    __tracebackhide__ = True
    found = getattr(runtime.backend, name, None)
    if found is None:
        raise InputError(
            f"lm.{name} is the raw transformers object of an in-process model; the {runtime.backend.name} backend "
            "has none. Use the LM API (tokenize, next_token, generate, choose), which works on every backend"
        )
    return found
