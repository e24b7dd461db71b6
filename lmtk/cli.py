"""Command-line helpers shared by the tools: one-line errors and checked argument types."""

from __future__ import annotations

import argparse
import sys

__all__ = ["ArgumentParser", "frame_index", "positive_int", "print_error"]


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad option as one ``error:`` line (exit code 2), without the usage dump."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def frame_index(text: str) -> int:
    """An argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frame index, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a frame index >= 0, got {value}")
    return value


def print_error(error: BaseException) -> None:
    """Report ``error`` on stderr as one ``error:`` line (its message with whitespace runs collapsed)."""
    print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
