"""What an OpenAI-compatible server can answer, probed once at session start with a few tiny requests.

vLLM answers everything the LM API asks; other engines lack some of it (llama.cpp's server ignores ``echo`` and
has no ``prompt_logprobs``, so it cannot score a given text). A verb the server cannot answer is a clear
``BackendUnavailable`` (its specs are skipped with the reason), never an answer at chance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .http import Client, ServerAnswer, ServerRefused

PROBE = "Hello, my name is"
WANTED_LOGPROBS = 20  # what the plugin asks for at most (vLLM's default --max-logprobs)


@dataclass(frozen=True)
class Capabilities:
    engine: str  # "vllm", or "openai-compatible" when the server does not say
    version: str
    model: str  # the served model's name
    context: int  # its max_model_len (0 when the server does not say)
    max_logprobs: int  # candidates per position it reports at most
    teacher: str | None  # how it scores a given text: "prompt_logprobs" (vLLM), "echo" (OpenAI), or None
    token_ids: bool  # names tokens by id in its log-probabilities (return_tokens_as_token_ids)
    tokenizer: bool  # has /tokenize and /detokenize
    max_temperature: float | None = None  # the highest sampling temperature it takes (None: no limit found)
    dtype: str = "unreported"  # what it computes in, where it says (vLLM's /server_info, in its dev mode)
    id_prompts: bool = True  # takes prompts as token ids, several per request (llama-cpp-python: one text only)

    def lacking(self) -> list[str]:
        """What the LM API cannot do on this server, one line each, naming the verbs (and so the specs) it costs."""
        found = []
        if self.teacher is None:
            found.append(
                "no log-probabilities of a given text (prompt_logprobs, or echo with logprobs that agree with the "
                "next-token answers of the text's prefixes): choose() with "
                "multi-token options, steps(), and the teacher-forced localisation of a diverging snapshot"
            )
        if not self.token_ids:
            found.append(
                "no token ids in its log-probabilities (return_tokens_as_token_ids): tokens are read back from their "
                "text through the model's vocabulary, and a text that names no single id is not available"
            )
        if not self.id_prompts:
            found.append(
                "no token-id prompts: each prompt goes as its text, alone, and only when it reads back as its ids"
            )
        if self.max_temperature is not None:
            found.append(f"no sampling temperature above {self.max_temperature:g}: the specs that sample hotter")
        found.append("no raw logits over HTTP: lm.logits() and the specs that take tensors from it")
        return found


def probe(client: Client, name: str | None) -> Capabilities:
    """Ask the server what it is and what it answers."""
    models = client.models()
    names = [str(m.get("id")) for m in models]
    if name is None:
        if len(names) != 1:
            raise ServerRefused(
                f"the server at {client.url} serves {len(names)} models ({', '.join(names) or 'none'}); name the one "
                f"to test: --lm-server {client.url}#NAME, or --lm-model NAME"
            )
        name = names[0]
    elif name not in names:
        raise ServerRefused(f"the server at {client.url} serves {', '.join(names) or 'no model'}, not {name!r}")
    served = next(m for m in models if str(m.get("id")) == name)
    engine, version = _identity(client)
    most = _max_logprobs(client, name)
    first = client.complete("a probe", model=name, prompt=PROBE, max_tokens=1, temperature=0, logprobs=2)[0]
    token_ids = _names_ids(client, name)
    return Capabilities(
        engine=engine,
        version=version,
        model=name,
        context=int(served.get("max_model_len") or 0),
        max_logprobs=most,
        teacher=_teacher(client, name, first),
        token_ids=token_ids,
        tokenizer=_has_tokenizer(client, name),
        max_temperature=_max_temperature(client, name),
        dtype=_dtype(client),
        # llama-cpp-python's schema takes text only, and it answers ids with HTTP 500 (a validation error), not a 4xx.
        id_prompts=engine != "llama-cpp-python" and _takes_ids(client, name),
    )


def _identity(client: Client) -> tuple[str, str]:
    """The engine and its version: vLLM's /version, or the title of llama-cpp-python's API description."""
    try:
        answer = client.get("/version", "telling its version")
        if isinstance(answer, dict) and answer.get("version"):
            return "vllm", str(answer["version"])
    except ServerRefused:
        pass
    try:
        info = client.get("/openapi.json", "describing its API").get("info", {})
        if "llama.cpp" in str(info.get("title", "")):
            return "llama-cpp-python", str(info.get("version", "unknown"))
    except (ServerRefused, AttributeError):
        pass
    return "openai-compatible", "unknown"


def _takes_ids(client: Client, name: str) -> bool:
    """Whether prompts may be token ids, two in one request (vLLM); llama-cpp-python reads one text prompt."""
    try:
        client.complete("a probe", model=name, prompt=[[1, 2], [3, 4]], max_tokens=1, temperature=0)
    except ServerRefused:
        return False
    except ServerAnswer:
        pass  # it took the ids; how many answers it gives is each request's own check
    return True


HOT = 100.0  # a temperature beyond any spec's: refused by a server with a limit, which the refusal names


def _max_temperature(client: Client, name: str) -> float | None:
    """The server's highest temperature: none when it samples at HOT; else the bound its refusal names (vLLM:
    "temperature must be in [0, 2]"), or the OpenAI API's documented 2 when it takes that."""
    body = {"model": name, "prompt": PROBE, "max_tokens": 1, "top_k": 1, "seed": 0}
    try:
        client.complete("a probe", **body, temperature=HOT)
        return None
    except ServerRefused as error:
        found = re.search(r"temperature[^\[]*\[\s*0(?:\.0*)?\s*,\s*(\d+(?:\.\d*)?)\s*\]", str(error))
        if found:
            return float(found.group(1))
    client.complete("a probe", **body, temperature=2.0)  # refused too: a real problem, shown as the server says
    return 2.0


def _dtype(client: Client) -> str:
    """The served weights' dtype, where the server tells it (vLLM's /server_info, served with VLLM_SERVER_DEV_MODE=1)."""
    try:
        info = client.get("/server_info?config_format=json", "telling its configuration")
    except ServerRefused:
        return "unreported"
    config = info.get("vllm_config") if isinstance(info, dict) else None
    dtype = config.get("model_config", {}).get("dtype") if isinstance(config, dict) else None
    return str(dtype).removeprefix("torch.") if dtype else "unreported"


def _max_logprobs(client: Client, name: str) -> int:
    try:
        client.complete("a probe", model=name, prompt=PROBE, max_tokens=1, temperature=0, logprobs=WANTED_LOGPROBS)
        return WANTED_LOGPROBS
    except ServerRefused as error:
        found = re.search(r"max(?:imum)? allowed:? (\d+)", str(error))
        if found:
            return int(found.group(1))
        raise


def _names_ids(client: Client, name: str) -> bool:
    try:
        choice = client.complete(
            "a probe",
            model=name,
            prompt=PROBE,
            max_tokens=1,
            temperature=0,
            logprobs=2,
            return_tokens_as_token_ids=True,
        )[0]
    except ServerRefused:
        return False
    tokens = (choice.get("logprobs") or {}).get("tokens") or []
    return bool(tokens) and all(str(t).startswith("token_id:") for t in tokens)


def _teacher(client: Client, name: str, plain: dict[str, Any]) -> str | None:
    """How the server scores the prompt itself, checked by its answer (a server that ignores a field says nothing)."""
    try:
        choice = client.complete(
            "a probe", model=name, prompt=PROBE, max_tokens=1, temperature=0, logprobs=1, prompt_logprobs=1
        )[0]
        if isinstance(choice.get("prompt_logprobs"), list) and len(choice["prompt_logprobs"]) > 1:
            return "prompt_logprobs"
    except ServerRefused:
        pass
    try:
        choice = client.complete(
            "a probe", model=name, prompt=PROBE, max_tokens=1, temperature=0, logprobs=1, echo=True
        )[0]
    except ServerRefused:
        return None
    scored = (choice.get("logprobs") or {}).get("token_logprobs") or []
    generated = ((plain.get("logprobs") or {}).get("token_logprobs")) or []
    if not (str(choice.get("text", "")).startswith(PROBE) and len(scored) > len(generated)):
        return None
    return "echo" if _echo_aligned(client, name, choice["logprobs"]) else None


def _echo_aligned(client: Client, name: str, echoed: dict[str, Any]) -> bool:
    """Whether echo's candidates at the probe's second token are the next-token answer after its first token alone
    (llama-cpp-python 0.3.36 answers each prompt token with the distribution after it: one token off). The first
    token's text is sent alone, so no re-tokenization of a longer prefix can blur the comparison."""
    tokens, tops = echoed.get("tokens") or [], echoed.get("top_logprobs") or []
    if len(tokens) < 2 or len(tops) < 2 or not tops[1]:
        return False
    found = client.complete("a probe", model=name, prompt=str(tokens[0]), max_tokens=1, temperature=0, logprobs=1)
    asked = _named(((found[0].get("logprobs") or {}).get("top_logprobs") or [{}])[0])
    echo = _named(tops[1])
    best = max(asked, key=lambda k: asked[k], default=None)
    return best is not None and best in echo and abs(echo[best] - asked[best]) < 1e-3


def _named(entries: dict[str, Any] | None) -> dict[str, float]:
    return {
        str(k).removeprefix("token_id:"): float(v["logprob"] if isinstance(v, dict) else v)
        for k, v in (entries or {}).items()
    }


def _has_tokenizer(client: Client, name: str) -> bool:
    try:
        answer = client.post("/tokenize", "tokenizing", {"model": name, "prompt": PROBE})
    except ServerRefused:
        return False
    return isinstance(answer, dict) and isinstance(answer.get("tokens"), list)


def announcement(spec: str, timeout: float) -> str:
    """The line a run with a served model starts with: what serves it, and what it cannot answer."""
    from .http import split_spec

    url, name = split_spec(spec)
    found = probe(Client(url, timeout), name)
    return (
        f"pytest-lmbehave: {found.engine} {found.version} at {url} serves {found.model!r} (top {found.max_logprobs} "
        "candidates per position); specs that need what it lacks are skipped with the reason: "
        + "; ".join(found.lacking())
    )
