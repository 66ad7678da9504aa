"""Reading many prompts into a transformers model at once: padding, length groups stitched into one KV cache,
a shared beginning read once, and teacher-forced passes that keep only the positions asked for."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from ..protocol import PREFIX, TOGETHER_FROM, common_prefix

BRANCH = 16  # further tokens a group of prompts must share to read them once on a forked cache
FORK = 48  # positions a fork must save (its rows but one, times what they share): each fork is one more pass
EXTRA_MB = 64  # logits a teacher-forced read after a shared beginning may keep beyond what a padded pass keeps


def cache_argument(model: Any) -> str:
    """The keyword the model takes its KV cache by ('cache' in transformers 5, 'past_key_values' before)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def cache_of(out: Any) -> Any:
    """The KV cache a forward pass returned, under either name transformers has given it."""
    return getattr(out, "cache", None) or out.past_key_values


def pad(rows: Sequence[Sequence[int]], pad_id: int, device: Any) -> dict[str, Any]:
    """Left padding, as generate expects: every row ends at the last column."""
    import torch

    width = max(len(r) for r in rows)
    ids = [[pad_id] * (width - len(r)) + list(r) for r in rows]
    mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
    return {"input_ids": torch.tensor(ids, device=device), "attention_mask": torch.tensor(mask, device=device)}


def positions(mask: Any) -> Any:
    """Position ids counted from each row's first real token, as generate counts them."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def length_groups(
    rows: Sequence[Sequence[int]], factor: float = 2.0, extra: int = 16, most: int = 0
) -> list[list[int]]:
    """Row indices by similar length, shortest first: a group spans up to ``factor`` times its shortest length
    + ``extra`` (and holds at most ``most`` rows, when given)."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    groups: list[list[int]] = []
    for i in order:
        fits = groups and len(rows[i]) <= factor * len(rows[groups[-1][0]]) + extra
        if fits and not (most and len(groups[-1]) >= most):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def stitched(model: Any, rows: Sequence[Sequence[int]], pad_id: int, argument: str) -> dict[str, Any]:
    """A batch's prompts of very different lengths, read into the KV cache a length group at a time.

    Left-padding every prompt to the longest one would spend a forward pass on every pad (a batch of 17 prompts
    of 4 to 61 tokens is 1037 positions for 290 tokens). Each group of similar lengths is read with its own
    padding, its cache is padded at the left to the batch's width, and generate goes on from the last prompt
    token. Returns the cache argument for generate, or nothing when one pass over the padded batch wastes little.
    """
    import torch
    from transformers import DynamicCache

    if not hasattr(DynamicCache(), "layers"):  # an older transformers: read the padded batch in one pass
        return {}
    groups = length_groups(rows)
    if len(groups) < 2 or min(len(r) for r in rows) < 2:
        return {}
    width = max(len(r) for r in rows) - 1  # the last prompt token is generate's first step
    parts: dict[int, list[tuple[Any, ...]]] = {}
    for group in groups:
        padded = pad([rows[i][:-1] for i in group], pad_id, model.device)
        out = model(**padded, position_ids=positions(padded["attention_mask"]), use_cache=True, logits_to_keep=1)
        cache = cache_of(out)
        if any(type(layer).__name__ != "DynamicLayer" for layer in cache.layers):
            return {}  # sliding-window or other special layers: read the padded batch in one pass instead
        for place, row in enumerate(group):
            parts[row] = [
                tuple(
                    torch.nn.functional.pad(t[place : place + 1], (0, 0, width - t.shape[-2], 0))
                    for t in (layer.keys, layer.values)
                )
                for layer in cache.layers
            ]
    joined = DynamicCache()
    for index in range(len(parts[0])):
        keys = torch.cat([parts[row][index][0] for row in range(len(rows))]).to(model.device)
        values = torch.cat([parts[row][index][1] for row in range(len(rows))]).to(model.device)
        joined.update(keys, values, index)
    return {argument: joined}


def last_logprobs(model: Any, ids: Sequence[int]) -> Any:
    """The next-token log-probabilities after one prompt, from one forward pass of it alone: [vocab]."""
    import torch

    with torch.no_grad():
        out = model(torch.tensor([list(ids)], device=model.device), logits_to_keep=1)
    return torch.log_softmax(out.logits[0, -1].float().cpu(), dim=-1)


def by_length(model: Any, rows: Sequence[Sequence[int]]) -> list[Any]:
    """Next-token log-probabilities of prompts that share no long beginning: those of one length (``TOGETHER_FROM``
    tokens or more) in one pass (``one_length``), the rest each alone."""
    found: list[Any] = [None] * len(rows)
    lengths: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        lengths.setdefault(len(row), []).append(i)
    for length, members in lengths.items():
        if len(members) > 1 and length >= TOGETHER_FROM:
            for i, numbers in zip(members, one_length(model, [rows[i] for i in members])):
                found[i] = numbers
        else:
            for i in members:
                found[i] = last_logprobs(model, rows[i])
    return found


def one_length(model: Any, rows: Sequence[Sequence[int]]) -> list[Any]:
    """Next-token log-probabilities of prompts of one length, in one forward pass (no padding, no mask), each bit for
    bit what ``last_logprobs`` reads of it alone.

    A pass over one prompt of 5 tokens costs about what a pass over 15 such prompts costs: it reads every weight
    (540 MB in float32) for a few rows of arithmetic. The layers' sums over a row do not depend on the rows beside it
    (measured on these CPUs from 4 tokens a prompt: ``TOGETHER_FROM``), but the output layer's do: one prompt's last
    position is a matrix-vector product, several are a matrix product, which adds in another order. So the output
    layer takes the rows one at a time, inside the model's own forward (whatever it does after that layer stays)."""
    import torch

    head = model.get_output_embeddings()
    if head is None:  # no output layer to take the rows one at a time
        return [last_logprobs(model, r) for r in rows]
    own = vars(head).get("forward")  # a method set on the layer itself (accelerate's hooks), else the class's
    whole = head.forward
    head.forward = lambda hidden: torch.cat([whole(hidden[i : i + 1]) for i in range(hidden.shape[0])])
    try:
        with torch.no_grad():
            out = model(torch.tensor([list(r) for r in rows], device=model.device), logits_to_keep=1)
    finally:  # the layer's own method again
        if own is None:
            del head.forward
        else:
            head.forward = own
    logits = out.logits[:, -1].float().cpu()
    return [torch.log_softmax(logits[i], dim=-1) for i in range(len(rows))]


def shared_beginning(model: Any, rows: Sequence[Sequence[int]], pad_id: int, argument: str) -> list[Any]:
    """Next-token log-probabilities of prompts that share a long beginning, each shared beginning read once: the
    part all share goes through the model once, and the rest is read as a tree on its cache (``_endings``).
    Prompts that share less are read a length at a time."""
    import torch

    shared = common_prefix([tuple(r) for r in rows]) if len(rows) > 1 else 0
    if shared < PREFIX:
        return by_length(model, rows)
    found: list[Any] = [None] * len(rows)
    with torch.no_grad():
        beginning = read_into(model, rows[0][:shared], argument)
        _endings(model, beginning, shared, rows, list(range(len(rows))), pad_id, argument, found)
    return found


def branches(rows: Sequence[Sequence[int]], members: Sequence[int], depth: int) -> list[list[int]]:
    """The members (all sharing their first ``depth`` tokens) by the further beginnings they share: neighbours in
    sorted order that share ``BRANCH`` tokens more (each keeping its last token) go together, so each group is a
    subtree of the prompts' prefix tree, and a member that shares less with every other is a group alone."""
    order = sorted(members, key=lambda i: tuple(rows[i][depth:]))
    groups = [[order[0]]] if order else []
    for before, i in pairwise(order):
        if common_prefix([rows[before][depth:], rows[i][depth:]]) >= BRANCH:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _endings(
    model: Any,
    cache: Any,
    depth: int,
    rows: Sequence[Sequence[int]],
    members: list[int],
    pad_id: int,
    argument: str,
    found: list[Any],
) -> None:
    """The members' next-token log-probabilities into ``found``, on a cache (one row) of the ``depth`` tokens they
    share. A group that shares ``BRANCH`` tokens more, enough to save ``FORK`` positions, forks the cache: a copy
    reads its further beginning once, and its members go on from there. The rest are read on this cache a length
    group at a time (right-padded, so positions stay true; grouped, so a short ending is not padded to the longest).
    The tree depends only on the rows, so a batch is read the same way in every mode."""
    import copy

    import torch

    device = model.device
    rest: list[int] = []
    for group in branches(rows, members, depth):
        more = common_prefix([rows[i][depth:] for i in group]) if len(group) > 1 else 0
        if more < BRANCH or (len(group) - 1) * more < FORK:
            rest += group
            continue
        fork = read_into(model, rows[group[0]][depth : depth + more], argument, copy.deepcopy(cache))
        _endings(model, fork, depth + more, rows, group, pad_id, argument, found)
        del fork
    endings = {i: list(rows[i][depth:]) for i in rest}
    for lengths in length_groups([endings[i] for i in rest]):
        group = [rest[j] for j in lengths]
        part = [endings[i] for i in group]
        last = sorted({len(e) - 1 for e in part})  # the only positions whose logits are needed, kept for every row
        out = on_cache(model, copy.deepcopy(cache), depth, part, pad_id, argument, torch.tensor(last, device=device))
        logits = out.logits.float().cpu()
        for place, (i, e) in enumerate(zip(group, part)):
            found[i] = torch.log_softmax(logits[place, last.index(len(e) - 1)], dim=-1)
        del out, logits  # this group's cache and logits, before the next group's pass makes its own


def read_into(model: Any, ids: Sequence[int], argument: str, cache: Any = None) -> Any:
    """The KV cache (one row) after reading ``ids``: a new one, or ``cache`` grown by them."""
    import torch

    given = {} if cache is None else {argument: cache}
    out = model(torch.tensor([list(ids)], device=model.device), use_cache=True, logits_to_keep=1, **given)
    return cache_of(out)


def on_cache(
    model: Any, cache: Any, depth: int, endings: Sequence[Sequence[int]], pad_id: int, argument: str, keep: Any
) -> Any:
    """One pass over the endings, each on a copy of a one-row cache of the ``depth`` tokens they all follow (the
    cache is repeated in place and grows by the pass): right-padded, so each token's place in the cache is its
    position (a sliding window counts places), keeping the logits ``keep`` names."""
    import torch

    device = model.device
    width = max(len(e) for e in endings)
    cache.batch_repeat_interleave(len(endings))
    return model(
        torch.tensor([[*e, *[pad_id] * (width - len(e))] for e in endings], device=device),
        attention_mask=torch.tensor([[1] * (depth + len(e)) + [0] * (width - len(e)) for e in endings]).to(device),
        use_cache=True,
        logits_to_keep=keep,
        **{argument: cache},
    )


def forced_logits(
    model: Any, rows: Sequence[Sequence[int]], starts: Sequence[int], pad_id: int, argument: str | None = None
) -> list[Any]:
    """Teacher forcing: for each row, the raw next-token logits at positions ``start`` to its end
    ([len(row) - start, vocab], float32), from one forward pass over the (left-padded) batch. One row is read
    unpadded. Rows that share a long beginning before every start (the options of one prompt, the drafts of one
    chat template) read it once (``after_beginning``)."""
    import torch

    keep = max(len(r) - s for r, s in zip(rows, starts))
    shared = min(common_prefix([tuple(r) for r in rows]), *starts) if len(rows) > 1 else 0
    # Right-padded, the logits kept run from the earliest start to the longest end: a whole distribution a row and
    # position (1 MB at 262,144 entries), so at most EXTRA_MB more than the padded pass keeps.
    more = (max(map(len, rows)) - min(starts) - keep) * len(rows) * output_rows(model) * 4
    if shared >= PREFIX and more <= EXTRA_MB * 2**20:
        return after_beginning(model, rows, starts, shared, pad_id, argument or cache_argument(model))
    with torch.no_grad():
        if len(rows) == 1:
            out = model(torch.tensor([list(rows[0])], device=model.device), logits_to_keep=keep)
        else:
            batch = pad(rows, pad_id, model.device)
            out = model(**batch, position_ids=positions(batch["attention_mask"]), logits_to_keep=keep)
    logits = out.logits.float()
    return [logits[i, keep - (len(r) - s) :] for i, (r, s) in enumerate(zip(rows, starts))]


def output_rows(model: Any) -> int:
    """How many entries a distribution of this model has: its output layer's rows."""
    head = model.get_output_embeddings()
    return int(head.weight.shape[0]) if head is not None else int(model.config.vocab_size)


def after_beginning(
    model: Any, rows: Sequence[Sequence[int]], starts: Sequence[int], shared: int, pad_id: int, argument: str
) -> list[Any]:
    """As ``forced_logits``, the ``shared`` tokens every row begins with read once, then one pass over the endings
    on its cache: right-padded, so each token's place in the cache is its position (a sliding window counts
    places), keeping the logits from the earliest start on."""
    import torch

    endings = [list(r[shared:]) for r in rows]
    width = max(len(e) for e in endings)
    first = min(starts) - shared  # the earliest position whose logits a row needs, in the endings
    with torch.no_grad():
        cache = read_into(model, rows[0][:shared], argument)
        out = on_cache(model, cache, shared, endings, pad_id, argument, width - first)
    logits = out.logits.float()
    return [logits[i, s - shared - first : len(r) - shared - first] for i, (r, s) in enumerate(zip(rows, starts))]


def forced(model: Any, rows: Sequence[Sequence[int]], starts: Sequence[int], pad_id: int) -> list[Any]:
    """As ``forced_logits``, as log-probabilities on the CPU, written over the logits: a scored text of n positions
    holds n whole distributions once, not twice (50 positions at 262,144 entries: 52 MB). In place, the log-softmax
    is the same bits as into a new tensor (checked with ATEN_CPU_CAPABILITY default, avx2 and avx512)."""
    import torch

    found = []
    for logits in forced_logits(model, rows, starts, pad_id):
        row = logits.cpu()  # the same tensor on the CPU; a copy from another device
        found.append(torch.log_softmax(row, dim=-1, out=row))
    return found
