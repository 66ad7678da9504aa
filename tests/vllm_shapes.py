"""Real vLLM answers, kept to hold the fake server to: the requests the served backend sends, recorded from a real
server by `make served` (``python -m tests.vllm_shapes URL OUT.json``) and committed as ``tests/vllm_responses.json``;
``tests/test_served.py`` sends the same requests to the fake server and compares the shapes of the answers."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

PROMPTS = ["Shakespeare was a", "When you visit Boston, make sure you visit the"]

# name -> (path, body); "ROWS" in a body stands for the prompts as token ids, "ROW" for the first one alone.
REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "next_token": (
        "/v1/completions",
        {"prompt": "ROWS", "max_tokens": 1, "temperature": 0, "logprobs": 5, "return_tokens_as_token_ids": True},
    ),
    "prompt_logprobs": (
        "/v1/completions",
        {
            "prompt": "ROW",
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": 1,
            "prompt_logprobs": 5,
            "return_tokens_as_token_ids": True,
        },
    ),
    "echo": (
        "/v1/completions",
        {"prompt": "ROW", "max_tokens": 1, "temperature": 0, "logprobs": 5, "echo": True},
    ),
    "greedy": (
        "/v1/completions",
        {"prompt": "ROWS", "max_tokens": 4, "temperature": 0, "logprobs": 5, "return_tokens_as_token_ids": True},
    ),
    "sampled": (
        "/v1/completions",
        {
            "prompt": "ROW",
            "max_tokens": 4,
            "temperature": 0.7,
            "top_p": 0.9,
            "top_k": 50,
            "seed": 3,
            "logprobs": 5,
            "return_tokens_as_token_ids": True,
        },
    ),
    "too_many_logprobs": ("/v1/completions", {"prompt": "ROW", "max_tokens": 1, "temperature": 0, "logprobs": 999}),
    "too_hot": ("/v1/completions", {"prompt": "ROW", "max_tokens": 1, "temperature": 100.0, "top_k": 1, "seed": 0}),
    "tokenize": ("/tokenize", {"prompt": PROMPTS[0], "add_special_tokens": True}),
    "detokenize": ("/detokenize", {"tokens": "ROW"}),
    "detokenize_out_of_vocabulary": ("/detokenize", {"tokens": [10**7]}),
}


def filled(body: dict[str, Any], rows: list[list[int]], model: str) -> dict[str, Any]:
    """A request's body with the model's name and its prompts as the model's own token ids."""
    out: dict[str, Any] = {"model": model}
    for key, value in body.items():
        out[key] = rows if value == "ROWS" else rows[0] if value == "ROW" else value
    return out


def ask(root: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        root + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def answers(root: str, model: str, tokenize: Callable[[str], list[int]]) -> dict[str, Any]:
    """Every request of REQUESTS sent to the server at ``root`` (no /v1): {name: {status, body}}."""
    rows = [tokenize(p) for p in PROMPTS]
    found = {}
    for name, (path, body) in REQUESTS.items():
        status, answer = ask(root, path, filled(body, rows, model))
        found[name] = {"status": status, "body": answer}
    return found


TOKEN_MAPS = ("top_logprobs", "prompt_logprobs")  # lists of {token: ...} per position, keyed by token or id


def shape(value: Any, tokens: bool = False) -> Any:
    """A JSON value's shape: dicts by their keys (per-position token maps as one entry), lists by what they hold."""
    if isinstance(value, dict):
        if tokens:
            return {"<token>": _union([shape(v) for v in value.values()])} if value else {}
        return {str(k): shape(v, str(k) in TOKEN_MAPS) for k, v in value.items()}
    if isinstance(value, list):
        return [_union([shape(v, tokens) for v in value])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "null" if value is None else type(value).__name__


def _union(shapes: list[Any]) -> Any:
    """The shapes a list holds, as one: null beside another shape reads as that shape, maybe absent."""
    kinds = [s for s in shapes if s != "null"]
    if not kinds:
        return "null"
    first = kinds[0]
    if isinstance(first, dict):
        keys = sorted({k for s in kinds if isinstance(s, dict) for k in s})
        return {k: _union([s[k] for s in kinds if isinstance(s, dict) and k in s]) for k in keys}
    return first


def missing(fake: Any, real: Any, where: str = "") -> list[str]:
    """Where the fake's shape holds what the real answer's does not (or of another kind): the fake must answer
    nothing vLLM would not."""
    if isinstance(fake, dict) and isinstance(real, dict):
        return [
            p for k, v in fake.items() for p in (missing(v, real[k], f"{where}.{k}") if k in real else [f"{where}.{k}"])
        ]
    if isinstance(fake, list) and isinstance(real, list):
        return missing(fake[0], real[0], f"{where}[]") if fake and real else []
    return [] if fake == real or "null" in (fake, real) else [f"{where}: {fake} (real: {real})"]


if __name__ == "__main__":
    url, out = sys.argv[1], sys.argv[2]
    root = url.removesuffix("/v1")
    name = json.loads(urllib.request.urlopen(url + "/models").read())["data"][0]["id"]

    def server_tokens(text: str) -> list[int]:
        return [int(t) for t in ask(root, "/tokenize", {"model": name, "prompt": text})[1]["tokens"]]

    with open(out, "w", encoding="utf-8") as handle:
        json.dump(answers(root, name, server_tokens), handle, indent=1, sort_keys=True)
        handle.write("\n")
    print(f"recorded {len(REQUESTS)} real answers of {name} at {url} in {out}")
