"""The option table's parsers: each reads one given value (command line, ini or environment) and names the fix
when it is wrong; ``for_argparse`` lends them to the `lmbehave` command's options."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Collection
from typing import TypeVar

from .errors import SettingsError

T = TypeVar("T")


def whole(minimum: int) -> Callable[[str, str], int]:
    def parse(name: str, value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(
                f"{name}={value!r} is not an integer; pass a whole number such as {name}={minimum}"
            ) from None
        if number < minimum:
            raise SettingsError(f"{name}={number} is too small; it must be at least {minimum}")
        return number

    return parse


def non_negative(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a number; pass e.g. {name}=0.001") from None
    if not number >= 0:
        raise SettingsError(f"{name}={number} must be a number >= 0")
    return number


def boolean(name: str, value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={value!r} is not a boolean; use true or false")


def one_of(allowed: Collection[str]) -> Callable[[str, str], str]:
    """One of ``allowed``, read when a value is parsed (a table's keys: a row added later counts)."""

    def parse(name: str, value: str) -> str:
        if value not in allowed:
            raise SettingsError(f"{name}={value!r} is not supported; choose one of: {', '.join(allowed)}")
        return value

    return parse


def optional(parse: Callable[[str, str], str]) -> Callable[[str, str], str | None]:
    """``parse``'s value, or None where none is given."""

    def read(name: str, value: str) -> str | None:
        return parse(name, value.strip()) if value.strip() else None

    return read


def text(name: str, value: str) -> str:
    return value.strip()


def model(name: str, value: str) -> str:
    if not value.strip():
        raise SettingsError(f"{name} is empty; pass 'embedded', a directory, a .gguf file or a hub id")
    return value.strip()


def variant(name: str, value: str) -> str | None:
    value = value.strip()
    if value and not re.fullmatch(r"[\w.-]+", value):
        raise SettingsError(f"{name}={value!r} must be a folder-safe name (letters, digits, '.', '-', '_')")
    return value or None


def for_argparse(parse: Callable[[str, str], T], flag: str) -> Callable[[str], T]:
    """One of these parsers as an argparse ``type`` for ``flag`` (the `lmbehave` command's options): the same check
    and the same words as the plugin's options."""

    def read(value: str) -> T:
        try:
            return parse(flag, value)
        except SettingsError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return read
