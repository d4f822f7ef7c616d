"""The virtual clock: real time flows, sleep jumps, timers fire at their due time."""
from __future__ import annotations

import threading
import time

from smmc_bench.fixtures.clock import VirtualClock


def test_sleep_jumps_without_waiting():
    clock = VirtualClock()
    before_wall = time.monotonic()
    before = clock.now()
    clock.sleep(3600)
    assert (clock.now() - before).total_seconds() >= 3600
    assert time.monotonic() - before_wall < 1.0


def test_timers_fire_in_order_at_their_due_time_during_a_jump():
    clock = VirtualClock()
    start = clock.monotonic()
    seen = []
    clock.call_later(600, lambda: seen.append(("b", clock.monotonic() - start)))
    clock.call_later(60, lambda: seen.append(("a", clock.monotonic() - start)))
    clock.call_later(7200, lambda: seen.append(("late", 0)))
    clock.sleep(900)
    assert [name for name, _ in seen] == ["a", "b"]
    assert 60 <= seen[0][1] < 61 and 600 <= seen[1][1] < 601
    assert clock.monotonic() - start >= 900


def test_cancelled_timer_never_fires():
    clock = VirtualClock()
    fired = []
    timer = clock.call_later(10, lambda: fired.append(1))
    timer.cancel()
    clock.sleep(20)
    assert fired == []


def test_real_time_reaches_a_timer():
    clock = VirtualClock()
    done = threading.Event()
    clock.call_later(0.05, done.set)
    assert done.wait(2.0)


def test_a_failing_callback_does_not_stop_time():
    clock = VirtualClock()
    fired = []

    def broken():
        raise RuntimeError("device bug")

    clock.call_later(1, broken)
    clock.call_later(2, lambda: fired.append(1))
    clock.sleep(3)
    assert fired == [1]


def test_a_timer_taken_by_real_time_fires_before_a_jump_passes_it():
    """Regression: the real-time thread took a due timer, another thread's sleep() jumped ahead
    before the callback ran, and the callback saw a time far past its due time."""
    clock = VirtualClock()
    taken = threading.Event()
    fire = clock._fire

    def slow_fire(timer):
        if threading.current_thread().name == "virtual-clock":
            taken.set()
            time.sleep(0.05)  # the window in which a jump used to slip in
        fire(timer)

    clock._fire = slow_fire
    seen = []
    due = clock.monotonic() + 0.01
    clock.call_at(due, lambda: seen.append(clock.monotonic() - due))
    assert taken.wait(2.0)
    clock.sleep(10)
    assert seen and seen[0] < 1.0, seen
