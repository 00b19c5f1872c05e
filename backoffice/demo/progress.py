"""Progress of a demo phase: click's bar on a terminal, and a line per tenth of the way elsewhere.

`make demo` is often run where stdout is no terminal (CI, a log file, a pipe), and click's bar then prints
nothing until the end; a phase of several minutes must still say that it is moving.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

STEPS = 10


@contextmanager
def phase(label: str, total: int, *, terminal: bool | None = None) -> Iterator[Callable[[int], None]]:
    """Yield `advance(done)` for a phase of `total` steps; print its progress one way or the other, then its time."""
    terminal = sys.stdout.isatty() if terminal is None else terminal
    started = time.monotonic()
    total = max(total, 1)
    if terminal:
        with click.progressbar(length=total, label=label) as bar:
            yield lambda done: bar.update(min(done, total) - bar.pos)
        return
    click.echo(f"{label}: started ({total} steps)")
    reported = 0

    def advance(done: int) -> None:
        nonlocal reported
        tenth = min(done, total) * STEPS // total
        if tenth > reported:
            reported = tenth
            click.echo(f"{label}: {tenth * 100 // STEPS} % ({min(done, total)}/{total})")

    yield advance
    click.echo(f"{label}: done in {time.monotonic() - started:.0f} s")
