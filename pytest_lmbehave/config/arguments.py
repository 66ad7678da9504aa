"""argparse types for the `lmbehave` command: numbers checked where they are read, with a message that says why."""

from __future__ import annotations

import argparse


def non_negative(text: str) -> float:
    """An argparse type: a number >= 0 (a threshold below zero would call every change, or none, a near-tie)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a number >= 0")
    return value


def positive(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value
