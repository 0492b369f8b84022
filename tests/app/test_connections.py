"""app.connections in-process: the log throttle and the open-files limit (the protocol itself
is tested over real sockets in test_serving.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from app.connections import RESERVED_FDS, LogThrottle
from quality.server import ROOT


def test_the_throttle_lets_one_line_through_per_interval_and_counts_the_rest():
    now = [0.0]
    throttle = LogThrottle(every=10.0, clock=lambda: now[0])
    assert throttle.due() == 1
    assert [throttle.due() for _ in range(999)] == [None] * 999
    now[0] = 9.9
    assert throttle.due() is None
    now[0] = 10.0
    assert throttle.due() == 1001  # the held ones and this one


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
