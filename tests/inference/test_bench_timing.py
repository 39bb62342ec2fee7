"""`interleaved_times`: every runner once per round, rotating order; the settle pause is idle
time before a call, never counted in it."""

from __future__ import annotations

import itertools
import time

from mistd.inference.bench import interleaved_times


def test_rounds_rotate_and_the_settle_pause_is_not_timed():
    calls: list[str] = []

    def runner(name: str):
        def run():
            sum(range(20_000))  # busy on the CPU, or the call would be redone as disturbed
            calls.append(name)

        return run

    runners = {name: runner(name) for name in ("a", "b", "c")}
    start = time.perf_counter()
    settle = 0.05
    times = interleaved_times(runners, repeats=3, warmup=1, settle=settle)
    elapsed = time.perf_counter() - start
    # after the warmup round; a call redone on a busy machine (too little CPU) repeats its name
    order = [name for name, _ in itertools.groupby(calls[3:])]
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    # a timed call that held a pause would last at least `settle`
    assert all(len(wall) == 3 and max(wall) < settle for wall, _ in times.values())
    assert elapsed >= 9 * settle  # the pauses happened, outside the timed calls
