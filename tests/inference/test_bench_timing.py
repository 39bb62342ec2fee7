"""`interleaved_times`: every runner once per round, rotating order; the settle pause is idle
time before a call, never counted in it."""

from __future__ import annotations

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
    times = interleaved_times(runners, repeats=3, warmup=1, settle=0.02)
    elapsed = time.perf_counter() - start
    assert calls[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # after the warmup round
    assert all(len(wall) == 3 and max(wall) < 0.01 for wall, _ in times.values())
    assert elapsed >= 9 * 0.02  # the pauses happened, outside the timed calls
