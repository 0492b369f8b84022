"""app.connections in-process: the log throttle and the open-files limit (the protocol itself
is tested over real sockets in test_serving.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from app.connections import RESERVED_FDS, LogThrottle
from quality.server import ROOT


def test_the_throttle_reports_at_once_then_once_per_interval_and_loses_no_count():
    now, reports, scheduled = [0.0], [], []
    throttle = LogThrottle(
        reports.append,
        every=10.0,
        clock=lambda: now[0],
        later=lambda delay, callback: scheduled.append((delay, callback)),
    )
    throttle.event()
    assert reports == [1] and scheduled == []
    now[0] = 4.0
    for _ in range(999):
        throttle.event()
    assert reports == [1] and [delay for delay, _ in scheduled] == [6.0]  # one report pending, at the interval's end
    now[0] = 10.0
    scheduled.pop()[1]()
    assert reports == [1, 999]
    now[0] = 25.0
    throttle.event()  # more than an interval after the last report: at once
    assert reports == [1, 999, 1] and scheduled == []


def open_files_limit_after(soft: int, hard: int, max_connections: int) -> tuple[str, str]:
    """fit_open_files_limit in a fresh process whose limit is (soft, hard): (new soft limit, warning)."""
    script = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
        from app.connections import fit_open_files_limit
        warning = fit_open_files_limit({max_connections})
        print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        print(warning)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    new_soft, warning = done.stdout.splitlines()
    return new_soft, warning


def test_the_soft_limit_is_raised_to_fit_the_connections():
    assert open_files_limit_after(512, 4096, 1000) == (str(1000 + RESERVED_FDS), "None")


def test_a_hard_limit_too_low_for_the_connections_is_reported():
    new_soft, warning = open_files_limit_after(512, 1024, 1000)
    assert new_soft == "1024"
    assert "PCCLIP_MAX_CONNECTIONS=1000" in warning and "only 1024" in warning and "ulimit -Hn" in warning


def test_a_limit_that_fits_is_left_alone():
    assert open_files_limit_after(4096, 4096, 100) == ("4096", "None")
