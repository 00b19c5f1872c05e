"""A demo phase's progress where stdout is no terminal: a line per tenth of the way, then its time."""
from __future__ import annotations

import click
from click.testing import CliRunner

from backoffice.demo.progress import phase


def run(total: int, steps: list[int]) -> list[str]:
    @click.command()
    def command():
        with phase("Loading", total, terminal=False) as advance:
            for done in steps:
                advance(done)
    return CliRunner().invoke(command).output.splitlines()


def test_a_line_per_tenth_never_twice_and_the_time_at_the_end():
    lines = run(200, list(range(1, 201)))
    assert lines[0] == "Loading: started (200 steps)"
    assert lines[1:11] == [f"Loading: {tenth * 10} % ({tenth * 20}/200)" for tenth in range(1, 11)]
    assert lines[11].startswith("Loading: done in ") and len(lines) == 12


def test_big_jumps_report_where_they_land_and_an_empty_phase_ends():
    assert run(3, [2, 3])[1:3] == ["Loading: 60 % (2/3)", "Loading: 100 % (3/3)"]
    assert run(0, [])[0] == "Loading: started (1 steps)"
