"""The small LM API that specs, fixtures, snapshots and the command line all use.

``Engine`` owns one loaded model and does the computing (with a per-process memo); ``LM`` is the handle a test
gets: the engine plus the test's decoding settings (greedy, or sampled with a seed).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, overload

from .errors import InputError
from .models import LoadedModel
from .observations import Choice, Distribution, Generation, Tokenization
from .store import ObservationStore

Prompt = str | Sequence[int]


@dataclass(frozen=True)
class Sampling:
    """Decoding settings of a sampled test; ``None`` means the knob is off (no top-k unless asked)."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        __tracebackhide__ = True
        if self.temperature is not None and not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise InputError(
                f"temperature={self.temperature!r} must be a number > 0; use greedy decoding for 'temperature 0'"
            )
        if self.top_p is not None and not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise InputError(
                f"top_p={self.top_p!r} must lie in (0, 1]; 0.9 keeps the smallest set of tokens holding 90% of the probability"
            )
        if self.top_k is not None and not (isinstance(self.top_k, int) and self.top_k >= 1):
            raise InputError(f"top_k={self.top_k!r} must be a whole number >= 1, or None for no top-k filter")
        if self.seed is not None and not (isinstance(self.seed, int) and self.seed >= 0):
            raise InputError(
                f"seed={self.seed!r} must be a whole number >= 0, or None to derive it from --lm-seed and the test id"
            )

    def describe(self) -> str:
        knobs = [
            f"{k}={v}"
            for k, v in (("temperature", self.temperature), ("top_p", self.top_p), ("top_k", self.top_k))
            if v is not None
        ]
        return "sampled(" + ", ".join(knobs) + ")"


def derive_seed(base: int, key: str) -> int:
    """A seed from a base seed and a stable key (a node id): independent of test order and worker."""
    return (base + zlib.crc32(key.encode("utf-8"))) % (2**32)


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


def _is_batch(prompt: Any) -> bool:
    return isinstance(prompt, (list, tuple)) and bool(prompt) and not isinstance(prompt[0], int)


class Engine:
    """Computes observations for one loaded model; results are memoised per process."""

    def __init__(self, loaded: LoadedModel, store: ObservationStore | None = None) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.store = store
        self.context = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)
        self._memo: dict[tuple[Any, ...], Any] = {}
        self.stats = {"computed": 0, "reused": 0, "from_disk": 0}

    # -- work done once: per process in memory, across runs on disk (--lm-cache) ------------------------------
    def _recall(self, key: tuple[Any, ...]) -> Any | None:
        if key in self._memo:
            self.stats["reused"] += 1
            return self._memo[key]
        if self.store is not None:
            frozen = self.store.get(key)
            if frozen is not None:
                self.stats["from_disk"] += 1
                self._memo[key] = self._revive(frozen)
                return self._memo[key]
        return None

    def _keep(self, key: tuple[Any, ...], value: Any) -> Any:
        self.stats["computed"] += 1
        self._memo[key] = value
        if self.store is not None:
            self.store.put(key, self._freeze(value))
        return value

    def _freeze(self, value: Any) -> Any:
        """A picklable copy: distributions lose their tokenizer callbacks, generations their engine."""
        if isinstance(value, Distribution):
            return ("distribution", value.prompt, value.logprobs)
        if isinstance(value, Generation):
            return replace(value, engine=None)
        if isinstance(value, (list, tuple)):
            return type(value)(self._freeze(v) for v in value)
        return value

    def _revive(self, value: Any) -> Any:
        if isinstance(value, tuple) and value and value[0] == "distribution":
            return Distribution(value[1], value[2], self.decode, self.piece_id)
        if isinstance(value, Generation):
            return replace(value, engine=self)
        if isinstance(value, (list, tuple)):
            return type(value)(self._revive(v) for v in value)
        return value

    def forget(self) -> None:
        """Drop memoised results, so the next request is computed afresh (e.g. to compare batched and single runs)."""
        self._memo.clear()

    def fresh(self) -> Engine:
        """An engine on the same loaded model with nothing remembered: to show a result does not come from a memo."""
        return Engine(self.loaded)

    # -- tokens -----------------------------------------------------------------------------------------------
    def encode(self, text: str, special: bool = True) -> list[int]:
        """Ids as the tokenizer gives them (with a BOS where the model's tokenizer adds one); pieces go without."""
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def decode(self, ids: Sequence[int] | int) -> str:
        if isinstance(ids, int):
            ids = [ids]
        return str(self.tokenizer.decode(list(ids)))

    def piece_id(self, piece: str) -> int:
        __tracebackhide__ = True
        ids = self.encode(piece, special=False)
        if len(ids) != 1 or self.decode(ids[0]) != piece:
            pieces = [self.decode(i) for i in ids]
            raise InputError(
                f"{piece!r} is not a single token (it tokenizes as {pieces}); ask about one token piece, e.g. {pieces[0]!r}"
                if pieces
                else f"{piece!r} is empty; name a token piece"
            )
        return ids[0]

    def tokenize(self, text: str) -> Tokenization:
        __tracebackhide__ = True
        if not isinstance(text, str):
            raise InputError(f"tokenize() takes a string, not {type(text).__name__}")
        ids = self.encode(text)
        return Tokenization(text, tuple(ids), tuple(self.decode(i) for i in ids))

    def _ids(self, prompt: Prompt, extra: int = 0) -> list[int]:
        __tracebackhide__ = True
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        if self.context and len(ids) + extra > self.context:
            raise InputError(
                f"the prompt has {len(ids)} tokens"
                + (f" and asks for {extra} new ones" if extra else "")
                + f", more than the model's context of {self.context} tokens; shorten the prompt"
                + (" or lower max_new_tokens" if extra else "")
            )
        return ids

    # -- forward pass -----------------------------------------------------------------------------------------
    def logits(self, prompt: Prompt) -> Any:
        import torch

        ids = self._ids(prompt)
        with torch.no_grad():
            out = self.model(torch.tensor([ids], device=self.model.device))
        return out.logits.float().cpu()

    def next_tokens(self, prompts: list[Prompt]) -> list[Distribution]:
        # One forward pass per prompt, never a padded batch: a prompt's numbers then do not depend on which
        # prompts it was asked with, so results are the same in any test order and on any xdist worker.
        import torch

        results = []
        for prompt in prompts:
            key = ("next", prompt if isinstance(prompt, str) else tuple(prompt))
            found = self._recall(key)
            if found is None:
                row = torch.log_softmax(self.logits(prompt)[0, -1], dim=-1)
                text = prompt if isinstance(prompt, str) else self.decode(list(prompt))
                found = self._keep(key, Distribution(text, row, self.decode, self.piece_id))
            results.append(found)
        return results

    def steps(self, generation: Generation) -> list[Distribution]:
        """The model's next-token distribution before each new token of a generation, from one forward pass."""
        import torch

        ids = list(generation.prompt_ids) + list(generation.ids[:-1])
        start = len(generation.prompt_ids) - 1
        rows = torch.log_softmax(self.logits(ids)[0, start:], dim=-1)
        return [
            Distribution(self.decode(ids[: start + 1 + i]), row, self.decode, self.piece_id)
            for i, row in enumerate(rows)
        ]

    def _pad(self, rows: list[list[int]]) -> dict[str, Any]:
        import torch

        width = max(len(r) for r in rows)
        pad = int(self.tokenizer.pad_token_id)
        ids = [[pad] * (width - len(r)) + r for r in rows]
        mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
        device = self.model.device
        return {"input_ids": torch.tensor(ids, device=device), "attention_mask": torch.tensor(mask, device=device)}

    # -- generation -------------------------------------------------------------------------------------------
    def generate(
        self, prompts: list[Prompt], max_new_tokens: int, sampling: Sampling | None, seed: int | None
    ) -> list[Generation]:
        __tracebackhide__ = True
        if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
            raise InputError(f"max_new_tokens={max_new_tokens!r} must be a whole number >= 1")
        id_rows = [self._ids(p, max_new_tokens) for p in prompts]
        if sampling is not None:
            key = ("sample", tuple(tuple(r) for r in id_rows), max_new_tokens, sampling, seed)
            found = self._recall(key)
            if found is None:
                found = self._keep(key, self._run(prompts, id_rows, max_new_tokens, sampling, seed))
            return list(found)
        results: list[Generation | None] = [self._greedy_memo(p, r, max_new_tokens) for p, r in zip(prompts, id_rows)]
        todo = [i for i, g in enumerate(results) if g is None]
        if todo:
            fresh = self._run([prompts[i] for i in todo], [id_rows[i] for i in todo], max_new_tokens, None, None)
            for i, generation in zip(todo, fresh):
                self._keep(("greedy", tuple(id_rows[i])), (generation, max_new_tokens))
                results[i] = generation
        return [g for g in results if g is not None]

    def _greedy_memo(self, prompt: Prompt, ids: list[int], n: int) -> Generation | None:
        """A greedy result is a prefix of any longer greedy run of the same prompt."""
        cached = self._recall(("greedy", tuple(ids)))
        if cached is None:
            return None
        generation, asked = cached
        if n > asked and len(generation.ids) == asked:  # the cached run stopped at its limit, not at EOS
            return None
        return self._truncate(generation, n)

    def _truncate(self, generation: Generation, n: int) -> Generation:
        if n >= len(generation.ids):
            return generation
        ids = generation.ids[:n]
        return replace(
            generation,
            ids=ids,
            text=self.decode(ids),
            full_text=self.decode(generation.prompt_ids + ids),
            pieces=generation.pieces[:n],
            logprobs=generation.logprobs[:n],
            margins=generation.margins[:n],
            argmax_ids=generation.argmax_ids[:n],
        )

    def _run(
        self, prompts: list[Prompt], id_rows: list[list[int]], n: int, sampling: Sampling | None, seed: int | None
    ) -> list[Generation]:
        import torch

        batch = self._pad(id_rows)
        eos = self.tokenizer.eos_token_id
        options: dict[str, Any] = {
            "max_new_tokens": n,
            "pad_token_id": self.tokenizer.pad_token_id,
            "return_dict_in_generate": True,
            "output_logits": True,
        }
        if sampling is None:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            options.update(
                do_sample=True,
                temperature=sampling.temperature if sampling.temperature is not None else 1.0,
                top_p=sampling.top_p if sampling.top_p is not None else 1.0,
                top_k=sampling.top_k if sampling.top_k is not None else 0,
            )
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            if seed is not None:
                torch.manual_seed(seed)
            out = self.model.generate(**batch, **options)
        width = batch["input_ids"].shape[1]
        steps = torch.log_softmax(torch.stack(out.logits, dim=1).float(), dim=-1).cpu()  # [B, steps, V]
        results = []
        for row, prompt in enumerate(prompts):
            new = out.sequences[row, width:].tolist()
            if eos in new:  # a batch pads finished rows; an unbatched run stops at EOS
                new = new[: new.index(eos) + 1]
            logprobs = steps[row, : len(new)]
            top2 = torch.topk(logprobs, 2, dim=-1).values
            prompt_ids = tuple(id_rows[row])
            results.append(
                Generation(
                    prompt=prompt if isinstance(prompt, str) else self.decode(list(prompt)),
                    text=self.decode(new),
                    ids=tuple(new),
                    full_text=self.decode(list(prompt_ids) + new),
                    prompt_ids=prompt_ids,
                    pieces=tuple(self.decode(i) for i in new),
                    logprobs=tuple(float(logprobs[i, t]) for i, t in enumerate(new)),
                    margins=tuple(float(a - b) for a, b in top2.tolist()),
                    argmax_ids=tuple(int(i) for i in logprobs.argmax(dim=-1).tolist()),
                    sampling="greedy" if sampling is None else sampling.describe(),
                    seed=seed,
                    engine=self,
                )
            )
        return results

    # -- scoring ----------------------------------------------------------------------------------------------
    def choose(self, prompt: str, options: Sequence[str]) -> Choice:
        __tracebackhide__ = True
        import torch

        _check_prompt(prompt)
        if isinstance(options, str) or len(options) < 2 or not all(isinstance(o, str) and o for o in options):
            raise InputError(
                f"options={options!r} must be a list of at least two non-empty strings, e.g. [' good', ' bad']"
            )
        key = ("choose", prompt, tuple(options))
        found = self._recall(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        continuations = [self.encode(option, special=False) for option in options]

        if all(len(c) == 1 for c in continuations):
            # One-token options: their scores are read off the prompt's next-token distribution.
            dist = self.next_tokens([self._ids(prompt)])[0]
            return self._keep(key, Choice(prompt, tuple(options), tuple(dist.logprob(c[0]) for c in continuations)))  # type: ignore[no-any-return]
        context = self._ids(prompt)
        scores = []
        for continuation in continuations:
            logprobs = torch.log_softmax(self.logits(context + continuation)[0, len(context) - 1 : -1], dim=-1)
            scores.append(float(sum(logprobs[i, t] for i, t in enumerate(continuation))))
        return self._keep(key, Choice(prompt, tuple(options), tuple(scores)))  # type: ignore[no-any-return]


class LM:
    """A test's handle on a model: greedy unless the test is marked sampled; see ``with_sampling``."""

    def __init__(
        self,
        engine: Engine,
        sampling: Sampling | None = None,
        seed: int | None = None,
        recorder: Callable[[Any], None] | None = None,
    ) -> None:
        self.engine = engine
        self.sampling = sampling
        self.seed = seed if sampling is None or sampling.seed is None else sampling.seed
        self.recorder = recorder  # told of every observation (for --lm-report)
        self._calls = 0

    def _seen(self, observation: Any) -> Any:
        if self.recorder is not None:
            for item in observation if isinstance(observation, list) else [observation]:
                self.recorder(item)
        return observation

    @property
    def model(self) -> Any:
        return self.engine.model

    @property
    def tokenizer(self) -> Any:
        return self.engine.tokenizer

    @property
    def fingerprint(self) -> dict[str, str]:
        return self.engine.loaded.fingerprint

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
        return LM(self.engine, Sampling(temperature, top_p, top_k, seed), base, self.recorder)

    def greedy(self) -> LM:
        return LM(self.engine, None, self.seed, self.recorder)

    def tokenize(self, text: str) -> Tokenization:
        __tracebackhide__ = True
        return self._seen(self.engine.tokenize(text))  # type: ignore[no-any-return]

    def decode(self, ids: Sequence[int] | int) -> str:
        return self.engine.decode(ids)

    def logits(self, prompt: Prompt) -> Any:
        __tracebackhide__ = True
        _check_prompt(prompt)
        return self.engine.logits(prompt)

    @overload
    def next_token(self, prompt: str) -> Distribution: ...
    @overload
    def next_token(self, prompt: list[str]) -> list[Distribution]: ...
    def next_token(self, prompt: Any) -> Any:
        __tracebackhide__ = True
        if _is_batch(prompt):
            return self._seen(self.engine.next_tokens(_check_batch(prompt)))
        _check_prompt(prompt)
        return self._seen(self.engine.next_tokens([prompt])[0])

    @overload
    def generate(self, prompt: str, max_new_tokens: int = 20) -> Generation: ...
    @overload
    def generate(self, prompt: list[str], max_new_tokens: int = 20) -> list[Generation]: ...
    def generate(self, prompt: Any, max_new_tokens: int = 20) -> Any:
        """Greedy, or sampled under this handle's seed; each sampled call gets the next seed in a fixed sequence."""
        __tracebackhide__ = True
        batch = _is_batch(prompt)
        prompts = _check_batch(prompt) if batch else [prompt]
        if not batch:
            _check_prompt(prompt)
        seed = None
        if self.sampling is not None:
            seed = derive_seed(self.seed or 0, f"call-{self._calls}")
            self._calls += 1
        results = self.engine.generate(prompts, max_new_tokens, self.sampling, seed)
        return self._seen(results if batch else results[0])

    def choose(self, prompt: str, options: Sequence[str]) -> Choice:
        __tracebackhide__ = True
        return self._seen(self.engine.choose(prompt, options))  # type: ignore[no-any-return]

    def steps(self, generation: Generation) -> list[Distribution]:
        """The next-token distribution before each new token of ``generation`` (one forward pass)."""
        return self._seen(self.engine.steps(generation))  # type: ignore[no-any-return]
