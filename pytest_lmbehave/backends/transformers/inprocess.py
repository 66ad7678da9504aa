"""``TransformersBackend``: a causal LM loaded in this process, computing with torch and transformers.

The only module (with model loading) that runs the model: forward passes, the stitched prefill, generation with
each row's own policy, teacher forcing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...config.environment import INVARIANT
from ..protocol import Decoded, Drawn, Logprobs, limits
from ..sampling import GREEDY, Policy, Sampling
from ..templates import render_with
from ..vocabulary import Vocabulary, built
from . import prefill
from .configured import Configured
from .decoding import RowPicker, RowState, draw
from .drafts import verify
from .heap import give_back, separate_large_blocks
from .loading import LoadedModel


def stop_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """The ids generate stops a row at: the generation config's EOS (one id or several). transformers 4.57's GGUF
    tokenizer names another EOS (id 1) than the model's generation config (id 2); generate follows the config."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    return frozenset(configured if isinstance(configured, (list, tuple)) else [configured]) - {None}


def _numbers(row: Any) -> Logprobs:
    values = row.numpy()
    values.flags.writeable = False  # handed to many observations: none may write into another's numbers
    return Logprobs(values)


class TransformersBackend:
    name = "transformers"
    decodes_each_draw = False  # every draw samples one pass's numbers

    def __init__(self, loaded: LoadedModel, cache_dir: Path | None = None) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.cache_dir = cache_dir  # where the vocabulary table is kept between runs
        self.stop_ids = stop_ids(self.model, self.tokenizer)
        self.configured = Configured(self.model, self.stop_ids)  # the model's own generation config
        self.pad_id = int(self.tokenizer.pad_token_id)
        self._argument = prefill.cache_argument(self.model)
        self._vocabulary: Vocabulary | None = None
        # Numerics that change with the batch or the path (bfloat16, float16, TF32...): every request is read alone
        # and every generation decoded token by token, so its numbers depend on the request alone (invariance.py).
        self.alone = loaded.fingerprint.get(INVARIANT) != "yes"
        separate_large_blocks()  # distributions and step tensors of a large vocabulary (heap.py)

    @property
    def vocab_size(self) -> int:
        return int(self.model.config.vocab_size)

    @property
    def context(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 0) or 0)

    def fingerprint(self) -> dict[str, str]:
        return self.loaded.fingerprint

    # -- tokens -------------------------------------------------------------------------------------------------
    def tokenize(self, text: str, special: bool = True) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def detokenize(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids)))

    def chat(self, messages: Sequence[dict[str, str]]) -> tuple[str, list[int]]:
        return render_with(self.tokenizer, messages, self.loaded.source.spec)

    def vocabulary(self) -> Vocabulary:
        if self._vocabulary is None:
            self._vocabulary = built(self.tokenizer, self.vocab_size, self.cache_dir, self.loaded.fingerprint)
        return self._vocabulary

    # -- forward passes -------------------------------------------------------------------------------------------
    def logits(self, ids: Sequence[int]) -> Any:
        import torch

        with torch.no_grad():
            out = self.model(torch.tensor([list(ids)], device=self.model.device))
        return out.logits.float().cpu()

    def draws(self, ids: Sequence[int], policy: Policy, n: int) -> Drawn:
        """The scores of one pass through the model's own processors and transformers' warpers, as decoding's first
        step sees them, then ``n`` draws from the row's own generator (``decoding.draw``, decoding's own).

        generate hands its processors and warpers the logits in float32 whatever the model's dtype, and so does this:
        a nucleus summed in bfloat16's 8 bits ends a token early or late (19 of 300 logit vectors moved by up to two
        bfloat16 steps kept another nucleus than in float32)."""
        import torch

        state = self.state(policy, len(ids))
        read = torch.tensor([list(ids)], device=self.model.device)
        with torch.no_grad():
            scores = self.model(read).logits[:, -1, :].float()
        processed = state.process(read, scores)
        warped = processed if state.warpers is None else state.warpers(read, processed.clone())
        probs = torch.softmax(warped, dim=-1)[0]
        generator = state.generator(probs.device)
        tokens = [draw(probs, generator) for _ in range(n)]
        numbers = _numbers(torch.log_softmax(scores, dim=-1)[0].cpu())
        return Drawn(tokens, numbers, self.configured.sampling(policy.sampling) if policy.sampling else Sampling())

    def next_logprobs(self, rows: Sequence[Sequence[int]]) -> list[Logprobs]:
        if self.alone:
            return [_numbers(prefill.last_logprobs(self.model, r)) for r in rows]
        return [_numbers(r) for r in prefill.shared_beginning(self.model, rows, self.pad_id, self._argument)]

    def forced_logprobs(
        self, rows: Sequence[tuple[Sequence[int], Sequence[int]]], generated: bool = False
    ) -> list[list[Logprobs]]:
        if self.alone and len(rows) > 1:
            return [self.forced_logprobs([row], generated)[0] for row in rows]
        whole = [list(p) + list(c)[:-1] for p, c in rows]
        starts = [len(p) - 1 for p, _ in rows]
        if generated and self.configured.processing:
            logits = prefill.forced_logits(self.model, whole, starts, self.pad_id)
            found = [self._as_generated(p, c, row) for (p, c), row in zip(rows, logits)]
        else:
            found = [[_numbers(r) for r in each] for each in prefill.forced(self.model, whole, starts, self.pad_id)]
        give_back()
        return found

    def _as_generated(self, prompt: Sequence[int], continuation: Sequence[int], scores: Any) -> list[Logprobs]:
        """A continuation's steps as generate saw them: each step's scores through the model's own processors."""
        import torch

        state, read = self.state(GREEDY, len(prompt)), [*prompt, *continuation]
        seen = [torch.tensor([read[: len(prompt) + i]], device=scores.device) for i in range(len(continuation))]
        return [
            _numbers(torch.log_softmax(state.process(ids, scores[i : i + 1]).float(), dim=-1)[0].cpu())
            for i, ids in enumerate(seen)
        ]

    def state(self, policy: Policy, begin: int) -> RowState:
        """A row's policy with the model's own processors for its prompt length, and its sampling knobs with the
        config's defaults filled in."""
        sampling = None if policy.sampling is None else self.configured.sampling(policy.sampling)
        return RowState(policy, self.configured.for_row(begin, self.model.device), sampling)

    # -- generation -----------------------------------------------------------------------------------------------
    def generate(
        self,
        rows: Sequence[Sequence[int]],
        steps: int | Sequence[int],
        policies: Sequence[Policy],
        drafts: Sequence[Sequence[int] | None] | None = None,
    ) -> list[Decoded]:
        """Greedy or seeded-sampled rows in one batch; a row with a draft is checked by teacher forcing first and
        decoded only from where the model departs from it (``drafts.verify``)."""
        each = limits(steps, len(rows))
        if self.alone:  # each row by itself, never from a draft: teacher forcing is not what decoding computes here
            return [self._decoded([row], [n], [policy])[0] for row, n, policy in zip(rows, each, policies)]
        if drafts is not None and any(drafts) and self.configured.replayable:
            found = verify(self, rows, each, policies, drafts)
            give_back()
            return found
        return self._decoded(rows, each, policies)

    def _decoded(self, rows: Sequence[Sequence[int]], each: Sequence[int], policies: Sequence[Policy]) -> list[Decoded]:
        states = [self.state(p, len(r)) for p, r in zip(policies, rows)]
        found = [row.cut(n) for row, n in zip(self.decode_rows(rows, max(each), states), each)]
        give_back()
        return found

    def decode_rows(self, rows: Sequence[Sequence[int]], steps: int, states: Sequence[RowState]) -> list[Decoded]:
        """One batch through transformers' generate, each row's tokens picked by its own policy and generator."""
        import torch
        from transformers.generation.logits_process import LogitsProcessorList

        batch = prefill.pad(rows, self.pad_id, self.model.device)
        width = batch["input_ids"].shape[1]
        picker = RowPicker(list(states), [width - len(r) for r in rows])
        with torch.no_grad(), self.configured.neutral():
            sequences = self.model.generate(
                **batch,
                **prefill.stitched(self.model, rows, self.pad_id, self._argument),
                max_new_tokens=steps,
                pad_token_id=self.pad_id,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                logits_processor=LogitsProcessorList([picker]),
            )
        return [self.finish(sequences[row, width:].tolist(), picker.row(row)) for row in range(len(rows))]

    def finish(self, new: list[int], steps: Any) -> Decoded:
        """A row's ids up to its first stop token (a batch pads finished rows; an unbatched run stops at EOS)."""
        stop = next((i for i, token in enumerate(new) if token in self.stop_ids), None)
        count = len(new) if stop is None else stop + 1
        logprobs, margins, argmaxes, best = steps
        return Decoded(
            ids=tuple(new[:count]),
            logprobs=tuple(logprobs[:count]),
            margins=tuple(margins[:count]),
            argmax_ids=tuple(argmaxes[:count]),
            alternatives=tuple(best[:count]),
        )
