"""Option value types: each checks its value where argparse parses it and says what it expects,
so `harkd bench --runs 0` is one line (`harkd bench: argument --runs: expected an integer >= 1,
got '0'`, `harkd.cli.CommandParser`) before anything runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `low`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


#: a count of one or more (runs, threads, workers, windows)
positive_int = int_at_least(1)
#: a count that may be zero (warm-up runs)
nonnegative_int = int_at_least(0)

#: torch intra-op threads of `harkd train`, `distill` and `evaluate`: on a 2-core machine shared
#: with another job, 1 thread trained several times faster than 2 (benchmarks/bench_threads.py)
DEFAULT_THREADS = 1
THREADS_HELP = (f"torch intra-op threads (>= 1; default {DEFAULT_THREADS}, the fastest measured "
                "on a shared machine: benchmarks/results/threads.md); 1 and 2 threads do not "
                "give bit-identical results")


def add_threads_option(parser: argparse.ArgumentParser, note: str = "") -> None:
    """`--threads N`, an integer >= 1 (None when not given: the command applies its default)."""
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help=THREADS_HELP + note)
