"""A model's chat template: a conversation's messages rendered the way the model was trained to read them, with
the assistant's turn opened, as text and as the ids that text reads as. Each engine renders with the template it
serves: a transformers tokenizer's (here), llama.cpp's from the GGUF, a vLLM server's own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config.errors import InputError, NotApplicable

Messages = Sequence[dict[str, str]]  # [{"role": "user", "content": "..."}, ...]
Rendered = tuple[str, list[int]]  # the rendered text and its ids


def no_template(model: str) -> NotApplicable:
    return NotApplicable(
        f"{model} has no chat template, so lm.chat cannot know how this model reads a conversation. Use a chat or "
        "instruct model (its tokenizer_config.json or chat_template.jinja holds the template), or format the turn "
        "yourself and call lm.generate(prompt)"
    )


def refused(model: str, error: Exception) -> InputError:
    return InputError(
        f"{model}'s chat template refused these messages ({type(error).__name__}: {error}); pass the roles and "
        "order the template accepts (most take an optional system message, then user and assistant in turn)"
    )


def render_with(tokenizer: Any, messages: Messages, model: str) -> Rendered:
    """Render with a transformers tokenizer's own template (``apply_chat_template``); the ids are the text read
    without another BOS, as ``apply_chat_template(tokenize=True)`` reads it."""
    if not getattr(tokenizer, "chat_template", None):
        raise no_template(model)
    try:
        text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    except Exception as error:  # the template's own raise_exception, or a jinja2 error in it
        raise refused(model, error) from None
    return str(text), list(tokenizer(text, add_special_tokens=False)["input_ids"])
