"""Talking to an OpenAI-compatible server (vLLM, SGLang, llama.cpp's server): the openai client for completions, with
its bounded retries and timeouts, plus the engine's own endpoints (/version, /tokenize, /detokenize) by URL.

Every failure becomes one of the plugin's errors: a request the server refuses (``ServerRefused``, with its own
words) or a server that cannot be reached (``ServerGone``, which ends the run with one message).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import BackendUnavailable

RETRIES = 3  # connection errors and 5xx answers are retried with the client's bounded exponential backoff


class ServerGone(BackendUnavailable):
    """The server stopped answering: the run ends here, with this message, and no file is left half-written."""


class ServerRefused(BackendUnavailable):
    """The server refused a request with its own words (vLLM takes temperatures up to 2): the spec cannot run on
    this server, and is skipped with them."""


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

    def _call(self, what: str, call: Any) -> Any:
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
            raise ServerRefused(f"the server at {self.url} refused {what}: {_message(error)}") from None

    def complete(self, what: str, **body: Any) -> list[dict[str, Any]]:
        """The choices of one completions request, as plain dicts (vLLM's extra fields included)."""
        standard = {"model", "prompt", "max_tokens", "temperature", "top_p", "logprobs", "echo", "seed", "n"}
        known = {k: v for k, v in body.items() if k in standard and v is not None}
        extra = {k: v for k, v in body.items() if k not in standard and v is not None}
        response = self._call(what, lambda: self.client.completions.create(**known, extra_body=extra))
        return [choice.to_dict() for choice in response.choices]

    def models(self) -> list[dict[str, Any]]:
        return [m.to_dict() for m in self._call("listing its models", lambda: self.client.models.list()).data]

    def get(self, path: str, what: str) -> Any:
        return self._call(what, lambda: self.client.get(self.root + path, cast_to=object))

    def post(self, path: str, what: str, body: dict[str, Any]) -> Any:
        return self._call(what, lambda: self.client.post(self.root + path, body=body, cast_to=object))


def _message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return str(error)
