"""The small LM API that specs, fixtures, snapshots and the command line all use.

``Engine`` owns one loaded model and does the computing (with a per-process memo); ``LM`` is the handle a test
gets: the engine plus the test's decoding settings (greedy, or sampled with a seed).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, overload

from . import plan
from .decoding import Policy, RowPicker
from .errors import InputError, LMBehaveError
from .models import LoadedModel
from .observations import Choice, Distribution, Generation, Tokenization
from .store import ObservationStore, SharedBatches
from .verdict import StepCheck

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

    @property
    def knobs(self) -> plan.Knobs:
        """The settings that decide the draws (the seed is kept per row): temperature, top_p, top_k."""
        return (self.temperature, self.top_p, self.top_k)

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


def row_seed(seed: int, row: int) -> int:
    """Row 0 of a sampled call takes the call's seed, so a batch's first row equals the same prompt asked alone."""
    return seed if row == 0 else derive_seed(seed, f"row-{row}")


def stop_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """The ids generate stops a row at: the generation config's EOS (one id or several). transformers 4.57's GGUF
    tokenizer names another EOS (id 1) than the model's generation config (id 2); generate follows the config."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    return frozenset(configured if isinstance(configured, (list, tuple)) else [configured]) - {None}


def _cache_argument_of(model: Any) -> str:
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _cache_of(out: Any) -> Any:
    """The KV cache a forward pass returned, under either name transformers has given it."""
    return getattr(out, "cache", None) or out.past_key_values


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

    def __init__(
        self,
        loaded: LoadedModel,
        store: ObservationStore | None = None,
        shared: SharedBatches | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.loaded = loaded
        self.announce = announce
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.store = store
        self.shared = shared  # under xdist: batches computed by one worker, read by the others
        self.context = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)
        self.vocabulary = int(self.model.config.vocab_size)
        self.stop_ids = stop_ids(self.model, self.tokenizer)
        self._read_disk = True  # forget() turns reading --lm-cache off: what is asked next is computed afresh
        self._cache_name = _cache_argument_of(self.model)
        self._memo: dict[tuple[Any, ...], Any] = {}
        self._groups: list[plan.Group] = []
        self._planned: dict[tuple[Any, ...], tuple[int, int]] = {}  # request key -> (group, steps it runs)
        self._settled: set[int] = set()
        self.stats = {"computed": 0, "reused": 0, "from_disk": 0, "shared": 0}

    # -- work done once: per process in memory, across runs on disk (--lm-cache) ------------------------------
    def _recall(self, key: tuple[Any, ...]) -> Any | None:
        if key in self._memo:
            self.stats["reused"] += 1
            return self._memo[key]
        if self.store is not None and self._read_disk:
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
            return ("distribution", value.prompt, value.logprobs, value.prompt_ids)
        if isinstance(value, Generation):
            return replace(value, engine=None)
        if isinstance(value, (list, tuple)):
            return type(value)(self._freeze(v) for v in value)
        return value

    def _revive(self, value: Any) -> Any:
        if isinstance(value, tuple) and value and value[0] == "distribution":
            return Distribution(
                value[1], value[2], self.decode, self.piece_id, tuple(value[3]) if len(value) > 3 else ()
            )
        if isinstance(value, Generation):
            return replace(value, engine=self)
        if isinstance(value, (list, tuple)):
            return type(value)(self._revive(v) for v in value)
        return value

    # -- the request plan: fixed batches, computed when first needed (or up front, shared among workers) ---------
    def use_plan(self, asks: Iterable[plan.Ask]) -> None:
        """Batch these requests (the plan's, for the tests this run collected) into fixed groups."""
        rows, dropped = [], []
        for ask in asks:
            try:
                ids = tuple(self._ids(ask.prompt, ask.n if ask.kind == "gen" else 0))
            except LMBehaveError as error:
                dropped.append(f"{ask.prompt!r:.40}: {str(error).splitlines()[0]}")
                continue  # a request the model cannot take is left to its test to report
            rows.append(plan.Row(ask.kind, ids, ask.n, ask.knobs, ask.seed))
        if dropped and self.announce is not None:
            self.announce(
                f"pytest-lmbehave: {len(dropped)} request(s) of the plan dropped, the model cannot take them "
                f"(first: {dropped[0]}); rewrite the plan with --lm-plan-update"
            )
        self._groups = plan.groups(rows)
        self._planned = {}
        self._settled = set()
        for index, group in enumerate(self._groups):
            for row in group.rows:
                self._planned[row.key] = (index, group.steps)

    def prefetch(self, batches: int | None = None) -> int:
        """Compute up to ``batches`` of the plan's batches now (all when None), costliest first, skipping any that
        another worker holds or has written. Workers that each take one before every test share the batches out
        by how busy they are. Returns how many this call computed."""
        computed = 0
        for index in sorted(range(len(self._groups)), key=lambda i: (-self._groups[i].cost, i)):
            if batches is not None and computed >= batches:
                break
            if index not in self._settled and self._settle(index, wait=False) == "computed":
                computed += 1
        return computed

    def _from_plan(self, key: tuple[Any, ...], n: int) -> bool:
        found = self._planned.get(key)
        if found is None or found[1] < n or found[0] in self._settled:
            return False
        self._settle(found[0], wait=True)
        return True

    def _settle(self, index: int, wait: bool) -> str:
        """Make a batch's results known here: 'remembered', 'computed', 'read' (another worker's) or 'busy'."""
        group = self._groups[index]
        if all(self._recall(row.key) is not None for row in group.rows):
            self._settled.add(index)  # every row is remembered already (e.g. read from --lm-cache)
            return "remembered"
        if self.shared is None:
            self._keep_group(group, self._compute_group(group))
            self._settled.add(index)
            return "computed"
        import hashlib

        from filelock import Timeout

        name = hashlib.sha256(repr(group).encode("utf-8")).hexdigest()[:32]
        lock = self.shared.lock(name)
        try:
            lock.acquire(timeout=-1 if wait else 0)
        except Timeout:
            return "busy"  # another worker is computing it; a test that needs it will wait then
        try:
            frozen = self.shared.get(name)
            if frozen is not None:
                self.stats["shared"] += len(group.rows)
                self._keep_group(group, self._revive(frozen), computed=False)
                outcome = "read"
            else:
                values = self._compute_group(group)
                self.shared.put(name, self._freeze(values))
                self._keep_group(group, values)
                outcome = "computed"
        finally:
            lock.release()
        self._settled.add(index)
        return outcome

    def _compute_group(self, group: plan.Group) -> list[Any]:
        if group.kind == "next":
            return self._distributions([row.ids for row in group.rows])
        policies = [Policy(None if r.knobs is None else Sampling(*r.knobs), r.seed) for r in group.rows]
        return [(g, group.steps) for g in self._decode([list(r.ids) for r in group.rows], group.steps, policies)]

    def _keep_group(self, group: plan.Group, values: list[Any], computed: bool = True) -> None:
        for row, value in zip(group.rows, values):
            if computed:
                self._keep(row.key, value)
            else:
                self._memo[row.key] = value

    def forget(self) -> None:
        """Drop memoised results and stop reading --lm-cache, so what is asked next is computed afresh (e.g. to
        compare batched and single runs); results are still written to the cache."""
        self._memo.clear()
        self._read_disk = False

    def fresh(self) -> Engine:
        """An engine on the same loaded model with nothing remembered: to show a result does not come from a memo."""
        return Engine(self.loaded)

    # -- tokens -----------------------------------------------------------------------------------------------
    def encode(self, text: str, special: bool = True) -> list[int]:
        """Ids as the tokenizer gives them (with a BOS where the model's tokenizer adds one); pieces go without."""
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def decode(self, ids: Sequence[int] | int) -> str:
        __tracebackhide__ = True
        if isinstance(ids, int):
            ids = [ids]
        self.check_ids(ids)
        return str(self.tokenizer.decode(list(ids)))

    def check_ids(self, ids: Sequence[int]) -> None:
        """Token ids must name entries of this model's vocabulary; a wrong one is an InputError, never a wrong answer."""
        __tracebackhide__ = True
        bad = [i for i in ids if not (isinstance(i, int) and not isinstance(i, bool) and 0 <= i < self.vocabulary)]
        if bad:
            raise InputError(
                f"token id {bad[0]!r} is outside the vocabulary: ids run from 0 to {self.vocabulary - 1} for this "
                "model; take ids from lm.tokenize(text).ids"
            )

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
        ids, own = self.encode(text), self.encode(text, special=False)
        return Tokenization(
            text, tuple(ids), tuple(self.decode(i) for i in ids), tuple(own), tuple(self.decode(i) for i in own)
        )

    def _ids(self, prompt: Prompt, extra: int = 0) -> list[int]:
        __tracebackhide__ = True
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        if not ids:
            raise InputError("the prompt has no tokens; pass at least one character of text or one token id")
        self.check_ids(ids)
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

    def next_tokens(self, prompts: Sequence[Prompt]) -> list[Distribution]:
        # One forward pass per prompt, never a padded batch: a prompt's numbers then do not depend on which
        # prompts it was asked with, so results are the same in any test order and on any xdist worker.
        results = []
        for prompt in prompts:
            ids = tuple(self._ids(prompt))
            key = plan.key("next", ids)
            found = self._recall(key)
            if found is None and self._from_plan(key, 1):
                found = self._recall(key)
            if found is None:
                found = self._keep(key, self._distribution(ids))
            text = prompt if isinstance(prompt, str) else self.decode(list(prompt))
            # A copy: a test that writes into the numbers it was handed must not change what later tests read.
            results.append(replace(found, prompt=text, logprobs=found.logprobs.clone()))
        return results

    def _distribution(self, ids: Sequence[int]) -> Distribution:
        import torch

        with torch.no_grad():
            out = self.model(torch.tensor([list(ids)], device=self.model.device), logits_to_keep=1)
        row = torch.log_softmax(out.logits[0, -1].float().cpu(), dim=-1)
        return Distribution(self.decode(list(ids)), row, self.decode, self.piece_id, tuple(ids))

    def _distributions(self, rows: list[tuple[int, ...]]) -> list[Distribution]:
        """Next-token distributions of prompts that share a long beginning: the shared part goes through the model
        once, then all the different endings in one batch on its cache (right-padded, so positions stay true)."""

        import torch

        shared = plan.common_prefix(rows)
        if len(rows) < 2 or shared < plan.PREFIX:
            return [self._distribution(r) for r in rows]
        device = self.model.device
        endings = [list(r[shared:]) for r in rows]
        width = max(len(e) for e in endings)
        pad = int(self.tokenizer.pad_token_id)
        last = sorted({len(e) - 1 for e in endings})  # the only positions whose logits are needed
        with torch.no_grad():
            out = self.model(torch.tensor([list(rows[0][:shared])], device=device), use_cache=True)
            cache = _cache_of(out)
            cache.batch_repeat_interleave(len(rows))
            out = self.model(
                torch.tensor([e + [pad] * (width - len(e)) for e in endings], device=device),
                attention_mask=torch.tensor([[1] * (shared + len(e)) + [0] * (width - len(e)) for e in endings]).to(
                    device
                ),
                use_cache=True,
                logits_to_keep=torch.tensor(last, device=device),  # positions kept, the same for every row
                **{self._cache_name: cache},
            )
        logits = out.logits.float().cpu()
        result = []
        for i, (row, ending) in enumerate(zip(rows, endings)):
            values = torch.log_softmax(logits[i, last.index(len(ending) - 1)], dim=-1)
            result.append(Distribution(self.decode(list(row)), values, self.decode, self.piece_id, tuple(row)))
        return result

    def steps(self, generation: Generation) -> list[Distribution]:
        """The model's next-token distribution before each new token of a generation, from one forward pass."""
        import torch

        ids = list(generation.prompt_ids) + list(generation.ids[:-1])
        start = len(generation.prompt_ids) - 1
        rows = torch.log_softmax(self.logits(ids)[0, start:], dim=-1)
        return [
            Distribution(
                self.decode(ids[: start + 1 + i]), row, self.decode, self.piece_id, tuple(ids[: start + 1 + i])
            )
            for i, row in enumerate(rows)
        ]

    def teacher_force(self, prompt: Prompt, ids: Sequence[int]) -> list[StepCheck]:
        """Score a recorded continuation under this model, one forward pass over prompt + continuation: at each
        step the recorded token's log-probability and rank, and today's top candidate. Empty when the ids are not
        this model's (a tampered or foreign record)."""
        import torch

        context, ids = self._ids(prompt), list(ids)
        vocabulary = int(self.model.config.vocab_size)
        if not ids or any(not 0 <= i < vocabulary for i in ids):
            return []
        rows = torch.log_softmax(self.logits(context + ids[:-1])[0, len(context) - 1 :], dim=-1)
        checks = []
        for row, token in zip(rows, ids):
            best = int(row.argmax())
            value = row[token]
            checks.append(StepCheck(token, best, float(value), int((row > value).sum()) + 1, float(row[best] - value)))
        return checks

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
        """Greedy, or sampled with one seed per row (row 0 takes ``seed``); a row's tokens never depend on the others."""
        __tracebackhide__ = True
        if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
            raise InputError(f"max_new_tokens={max_new_tokens!r} must be a whole number >= 1")
        id_rows = [self._ids(p, max_new_tokens) for p in prompts]
        texts = [p if isinstance(p, str) else self.decode(list(p)) for p in prompts]
        if sampling is None and max_new_tokens == 1:  # one greedy token is the argmax of the next-token question
            dists = self.next_tokens(id_rows)
            return [self._one_token(t, r, d) for t, r, d in zip(texts, id_rows, dists)]
        knobs = None if sampling is None else sampling.knobs
        seeds = [None if sampling is None else row_seed(seed or 0, i) for i in range(len(prompts))]
        keys = [plan.key("gen", tuple(r), knobs, s) for r, s in zip(id_rows, seeds)]
        results = [self._generation(key, max_new_tokens) for key in keys]
        todo = [i for i, g in enumerate(results) if g is None]
        if todo:
            policies = [Policy(sampling, seeds[i]) for i in todo]
            fresh = self._decode([id_rows[i] for i in todo], max_new_tokens, policies)
            for i, generation in zip(todo, fresh):
                self._keep(keys[i], (generation, max_new_tokens))
                results[i] = generation
        return [replace(g, prompt=t) if g.prompt != t else g for g, t in zip(results, texts) if g is not None]

    def _generation(self, key: tuple[Any, ...], n: int) -> Generation | None:
        found = self._recall_generation(key, n)
        if found is None and self._from_plan(key, n):
            found = self._recall_generation(key, n)
        return found

    def _recall_generation(self, key: tuple[Any, ...], n: int) -> Generation | None:
        """A run of n tokens is a prefix of any longer run of the same row (greedy, or sampled with its seed)."""
        cached = self._recall(key)
        if cached is None:
            return None
        generation, asked = cached
        if n > asked and len(generation.ids) == asked:  # the cached run stopped at its limit, not at EOS
            return None
        return self._truncate(generation, n)

    def _one_token(self, text: str, ids: list[int], dist: Distribution) -> Generation:
        token = dist.argmax_id
        return Generation(
            prompt=text,
            text=self.decode(token),
            ids=(token,),
            full_text=self.decode([*ids, token]),
            prompt_ids=tuple(ids),
            pieces=(self.decode(token),),
            logprobs=(float(dist.logprobs[token]),),
            margins=(dist.margin,),
            argmax_ids=(token,),
            sampling="greedy",
            seed=None,
            engine=self,
        )

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

    def _cache_argument(self) -> str:
        """The keyword the model takes its KV cache by ('cache' in transformers 5, 'past_key_values' before)."""
        return self._cache_name

    def _prefilled(self, id_rows: list[list[int]]) -> dict[str, Any]:
        """A batch's prompts of very different lengths, read into the KV cache a length group at a time.

        Left-padding every prompt to the longest one would spend a forward pass on every pad (a batch of 17 prompts
        of 4 to 61 tokens is 1037 positions for 290 tokens: 2.5 s of 6). Each group of similar lengths is read
        with its own padding (positions counted from each row's first token, as generate counts them), its cache is
        padded at the left to the batch's width, and generate goes on from the last prompt token. Returns the
        cache argument for generate, or nothing when one pass over the padded batch wastes little.
        """
        import torch
        from transformers import DynamicCache

        if not hasattr(DynamicCache(), "layers"):  # an older transformers: read the padded batch in one pass
            return {}
        order = sorted(range(len(id_rows)), key=lambda i: len(id_rows[i]))
        buckets: list[list[int]] = []
        for i in order:
            if buckets and len(id_rows[i]) <= 2 * len(id_rows[buckets[-1][0]]) + 16:
                buckets[-1].append(i)
            else:
                buckets.append([i])
        if len(buckets) < 2 or len(id_rows[order[0]]) < 2:
            return {}
        width = max(len(r) for r in id_rows) - 1  # the last prompt token is generate's first step
        device = self.model.device
        parts: dict[int, list[tuple[Any, ...]]] = {}
        for bucket in buckets:
            padded = self._pad([id_rows[i][:-1] for i in bucket])
            mask = padded["attention_mask"]
            out = self.model(
                **padded, position_ids=(mask.cumsum(-1) - 1).clamp(min=0), use_cache=True, logits_to_keep=1
            )
            cache = _cache_of(out)
            if any(type(layer).__name__ != "DynamicLayer" for layer in cache.layers):
                return {}  # sliding-window or other special layers: read the padded batch in one pass instead
            for position, row in enumerate(bucket):
                parts[row] = [
                    tuple(
                        torch.nn.functional.pad(t[position : position + 1], (0, 0, width - t.shape[-2], 0))
                        for t in (layer.keys, layer.values)
                    )
                    for layer in cache.layers
                ]
        stitched = DynamicCache()
        for index in range(len(parts[0])):
            keys = torch.cat([parts[row][index][0] for row in range(len(id_rows))]).to(device)
            values = torch.cat([parts[row][index][1] for row in range(len(id_rows))]).to(device)
            stitched.update(keys, values, index)
        return {self._cache_name: stitched}

    def _decode(self, id_rows: list[list[int]], n: int, policies: list[Policy]) -> list[Generation]:
        """One batch through transformers' generate, each row's tokens picked by its own policy."""
        import torch
        from transformers.generation.logits_process import LogitsProcessorList

        batch = self._pad(id_rows)
        picker = RowPicker(policies)
        with torch.no_grad():
            sequences = self.model.generate(
                **batch,
                **self._prefilled(id_rows),
                max_new_tokens=n,
                pad_token_id=self.tokenizer.pad_token_id,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                logits_processor=LogitsProcessorList([picker]),
            )
        width = batch["input_ids"].shape[1]
        logprobs = torch.stack(picker.logprobs, dim=1)
        margins = torch.stack(picker.margins, dim=1)
        argmaxes = torch.stack(picker.argmaxes, dim=1)
        results = []
        for row, policy in enumerate(policies):
            new = sequences[row, width:].tolist()
            stop = next((i for i, token in enumerate(new) if token in self.stop_ids), None)
            if stop is not None:  # a batch pads finished rows; an unbatched run stops at EOS
                new = new[: stop + 1]
            count = len(new)
            prompt_ids = tuple(id_rows[row])
            results.append(
                Generation(
                    prompt=self.decode(list(prompt_ids)),
                    text=self.decode(new),
                    ids=tuple(new),
                    full_text=self.decode(list(prompt_ids) + new),
                    prompt_ids=prompt_ids,
                    pieces=tuple(self.decode(i) for i in new),
                    logprobs=tuple(float(v) for v in logprobs[row, :count].tolist()),
                    margins=tuple(float(v) for v in margins[row, :count].tolist()),
                    argmax_ids=tuple(int(i) for i in argmaxes[row, :count].tolist()),
                    sampling="greedy" if policy.sampling is None else policy.sampling.describe(),
                    seed=policy.seed,
                    engine=self,
                )
            )
        return results

    # -- scoring ----------------------------------------------------------------------------------------------
    def choose(self, prompt: Prompt, options: Sequence[str]) -> Choice:
        __tracebackhide__ = True
        import torch

        _check_prompt(prompt)
        if isinstance(options, str) or len(options) < 2 or not all(isinstance(o, str) and o for o in options):
            raise InputError(
                f"options={options!r} must be a list of at least two non-empty strings, e.g. [' good', ' bad']"
            )
        repeated = sorted({o for o in options if list(options).count(o) > 1})
        if repeated:
            raise InputError(f"options={options!r} name {repeated[0]!r} more than once; give each option once")
        context = self._ids(prompt)
        text = prompt if isinstance(prompt, str) else self.decode(context)
        key = ("choose", prompt if isinstance(prompt, str) else tuple(context), tuple(options))
        found = self._recall(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        continuations = [self.encode(option, special=False) for option in options]

        if all(len(c) == 1 for c in continuations):
            # One-token options: their scores are read off the prompt's next-token distribution.
            dist = self.next_tokens([context])[0]
            scored = tuple(dist.logprob(c[0]) for c in continuations)
            return self._keep(key, Choice(text, tuple(options), scored, tuple(context)))  # type: ignore[no-any-return]
        scores = []
        for continuation in continuations:
            logprobs = torch.log_softmax(self.logits(context + continuation)[0, len(context) - 1 : -1], dim=-1)
            scores.append(float(sum(logprobs[i, t] for i, t in enumerate(continuation))))
        return self._keep(key, Choice(text, tuple(options), tuple(scores), tuple(context)))  # type: ignore[no-any-return]


class LM:
    """A test's handle on a model: greedy unless the test is marked sampled; see ``with_sampling``."""

    def __init__(
        self,
        engine: Engine,
        sampling: Sampling | None = None,
        seed: int | None = None,
        recorder: Callable[[Any], None] | None = None,
        asks: list[plan.Ask] | None = None,
    ) -> None:
        self.engine = engine
        self.sampling = sampling
        self.seed = seed if sampling is None or sampling.seed is None else sampling.seed
        self.recorder = recorder  # told of every observation (for --lm-report)
        self.asks = asks  # every request made, for the plan (--lm-plan-update)
        self._calls = 0

    def _asked(self, kind: str, prompt: Prompt, n: int = 1, seed: int | None = None) -> None:
        if self.asks is None:
            return
        knobs = self.sampling.knobs if kind == "gen" and self.sampling is not None else None
        if kind == "gen" and knobs is None and n == 1:
            kind = "next"
        text = prompt if isinstance(prompt, str) else tuple(prompt)
        self.asks.append(plan.Ask(kind, text, n if kind == "gen" else 1, knobs, seed if kind == "gen" else None))

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
        return LM(self.engine, Sampling(temperature, top_p, top_k, seed), base, self.recorder, self.asks)

    def greedy(self) -> LM:
        return LM(self.engine, None, self.seed, self.recorder, self.asks)

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
            results = self._seen(self.engine.next_tokens(_check_batch(prompt)))
            for one in prompt:
                self._asked("next", one)
            return results
        _check_prompt(prompt)
        result = self._seen(self.engine.next_tokens([prompt])[0])
        self._asked("next", prompt)
        return result

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
        for one, result in zip(prompts, results):
            self._asked("gen", one, max_new_tokens, result.seed)
        return self._seen(results if batch else results[0])

    def choose(self, prompt: Prompt, options: Sequence[str]) -> Choice:
        __tracebackhide__ = True
        choice = self._seen(self.engine.choose(prompt, options))
        if all(len(self.engine.encode(option, special=False)) == 1 for option in options):
            self._asked("next", prompt)  # one-token options are read off the prompt's next-token distribution
        return choice  # type: ignore[no-any-return]

    def steps(self, generation: Generation) -> list[Distribution]:
        """The next-token distribution before each new token of ``generation`` (one forward pass)."""
        return self._seen(self.engine.steps(generation))  # type: ignore[no-any-return]
