"""An OpenAI-compatible server on loopback, answering from the tests' tiny model, in the shapes vLLM 0.32 answers
in (checked against a real vLLM server: `make served`). Its capabilities can be taken away to play another engine
(llama.cpp's server ignores echo and has no prompt_logprobs), and it can die mid-run."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pytest_lmbehave.backends.sampling import Policy, Sampling


@dataclass
class Behaviour:
    name: str = "tiny"  # the served model's name; a local path gives the client the same tokenizer
    vllm: bool = True  # /version, /tokenize, return_tokens_as_token_ids
    prompt_logprobs: bool = True  # vLLM's prompt_logprobs
    echo: bool = True  # echo=true returns the prompt's log-probabilities (llama.cpp ignores it)
    max_logprobs: int = 20
    failures: int = 0  # answer this many requests with HTTP 503 first (the client retries them)
    max_temperature: float = 2.0  # vLLM refuses hotter sampling
    refuse: str = ""  # refuse every completions request whose body holds this key, as a server might (HTTP 400)
    short: bool = False  # answer a request of several prompts with one choice too few
    echo_shifted: bool = False  # echo answers each prompt token with the distribution after it (llama-cpp-python)


class FakeServer:
    def __init__(self, backend: Any, behaviour: Behaviour | None = None) -> None:
        self.backend = backend
        self.behaviour = behaviour or Behaviour()
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(*fake.get(self.path))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                self._send(*fake.post(self.path, json.loads(self.rfile.read(length) or b"{}")))

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"

    def die(self) -> None:
        """Stop answering: every later request finds nothing listening."""
        self.http.shutdown()
        self.http.server_close()

    # -- endpoints ------------------------------------------------------------------------------------------------
    def get(self, path: str) -> tuple[int, Any]:
        b = self.behaviour
        if path == "/v1/models":
            return 200, {"data": [{"id": b.name, "object": "model", "max_model_len": self.backend.context}]}
        if path == "/version" and b.vllm:
            return 200, {"version": "fake-0.32"}
        if path == "/health":
            return 200, {}
        return 404, {"error": {"message": f"no route {path}"}}

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        self.requests.append({"path": path, **body})
        b = self.behaviour
        if b.failures > 0:
            b.failures -= 1
            return 503, {"error": {"message": "busy, try again"}}
        if path == "/tokenize" and b.vllm and "messages" in body:  # the chat template, rendered by the server
            if not getattr(getattr(self.backend, "tokenizer", None), "chat_template", None):
                return 400, {"error": {"message": "the tokenizer does not define a chat template; pass one"}}
            return 200, {"tokens": self.backend.chat(body["messages"])[1]}
        if path == "/tokenize" and b.vllm:
            return 200, {"tokens": self.backend.tokenize(body["prompt"], body.get("add_special_tokens", True))}
        if path == "/detokenize" and b.vllm:
            inside = [t for t in body["tokens"] if 0 <= t < self.backend.vocab_size]  # vLLM drops the others
            return 200, {"prompt": self.backend.detokenize(inside)}
        if path == "/v1/completions":
            return self.complete(body)
        if path == "/die":  # a test's way to pull the plug mid-run: answered, then nothing listens any more
            threading.Thread(target=self.die, daemon=True).start()
            return 200, {}
        return 404, {"error": {"message": f"no route {path}"}}

    def complete(self, body: dict[str, Any]) -> tuple[int, Any]:
        b = self.behaviour
        k = int(body.get("logprobs") or 0)
        if k > b.max_logprobs:
            message = f"Requested sample logprobs of {k}, which is greater than max allowed: {b.max_logprobs}"
            return 400, {"error": {"message": message, "code": 400}}
        temperature = body.get("temperature", 1.0)
        if temperature > b.max_temperature:
            message = f"temperature must be in [0, {b.max_temperature:g}], got {float(temperature)}."
            return 400, {"error": {"message": message, "type": "BadRequestError", "code": 400}}
        if b.refuse and b.refuse in body:
            return 400, {"error": {"message": f"unknown field {b.refuse!r}", "type": "BadRequestError", "code": 400}}
        prompts = body["prompt"]
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        rows = [self.backend.tokenize(p) if isinstance(p, str) else list(p) for p in prompts]
        outside = [t for row in rows for t in row if not 0 <= t < self.backend.vocab_size]
        if outside:
            return 400, {"error": {"message": f"Token id {outside[0]} is out of vocabulary", "code": 400}}
        by_id = b.vllm and bool(body.get("return_tokens_as_token_ids"))
        n = int(body.get("n") or 1)
        if n > 1 and b.vllm:  # vLLM's n: n samples of one prompt under the request's one seed
            return 200, {"object": "text_completion", "model": b.name, "choices": self._samples(rows, body, n, by_id)}
        choices = [self._choice(i, row, body, k, by_id) for i, row in enumerate(rows)]
        if b.short and len(choices) > 1:
            choices = choices[:-1]
        return 200, {"object": "text_completion", "model": b.name, "choices": choices}

    def _samples(self, rows: list[list[int]], body: dict[str, Any], n: int, by_id: bool) -> list[dict[str, Any]]:
        """One-token samples only (what lm.draws asks), through the backend's own sampler."""
        [row] = rows
        assert int(body.get("max_tokens", 16)) == 1, "the fake server's n serves one-token draws"
        top_k = body.get("top_k", -1)
        sampling = Sampling(body.get("temperature", 1.0), body.get("top_p", 1.0), None if top_k in (-1, 0) else top_k)
        drawn = self.backend.draws(row, Policy(sampling, int(body.get("seed") or 0)), n)
        return [
            {
                "index": i,
                "text": self.backend.detokenize([token]),
                "finish_reason": "length",
                "logprobs": {
                    "tokens": [self._name(token, by_id)],
                    "token_logprobs": [float(drawn.numbers.values[token])],
                    "top_logprobs": [{self._name(token, by_id): float(drawn.numbers.values[token])}],
                },
            }
            for i, token in enumerate(drawn.tokens)
        ]

    def _name(self, token: int, by_id: bool) -> str:
        return f"token_id:{token}" if by_id else self.backend.detokenize([token])

    def _top(self, row: list[int], k: int, by_id: bool, also: int | None = None) -> dict[str, float]:
        [numbers] = self.backend.next_logprobs([row])
        values = numbers.values
        best = sorted(range(len(values)), key=lambda i: -float(values[i]))[:k]
        if also is not None and also not in best:
            best.append(also)
        return {self._name(i, by_id): float(values[i]) for i in best}

    def _choice(self, index: int, row: list[int], body: dict[str, Any], k: int, by_id: bool) -> dict[str, Any]:
        temperature = body.get("temperature", 1.0)
        if temperature == 0:
            policy = Policy()
        else:
            top_k = body.get("top_k", -1)
            sampling = Sampling(temperature, body.get("top_p", 1.0), None if top_k in (-1, 0, None) else top_k)
            policy = Policy(sampling, int(body.get("seed") or 0))
        [decoded] = self.backend.generate([row], int(body.get("max_tokens", 16)), [policy])
        ids, read = list(decoded.ids), list(row)
        tokens, token_logprobs, tops = [], [], []
        for token in ids:
            tokens.append(self._name(token, by_id))
            token_logprobs.append(float(self.backend.next_logprobs([read])[0].values[token]))
            tops.append(self._top(read, max(k, 1), by_id, also=token))
            read.append(token)
        choice: dict[str, Any] = {"index": index, "text": self.backend.detokenize(ids), "finish_reason": "length"}
        if body.get("echo") and self.behaviour.echo:
            choice["text"] = self.backend.detokenize(row) + choice["text"]
            echoed = [self._name(t, by_id) for t in row]
            shift = 1 if self.behaviour.echo_shifted else 0
            values = [None] + [
                float(self.backend.next_logprobs([row[: i + shift]])[0].values[row[i]]) for i in range(1, len(row))
            ]
            top_prompt = [None] + [
                self._top(row[: i + shift], max(k, 1), by_id, also=row[i]) for i in range(1, len(row))
            ]
            tokens, token_logprobs, tops = echoed + tokens, values + token_logprobs, top_prompt + tops
        choice["logprobs"] = {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": tops} if k else None
        wanted = body.get("prompt_logprobs")
        if wanted is not None and self.behaviour.prompt_logprobs:
            choice["prompt_logprobs"] = [None] + [
                self._ranked(row[:i], row[i], int(wanted)) for i in range(1, len(row))
            ]
        return choice

    def _ranked(self, row: list[int], actual: int, k: int) -> dict[str, Any]:
        [numbers] = self.backend.next_logprobs([row])
        values = numbers.values
        order = sorted(range(len(values)), key=lambda i: -float(values[i]))
        shown = order[:k] + ([actual] if actual not in order[:k] else [])
        return {
            str(i): {
                "logprob": float(values[i]),
                "rank": order.index(i) + 1,
                "decoded_token": self.backend.detokenize([i]),
            }
            for i in shown
        }
