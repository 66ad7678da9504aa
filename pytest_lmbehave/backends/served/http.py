"""Talking to an OpenAI-compatible server (vLLM, SGLang, llama.cpp's server): the openai client for completions, with
its bounded retries and timeouts, plus the engine's own endpoints (/version, /tokenize, /detokenize) by URL.

Every failure becomes one of the plugin's errors: a request the server refuses (``ServerRefused``, with its own
words and the request, which fails the test: only what the probe found missing skips a spec) or a server that
cannot be reached (``ServerGone``, which ends the run with one message).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ...config.errors import BackendGone, LMBehaveError

RETRIES = 3  # connection errors and 5xx answers are retried with the client's bounded exponential backoff


class ServerGone(BackendGone):
    """The server stopped answering: the run ends here, with this message, and no file is left half-written."""


class ServerRefused(LMBehaveError):
    """The server refused a request (HTTP 4xx) that the probe did not predict: the test fails with the request and
    the server's own words, since a request the plugin gets wrong must never pass as a skip."""


class ServerAnswer(LMBehaveError):
    """The server answered a request in a shape it cannot have meant (fewer choices than prompts, ...)."""


def summary(body: dict[str, Any]) -> str:
    """A request in one line, ids counted rather than listed: what a failure names."""
    parts = []
    for key, value in body.items():
        if key == "prompt" and isinstance(value, list):
            rows = value if value and isinstance(value[0], list) else [value]
            sizes = sorted(len(r) for r in rows)
            spread = f"{sizes[0]}" if sizes[0] == sizes[-1] else f"{sizes[0]}-{sizes[-1]}"
            parts.append(f"prompt={len(rows)} row(s) of {spread} token ids")
        elif key == "tokens" and isinstance(value, list):
            parts.append(f"tokens={len(value)} id(s)")
        else:
            parts.append(f"{key}={value!r}")
    return ", ".join(parts)


def split_spec(spec: str) -> tuple[str, str | None]:
    """'http://host:8000/v1#name' -> ('http://host:8000/v1', 'name'); the name is optional."""
    url, _, name = spec.strip().partition("#")
    url = url.rstrip("/")
    if not url.endswith("/v1"):
        url += "/v1"
    return url, name or None


def is_served(spec: str) -> bool:
    return spec.strip().startswith(("http://", "https://"))


def root_of(url: str) -> str:
    """The server's root (where vLLM keeps /version, /tokenize, /health), from its OpenAI base URL."""
    parts = urlsplit(url)
    path = parts.path[: -len("/v1")] if parts.path.endswith("/v1") else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


class Client:
    def __init__(self, url: str, timeout: float, api_key: str | None = None) -> None:
        import openai

        self.url = url
        self.root = root_of(url)
        self.openai = openai
        self.client = openai.OpenAI(base_url=url, api_key=api_key or "EMPTY", max_retries=RETRIES, timeout=timeout)

    def _call(self, what: str, call: Any, body: dict[str, Any] | None = None) -> Any:
        __tracebackhide__ = True
        openai = self.openai
        try:
            return call()
        except (openai.APIConnectionError, openai.APITimeoutError) as error:
            raise ServerGone(
                f"the server at {self.url} stopped answering ({type(error).__name__}: {error}) after {RETRIES} "
                f"retries, during {what}; check that it is running (curl {self.root}/health)"
            ) from None
        except openai.APIStatusError as error:
            if error.status_code >= 500:
                raise ServerGone(
                    f"the server at {self.url} failed {what} with HTTP {error.status_code} after {RETRIES} retries: "
                    f"{_message(error)}"
                ) from None
            request = f" (request: {summary(body)})" if body else ""
            raise ServerRefused(
                f"the server at {self.url} refused {what} with HTTP {error.status_code}: {_message(error)}{request}"
            ) from None

    def complete(self, what: str, **body: Any) -> list[dict[str, Any]]:
        """The choices of one completions request, as plain dicts (vLLM's extra fields included)."""
        standard = {"model", "prompt", "max_tokens", "temperature", "top_p", "logprobs", "echo", "seed", "n"}
        known = {k: v for k, v in body.items() if k in standard and v is not None}
        extra = {k: v for k, v in body.items() if k not in standard and v is not None}
        response = self._call(what, lambda: self.client.completions.create(**known, extra_body=extra), body)
        choices = [choice.to_dict() for choice in response.choices]
        prompt = body.get("prompt")
        wanted = len(prompt) if isinstance(prompt, list) and prompt and isinstance(prompt[0], list) else 1
        wanted *= int(body.get("n") or 1)  # n choices per prompt
        if len(choices) != wanted or sorted(int(c.get("index", 0)) for c in choices) != list(range(wanted)):
            raise ServerAnswer(
                f"the server at {self.url} answered {what} with {len(choices)} choice(s) (indices "
                f"{sorted(int(c.get('index', 0)) for c in choices)}) for {wanted} prompt(s); every prompt needs its "
                f"own (request: {summary(body)})"
            )
        return sorted(choices, key=lambda c: int(c.get("index", 0)))

    def models(self) -> list[dict[str, Any]]:
        return [m.to_dict() for m in self._call("listing its models", lambda: self.client.models.list()).data]

    def get(self, path: str, what: str) -> Any:
        return self._call(what, lambda: self.client.get(self.root + path, cast_to=object))

    def post(self, path: str, what: str, body: dict[str, Any]) -> Any:
        return self._call(what, lambda: self.client.post(self.root + path, body=body, cast_to=object), body)


def _message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return str(error)
