"""bench/peer_load.py: a turn starts only once the servers have finished their leftover work."""

from __future__ import annotations

import os
import time

import pytest

from bench.peer_load import process_cpu_s, wait_quiet


class FakeProcesses:
    """CPU seconds per pid that grow by `busy[i]` cores in the i-th window slept, then stay."""

    def __init__(self, busy: list[float]) -> None:
        self.busy = busy
        self.slept = 0
        self.cpu = 0.0

    def sleep(self, seconds: float) -> None:
        self.cpu += seconds * (self.busy[self.slept] if self.slept < len(self.busy) else 0.0)
        self.slept += 1

    def cpu_seconds(self, pid: int) -> float:
        return self.cpu / 2  # two processes share the load


def test_waits_until_the_processes_use_less_than_their_share_over_a_window():
    fake = FakeProcesses([2.0, 1.0, 0.2, 0.01])
    waited = wait_quiet([1, 2], window=0.5, cpu_seconds=fake.cpu_seconds, sleep=fake.sleep)
    assert waited == 2.0 and fake.slept == 4  # 0.2 of a core is still busy; 0.01 is quiet


def test_idle_processes_cost_one_window():
    fake = FakeProcesses([])
    assert wait_quiet([1], window=0.25, cpu_seconds=fake.cpu_seconds, sleep=fake.sleep) == 0.25


def test_processes_that_stay_busy_time_out():
    fake = FakeProcesses([1.0] * 100)
    with pytest.raises(TimeoutError, match=r"processes \[7\] still busy after 3 s"):
        wait_quiet([7], window=0.5, timeout=3, cpu_seconds=fake.cpu_seconds, sleep=fake.sleep)
    assert fake.slept == 6


def test_reads_a_real_process_cpu_time():
    before = process_cpu_s(os.getpid())
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    assert process_cpu_s(os.getpid()) - before >= 0.2  # clock ticks: at most 10 ms each way
