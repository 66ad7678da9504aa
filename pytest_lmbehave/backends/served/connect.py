"""Connecting to a served model: probe the server, find its tokenizer, name what it is.

The tokenizer is the local copy of the served weights when the served name is a model this machine has (``embedded``,
a directory, a cached hub id): the same ids the in-process model reads, and its snapshot set. Otherwise the
server's own /tokenize and /detokenize (vLLM) are used, and its vocabulary is read once and kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from ...config import environment
from ...config.errors import BackendUnavailable
from ...config.settings import Settings
from ..templates import Messages, Rendered, no_template, render_with
from ..vocabulary import Vocabulary, built, stored_at
from .capabilities import Capabilities, probe
from .http import Client, ServerRefused, split_spec
from .served import CONCURRENT, ServedBackend

# A model this machine has, by its served name: (its tokenizer, its weights' sha256), or None. Given by
# ``backends.open``, so this engine never imports the other.
Local = Callable[[str], tuple[Any, str] | None]


def fingerprint(spec: str, capabilities: Capabilities, sha256: str | None) -> dict[str, str]:
    """The served model's identity: the engine and its version, the server, the served name, its dtype and how many
    candidates it reports, and the weights' hash when the same weights are here (so a served run and an in-process
    run of them compare as same weights, other engine). All of it keys --lm-cache: two servers that serve the same
    name never share an entry."""
    return {
        "model": spec,
        "model_name": capabilities.model,
        "model_sha256": sha256[:16] if sha256 is not None else "unknown",
        "engine": capabilities.engine,
        "engine_version": capabilities.version,
        "served_model": capabilities.model,
        "server": split_spec(spec)[0],
        "dtype": capabilities.dtype,
        "max_logprobs": str(capabilities.max_logprobs),
        **environment.software(),
    }


def connect(spec: str, settings: Settings, local_copy: Local) -> ServedBackend:
    __tracebackhide__ = True
    url, name = split_spec(spec)
    client = Client(url, settings.server_timeout)
    capabilities = probe(client, name)
    local = local_copy(capabilities.model)
    found = fingerprint(spec, capabilities, None if local is None else local[1])
    if local is not None:
        tokenizer = local[0]
        size = len(tokenizer)
        vocabulary = built(tokenizer, size, settings.cache_dir, found)

        def tokenize(text: str, special: bool) -> list[int]:
            return list(tokenizer(text, add_special_tokens=special)["input_ids"])

        def detokenize(ids: Sequence[int]) -> str:
            return str(tokenizer.decode(list(ids)))

    elif capabilities.tokenizer:
        tokenize, detokenize = _server_tokenizer(client, capabilities.model)
        vocabulary = _server_vocabulary(client, capabilities.model, detokenize, tokenize, settings.cache_dir, found)
    else:
        raise BackendUnavailable(
            f"no tokenizer for {capabilities.model!r}: it is not a model this machine has (pass --lm-server "
            f"{url}#NAME with NAME a local model, directory or cached hub id) and the server has no /tokenize"
        )
    render = None
    if capabilities.tokenizer:  # vLLM renders its own template: the one it serves chat completions with
        render = _server_chat(client, capabilities.model, detokenize)
    elif local is not None:  # the template over /v1/completions: the local copy's, the same weights' own
        render = partial(render_with, local[0], model=spec)
    return ServedBackend(client, capabilities, found, vocabulary, tokenize, detokenize, render)


def _server_chat(client: Client, model: str, detokenize: Any) -> Any:
    """The server's own rendering of a conversation (vLLM's /tokenize with messages), read back as text."""

    def render(messages: Messages) -> Rendered:
        body = {"model": model, "messages": list(messages), "add_generation_prompt": True, "add_special_tokens": False}
        try:
            answer = client.post("/tokenize", "rendering the chat template", body)
        except ServerRefused as error:
            if "template" in str(error).lower():
                raise no_template(f"the served model {model!r}") from None
            raise
        ids = [int(t) for t in answer["tokens"]]
        return detokenize(ids), ids

    return render


def _server_tokenizer(client: Client, model: str) -> tuple[Any, Any]:
    def tokenize(text: str, special: bool) -> list[int]:
        answer = client.post("/tokenize", "tokenizing", {"model": model, "prompt": text, "add_special_tokens": special})
        return [int(t) for t in answer["tokens"]]

    def detokenize(ids: Sequence[int]) -> str:
        return str(client.post("/detokenize", "detokenizing", {"model": model, "tokens": list(ids)})["prompt"])

    return tokenize, detokenize


def _server_vocabulary(
    client: Client, model: str, detokenize: Any, tokenize: Any, cache: Path, fingerprint: dict[str, str]
) -> Vocabulary:
    """Each id decoded alone by the server, read once (one request an id) and kept in the cache folder."""
    path, digest = stored_at(cache, {**fingerprint, "model_sha256": f"{client.url}#{model}"})
    found = Vocabulary.load(path, digest)
    if found is not None:
        return found
    size = int(client.models()[0].get("vocab_size") or 0) or _probe_size(client, model)
    with ThreadPoolExecutor(CONCURRENT) as pool:
        pieces = list(pool.map(lambda i: detokenize([i]), range(size)))
        read_back = list(pool.map(lambda piece: tokenize(piece, False) if piece else [], pieces))
    found = Vocabulary.from_pieces(pieces, read_back, digest)
    found.save(path)
    return found


def _probe_size(client: Client, model: str) -> int:
    """The vocabulary's size, by bisecting for the first id the server refuses to read as a prompt (vLLM: "Token id
    N is out of vocabulary"; its /detokenize answers an empty text for such an id instead of refusing it)."""
    low, high = 1, 1 << 20
    while low < high:
        middle = (low + high) // 2
        try:
            client.complete("reading one id", model=model, prompt=[middle], max_tokens=1, temperature=0)
            low = middle + 1
        except ServerRefused:
            high = middle
    return low
