"""``ServedBackend``: a model served over the OpenAI-compatible completions API (vLLM, SGLang, llama.cpp's server).

Each verb is a completions request with prompts as token ids: next-token distributions from ``max_tokens=1,
logprobs=k``; teacher forcing from ``prompt_logprobs`` (vLLM) or ``echo``; generation greedy (``temperature=0``) or
seeded. A list of prompts is one request; requests run a few at a time. A served model reports only its top
candidates (its ``max_logprobs``): a question beyond them says so, and raw logits are not available at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ...config.errors import BackendUnavailable
from ..protocol import ALTERNATIVES, Decoded, Drawn, Logprobs, limits
from ..sampling import LLAMA_CPP_ORDER, Policy, Sampling, derive_seed
from ..templates import Messages, Rendered
from ..vocabulary import Vocabulary
from .capabilities import Capabilities
from .http import Client, ServerRefused

CONCURRENT = 4  # requests in flight at once: enough to keep a server's batcher busy, few enough to be polite
ROWS = 32  # prompts per request
DRAWS = 250  # choices per request, where a server takes n (vLLM): a few requests for 2,000 draws


def _value(found: Any) -> float:
    return float(found["logprob"] if isinstance(found, dict) else found)


def _entries(found: Any, named: Callable[[str], int | None] | None = None) -> dict[int, float]:
    """A position's reported candidates, {id: log-probability}, from either shape vLLM answers in, or keyed by their
    text (llama-cpp-python), read back through ``named``: a text that names no single id is left out."""
    out: dict[int, float] = {}
    for key, value in (found or {}).items():
        token = int(str(key).removeprefix("token_id:")) if named is None else named(str(key))
        if token is not None:
            out[token] = _value(value)
    return out


class ServedBackend:
    def __init__(
        self,
        client: Client,
        capabilities: Capabilities,
        fingerprint: dict[str, str],
        vocabulary: Vocabulary,
        tokenize: Callable[[str, bool], list[int]],
        detokenize: Callable[[Sequence[int]], str],
        render: Callable[[Messages], Rendered] | None = None,
    ) -> None:
        self.client = client
        self.capabilities = capabilities
        self.name = capabilities.engine
        self._fingerprint = fingerprint
        self._vocabulary = vocabulary
        self._tokenize = tokenize
        self._detokenize = detokenize
        self._render = render  # the chat template: the server's own, or the local copy's
        self.known = min(capabilities.max_logprobs, 20)
        self.rows = ROWS if capabilities.id_prompts else 1  # prompts per request
        self.named = None if capabilities.token_ids else vocabulary.ids.get  # tokens named by their text
        # No top-k filter: -1 for vLLM and SGLang; llama-cpp-python refuses -1 (HTTP 500) and reads 0 as none.
        self.no_top_k = 0 if capabilities.engine == "llama-cpp-python" else -1
        self.takes_n = capabilities.engine == "vllm"  # several choices per request (llama-cpp-python: one)
        self.decodes_each_draw = True  # vLLM's n fans out into one sequence per choice (about 30 a second here)

    @property
    def vocab_size(self) -> int:
        return self._vocabulary.size

    @property
    def context(self) -> int:
        return self.capabilities.context

    def fingerprint(self) -> dict[str, str]:
        return self._fingerprint

    def vocabulary(self) -> Vocabulary:
        return self._vocabulary

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        return self._tokenize(text, special)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._detokenize(ids)

    def chat(self, messages: Messages) -> Rendered:
        if self._render is None:
            raise BackendUnavailable(
                f"lm.chat() needs the model's chat template, and {self.name} at {self.client.url} cannot render one "
                "(no /tokenize with messages) nor is its model one this machine has; serve it with vLLM, or pass "
                "--lm-server URL#NAME with NAME a local copy of the served weights"
            )
        return self._render(messages)

    def logits(self, ids: Sequence[int]) -> Any:
        raise BackendUnavailable(
            f"lm.logits() needs the raw logits, and a served model ({self.name} at {self.client.url}) has none: "
            f"the completions API reports the log-probabilities of its top {self.known} candidates only"
        )

    def draws(self, ids: Sequence[int], policy: Policy, n: int) -> Drawn:
        """``n`` one-token completions under the asked settings: one request with ``n`` choices where the server
        takes ``n`` (vLLM), else one seeded request each (llama-cpp-python). They are held to the untempered top
        ``top_k`` log-probabilities of a greedy request, which is all a top-k sampler can draw from; without a
        top-k the whole distribution would be needed, which no completions API reports."""
        sampling = policy.sampling
        if sampling is None:
            raise ValueError("draws need a sampled policy")
        if sampling.top_k is None:
            raise BackendUnavailable(
                f"lm.draws() on a served model ({self.name} at {self.client.url}) is held to the candidates a top-k "
                "sampler draws from, and without top_k that is the whole vocabulary, which the completions API does "
                f"not report (its top {self.known} at most): ask with top_k, e.g. @sampled(top_k=50)"
            )
        self._check_temperature(policy)
        try:
            [numbers] = self.next_logprobs([ids], sampling.top_k)
        except ServerRefused as error:
            raise BackendUnavailable(
                f"draws under top_k={sampling.top_k} are held to the top {sampling.top_k} log-probabilities, and the "
                f"server at {self.client.url} refused them ({error})"
                + (f": start vLLM with --max-logprobs {sampling.top_k}" if self.name == "vllm" else "")
            ) from error
        seeds = [derive_seed(policy.seed or 0, f"draw-{i}") for i in range(0, n, DRAWS if self.takes_n else 1)]
        counts = [min(DRAWS, n - i) for i in range(0, n, DRAWS)] if self.takes_n else [1] * n
        # A server that names tokens by id says which in its log-probabilities; one that names them by text says it
        # in the completion's text as well, and asking it for log-probabilities costs far more than the draw
        # (llama-cpp-python: 70 ms a request against 2 ms, over its whole score table; the tokens named the same).
        named_by_id = self.named is None
        body = {
            "prompt": list(ids),
            "max_tokens": 1,
            **self._sampled(sampling),
            **({"logprobs": 1} if named_by_id else {}),
        }
        answers = self._many("draws", [{**body, "seed": seed, "n": count} for seed, count in zip(seeds, counts)])
        tokens = [
            self._id_of(str(choice["logprobs"]["tokens"][0] if named_by_id else choice["text"]))
            for answer in answers
            for choice in answer
        ]
        order = LLAMA_CPP_ORDER if self.name == "llama-cpp-python" else None
        return Drawn(tokens, numbers, sampling, order)

    # -- requests ---------------------------------------------------------------------------------------------
    def _many(self, what: str, bodies: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Several completions requests, a few at a time, each answer in its request's order."""
        model = self.capabilities.model
        ids: dict[str, Any] = {"return_tokens_as_token_ids": True} if self.capabilities.token_ids else {}
        if self.capabilities.engine == "llama-cpp-python":  # its defaults would bend every distribution it samples
            ids = {**ids, "repeat_penalty": 1.0, "min_p": 0.0}
        send = [{"model": model, **ids, **body, "prompt": self._prompt(body["prompt"])} for body in bodies]
        if len(send) == 1:
            return [self.client.complete(what, **send[0])]
        with ThreadPoolExecutor(CONCURRENT) as pool:
            return list(pool.map(lambda body: self.client.complete(what, **body), send))

    def _prompt(self, prompt: Any) -> Any:
        """Token ids, or (for a server that reads text only) the one row's text, when it reads back as its ids."""
        if self.capabilities.id_prompts:
            return prompt
        [row] = prompt if prompt and isinstance(prompt[0], list) else [prompt]
        text = self._detokenize(row)
        if self._tokenize(text, True) != list(row):
            raise BackendUnavailable(
                f"the server at {self.client.url} reads prompts as text, and these {len(row)} ids do not read back "
                f"from their text {text[:60]!r}: the question cannot be asked exactly"
            )
        return text

    def _id_of(self, text: str) -> int:
        token = self.named(text) if self.named is not None else int(text.removeprefix("token_id:"))
        if token is None:
            raise BackendUnavailable(
                f"the server at {self.client.url} named a generated token by its text {text!r}, which names no single "
                "id of the model's vocabulary (a part of a character, or a text several ids share)"
            )
        return token

    def _numbers(self, found: dict[int, float], ranks: dict[int, int] | None = None, known: int = 0) -> Logprobs:
        import numpy

        values = numpy.full(self.vocab_size, -math.inf, dtype=numpy.float32)
        for token, value in found.items():
            if 0 <= token < self.vocab_size:
                values[token] = value
        values.flags.writeable = False
        return Logprobs(values, known=min(known or self.known, len(found)), ranks=ranks or {})

    def next_logprobs(self, rows: Sequence[Sequence[int]], count: int | None = None) -> list[Logprobs]:
        """Each row's top ``count`` candidates (the backend's ``known`` unless asked for more: draws under top-k)."""
        count = count or self.known
        chunks = [list(rows[i : i + self.rows]) for i in range(0, len(rows), self.rows)]
        bodies = [
            {"prompt": [list(r) for r in chunk], "max_tokens": 1, "temperature": 0, "logprobs": count}
            for chunk in chunks
        ]
        # Each answer comes in its own request's order (Client.complete); their indices restart in every request.
        answers = [choice for answer in self._many("next-token log-probabilities", bodies) for choice in answer]
        return [
            self._numbers(_entries(choice["logprobs"]["top_logprobs"][0], self.named), known=max(count, self.known))
            for choice in answers
        ]

    def forced_logprobs(
        self, rows: Sequence[tuple[Sequence[int], Sequence[int]]], generated: bool = False
    ) -> list[list[Logprobs]]:
        # ``generated`` changes nothing here: a server applies its own generation defaults, which it does not show.
        teacher = self.capabilities.teacher
        if teacher is None:
            raise BackendUnavailable(
                f"the server at {self.client.url} reports no log-probabilities of a given text (no prompt_logprobs, "
                "and echo with logprobs is ignored): choose() with multi-token options, steps() and teacher "
                "forcing are not available on it"
            )
        read = [list(p) + list(c) for p, c in rows]
        body: dict[str, Any] = {"max_tokens": 1, "temperature": 0, "logprobs": 1}
        if teacher == "prompt_logprobs":
            body["prompt_logprobs"] = self.known
        else:
            body.update(echo=True, logprobs=self.known)
        answers = self._many("teacher forcing", [{**body, "prompt": sequence} for sequence in read])
        results = []
        for (prompt, continuation), [choice] in zip(rows, answers):
            if teacher == "prompt_logprobs":
                positions = choice["prompt_logprobs"][len(prompt) : len(prompt) + len(continuation)]
                found = [_entries(p, self.named) for p in positions]
                ranks = [{int(k): int(v["rank"]) for k, v in p.items() if "rank" in v} for p in positions]
            else:
                logprobs = choice["logprobs"]
                tops = logprobs["top_logprobs"][len(prompt) : len(prompt) + len(continuation)]
                actual = logprobs["token_logprobs"][len(prompt) : len(prompt) + len(continuation)]
                found = [
                    {**_entries(t, self.named), token: float(v)} for t, token, v in zip(tops, continuation, actual)
                ]
                ranks = [{} for _ in continuation]
            results.append([self._numbers(f, r) for f, r in zip(found, ranks)])
        return results

    def generate(
        self,
        rows: Sequence[Sequence[int]],
        steps: int | Sequence[int],
        policies: Sequence[Policy],
        drafts: Sequence[Sequence[int] | None] | None = None,
    ) -> list[Decoded]:
        """Greedy rows of one length go as one request; each sampled row alone, with its own seed (a request's
        seed is shared by its prompts). The server decodes; drafts are not needed."""
        for policy in policies:
            self._check_temperature(policy)
        each = limits(steps, len(rows))
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, policy in enumerate(policies):
            key = ("greedy", each[i], i // self.rows) if policy.greedy else ("sampled", i)
            groups.setdefault(key, []).append(i)
        bodies = [
            self._body([rows[i] for i in members], each[members[0]], policies[members[0]])
            for members in groups.values()
        ]
        results: list[Decoded | None] = [None] * len(rows)
        for members, answer in zip(groups.values(), self._many("generation", bodies)):
            for i, choice in zip(members, answer):
                results[i] = self._decoded(choice)
        return [r for r in results if r is not None]

    def _check_temperature(self, policy: Policy) -> None:
        hottest = self.capabilities.max_temperature
        if hottest is not None and policy.sampling is not None and (policy.sampling.temperature or 1) > hottest:
            raise BackendUnavailable(
                f"temperature={policy.sampling.temperature:g}: the server at {self.client.url} samples at "
                f"temperatures up to {hottest:g} only (its probe was refused above that)"
            )

    def _sampled(self, sampling: Sampling) -> dict[str, Any]:
        """The request fields of a sampled completion (every knob sent, so no server default stands in)."""
        return {
            "temperature": 1.0 if sampling.temperature is None else sampling.temperature,
            "top_p": 1.0 if sampling.top_p is None else sampling.top_p,
            "top_k": self.no_top_k if sampling.top_k is None else sampling.top_k,
        }

    def _body(self, rows: list[Sequence[int]], steps: int, policy: Policy) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": [list(r) for r in rows],
            "max_tokens": steps,
            "logprobs": min(ALTERNATIVES, self.known),
        }
        if policy.sampling is None:
            return {**body, "temperature": 0}
        return {**body, **self._sampled(policy.sampling), "seed": policy.seed}

    def _decoded(self, choice: dict[str, Any]) -> Decoded:
        logprobs = choice["logprobs"]
        ids = [self._id_of(str(t)) for t in logprobs["tokens"]]
        steps, margins = [], []
        for entries in logprobs["top_logprobs"]:
            best = sorted(_entries(entries, self.named).items(), key=lambda kv: (-kv[1], kv[0]))
            steps.append(tuple(best[:ALTERNATIVES]))
            # From every reported value, named or not: a runner-up whose text names no single id still sets it.
            values = sorted((_value(v) for v in (entries or {}).values()), reverse=True)
            margins.append(values[0] - values[1] if len(values) > 1 else math.inf)
        return Decoded(
            ids=tuple(ids),
            logprobs=tuple(float(v) for v in logprobs["token_logprobs"]),
            margins=tuple(margins),
            argmax_ids=tuple(best[0][0] for best in steps),
            alternatives=tuple(steps),
        )
