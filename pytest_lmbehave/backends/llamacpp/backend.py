"""``LlamaCppBackend``: the protocol's verbs over one llama.cpp context.

llama.cpp computes a batch of 64 tokens or more by another matrix-multiply path than a smaller one (measured on the
embedded Q4_1: up to 1.84 apart in a logit). The context feeds it at most ``CHUNK`` tokens at a time, the way it
computes a generated token, so a position's numbers are the same however its row is read: in one pass, token by
token, or continued from a prefix already in the context (measured: bit-identical). Rows that share a beginning
(the few-shot prompts, a prompt and its options) reuse it, and a row's numbers never depend on the rows read before
it. The context keeps every position's logits (``logits_all``), so one pass gives a row's teacher-forced
distributions. A generation decodes token by token through the KV cache; a sampled row draws with llama.cpp's own
sampler chain, seeded by the row's seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ...config import environment
from ...config.facts import file_sha256
from ...config.settings import Settings
from ..protocol import ALTERNATIVES, Decoded, Drawn, Logprobs, ModelSource, limits
from ..sampling import Policy
from ..templates import no_template, refused
from ..vocabulary import Vocabulary, stored_at
from .numbers import log_softmax, step_figures
from .sampler import Sampler
from .tokens import Tokens

CONTEXT = 2048  # tokens a context holds: each keeps its logits, 2048 x vocab float32 (400 MB for SmolLM2)
CHUNK = 32  # tokens per decode call: below the 64 at which llama.cpp's other path begins (with a margin)
PROBE = "Shakespeare was a great writer, but he was also a great actor. When you visit Boston, make sure you visit"


def built_for(llama_cpp: Any, feature: str) -> bool:
    """Whether llama.cpp's system info says it was built with ``feature`` ("CPU : SSE3 = 1 | AVX2 = 1 | ...")."""
    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    enabled = {part.split("=")[0].strip() for part in info.split("|") if part.strip().endswith("= 1")}
    return feature in enabled or any(name.endswith(f" {feature}") for name in enabled)


def amx_kernels(llama_cpp: Any) -> bool:
    """Whether llama.cpp was built with its AMX kernels (which crash on a batched evaluation: ``AMX_CRASHES``)."""
    return built_for(llama_cpp, "AMX_INT8")


def cpu_features(llama_cpp: Any) -> str:
    """The widest SIMD level llama.cpp was built for here, from its system info (e.g. AVX512, AVX2)."""
    for level in ("AVX512", "AVX2", "AVX", "NEON", "SSE3"):
        if built_for(llama_cpp, level):
            return level
    return "baseline"


def vocabulary_key(fingerprint: dict[str, str]) -> dict[str, str]:
    """What a llama.cpp model's vocabulary table is stored by: its weights and llama.cpp's version."""
    return {
        "model_sha256": fingerprint["model_sha256"],
        "transformers": "llama.cpp tokenizer",
        "tokenizers": fingerprint["engine_version"],
    }


class LlamaCppBackend:
    name = "llama.cpp"
    decodes_each_draw = False  # its sampler chain runs over one evaluation's logits

    def __init__(self, source: ModelSource, settings: Settings, llama_cpp: Any) -> None:
        self.api = llama_cpp
        self.source = source
        self.cache_dir = settings.cache_dir
        self.llama = llama_cpp.Llama(
            model_path=str(source.path),
            n_ctx=CONTEXT,
            n_batch=CHUNK,
            n_ubatch=CHUNK,
            n_threads=settings.threads,
            n_threads_batch=settings.threads,
            logits_all=True,
            # Flash attention: a row's logits come out the same read in one pass or token by token (without it,
            # llama.cpp's two attention paths differ by up to 0.75 nats on SmolLM2, measured), so generation,
            # next-token questions and teacher forcing agree as the protocol promises.
            flash_attn=True,
            verbose=False,
        )
        self.tokens = Tokens(llama_cpp, self.llama.model)
        self.stop_ids = self.tokens.stop_ids()
        self.chunk = CHUNK if self._chunks_agree() else 1
        software, described = environment.software(), self.llama._model.desc()
        self._fingerprint = {
            "model": source.spec,
            "model_name": source.name,
            "model_sha256": file_sha256(source.path, settings.cache_dir)[:16],
            "engine": self.name,
            "engine_version": str(llama_cpp.__version__),
            "dtype": described.split()[-1] if described else "gguf",
            "device": "cpu",
            "threads": str(settings.threads),
            "batch": str(self.chunk),
            "lmbehave": software["lmbehave"],
            "decoding": software["decoding"],
            "cpu_capability": cpu_features(llama_cpp),
        }
        self._vocabulary: Vocabulary | None = None

    def _chunks_agree(self) -> bool:
        """Whether this file's weights come out the same read ``CHUNK`` tokens at a time and token by token. Some
        types (Q4_0 and Q5_0, which Q3_K_M falls back to on SmolLM2) take another kernel for any batch of more than
        one token (1.8 apart in a logit, measured); such a model is then read token by token, slower but the same
        however its rows are read."""
        ids = self.tokens.tokenize(PROBE, special=False)[: CHUNK - 1]
        self.llama.reset()
        self.llama.eval(ids)
        batched = self.llama.scores[: len(ids)].copy()
        self.llama.reset()
        for token in ids:
            self.llama.eval([token])
        agree = bool((self.llama.scores[: len(ids)] == batched).all())
        self.llama.reset()
        return agree

    @property
    def vocab_size(self) -> int:
        return self.tokens.size

    @property
    def context(self) -> int:
        return CONTEXT

    def fingerprint(self) -> dict[str, str]:
        return self._fingerprint

    # -- tokens -------------------------------------------------------------------------------------------------
    def tokenize(self, text: str, special: bool = True) -> list[int]:
        return self.tokens.tokenize(text, special)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokens.detokenize(ids)

    def chat(self, messages: Sequence[dict[str, str]]) -> tuple[str, list[int]]:
        """The GGUF's own template (``tokenizer.chat_template``), rendered by llama-cpp-python's Jinja formatter."""
        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise no_template(self.source.spec)
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        bos, eos = (self.detokenize([t]) if t >= 0 else "" for t in (self.llama.token_bos(), self.llama.token_eos()))
        try:
            turns: Any = list(messages)  # its own message types are TypedDicts of the same keys
            text = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)(messages=turns).prompt
        except Exception as error:  # the template's own raise_exception, or a jinja2 error in it
            raise refused(self.source.spec, error) from None
        return text, self.tokenize(text, special=False)

    def vocabulary(self) -> Vocabulary:
        if self._vocabulary is None:
            path, digest = stored_at(self.cache_dir, vocabulary_key(self._fingerprint))
            self._vocabulary = Vocabulary.load(path, digest)
            if self._vocabulary is None:
                self._vocabulary = self.tokens.vocabulary(digest)
                self._vocabulary.save(path)
        return self._vocabulary

    # -- passes -------------------------------------------------------------------------------------------------
    def _read(self, ids: Sequence[int]) -> Any:
        """The logits [len(ids), vocab] of one row (a view into the context's buffer, valid until the next pass):
        the part it shares with what the context holds is kept, the rest is read (its last token at least)."""
        if not ids:
            raise ValueError("an empty row has no next token")
        held = self.llama.input_ids[: self.llama.n_tokens]
        shared = 0
        for a, b in zip(held, ids):
            if int(a) != b:
                break
            shared += 1
        # The last token is always read again: the sampler draws from the context's last output, which must be it.
        self.llama.n_tokens = shared = min(shared, len(ids) - 1)  # eval drops the rest from the KV cache
        rest = list(ids[shared:])
        for start in range(0, len(rest), self.chunk):
            self.llama.eval(rest[start : start + self.chunk])
        return self.llama.scores[: len(ids)]

    def logits(self, ids: Sequence[int]) -> Any:
        return self._read(ids).copy()[None]

    def next_logprobs(self, rows: Sequence[Sequence[int]]) -> list[Logprobs]:
        return [Logprobs(log_softmax(self._read(row)[-1])) for row in rows]

    def forced_logprobs(
        self, rows: Sequence[tuple[Sequence[int], Sequence[int]]], generated: bool = False
    ) -> list[list[Logprobs]]:
        # ``generated`` changes nothing: llama.cpp applies no generation config of the model's to its logits.
        found = []
        for prompt, continuation in rows:
            scores = self._read([*prompt, *continuation][:-1])
            found.append([Logprobs(log_softmax(scores[len(prompt) - 1 + i])) for i in range(len(continuation))])
        return found

    def generate(
        self,
        rows: Sequence[Sequence[int]],
        steps: int | Sequence[int],
        policies: Sequence[Policy],
        drafts: Sequence[Sequence[int] | None] | None = None,
    ) -> list[Decoded]:
        """Each row alone. A row with a draft (its ids last time: the plan's, or a recorded set's) reads the prompt
        and the draft in one teacher-forced pass, ``CHUNK`` tokens at a time, and takes each step's token from it (the
        argmax, or the row's sampler chain applied to that position's logits: ``Sampler.draw_from``); only from the
        first step where that token is not the draft's does it decode token by token. The context reads a position's
        numbers bit for bit as decoding does (``_chunks_agree``), and the chain draws from a copy of them what it
        draws from the context, so the result is decoding's, byte for byte; a wrong draft costs only the pass."""
        drafts = list(drafts) if drafts is not None else [None] * len(rows)
        return [
            self._decode(row, limit, policy, draft)
            for row, limit, policy, draft in zip(rows, limits(steps, len(rows)), policies, drafts)
        ]

    def draws(self, ids: Sequence[int], policy: Policy, n: int) -> Drawn:
        """Its own sampler chain (``sampler.py``), seeded once, applied ``n`` times to the same last logits."""
        if policy.sampling is None:
            raise ValueError("draws need a sampled policy")
        sampler = Sampler(self.api, policy.sampling, policy.seed)
        try:
            numbers = Logprobs(log_softmax(self._read(ids)[-1]))
            return Drawn([sampler.draw(self.llama.ctx) for _ in range(n)], numbers, policy.sampling)
        finally:
            sampler.close()

    def _decode(self, row: Sequence[int], limit: int, policy: Policy, draft: Sequence[int] | None = None) -> Decoded:
        sampler = None if policy.sampling is None else Sampler(self.api, policy.sampling, policy.seed)
        ids: list[int] = []
        logprobs: list[float] = []
        margins: list[float] = []
        argmaxes: list[int] = []
        best: list[tuple[tuple[int, float], ...]] = []
        forced = list(draft or ())[: max(limit - 1, 0)]  # the last step's token needs no distribution after it
        try:
            self._read([*row, *forced])
            held = len(row) + len(forced)  # positions the context holds: the prompt, then the draft
            at = len(row) - 1  # the position whose logits give this step's distribution
            for step in range(limit):
                values = log_softmax(self.llama.scores[at])
                top, argmax = step_figures(values, ALTERNATIVES)
                token = argmax if sampler is None else sampler.draw_from(self.llama.scores[at])
                ids.append(token)
                logprobs.append(float(values[token]))
                margins.append(top[0][1] - top[1][1] if len(top) > 1 else math.inf)
                argmaxes.append(argmax)
                best.append(top)
                if token in self.stop_ids or step == limit - 1:
                    break
                at += 1
                if at < held and int(self.llama.input_ids[at]) == token:
                    continue  # the draft's token: its next distribution is read already
                self.llama.n_tokens = held = at  # the draft departs here: eval drops the rest from the KV cache
                self.llama.eval([token])
                held += 1
        finally:
            if sampler is not None:
                sampler.close()
        verified = next((i for i, (a, b) in enumerate(zip(ids, forced)) if a != b), min(len(ids), len(forced)))
        return Decoded(tuple(ids), tuple(logprobs), tuple(margins), tuple(argmaxes), tuple(best), verified)
