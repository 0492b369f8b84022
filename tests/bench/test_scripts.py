"""Every `bench/` script starts: its imports (other bench modules among them) resolve and it prints its usage."""

from __future__ import annotations

import pytest
from benchrun import ROOT, bench_process

SCRIPTS = sorted(path.name for path in (ROOT / "bench").glob("*.py") if "__main__" in path.read_text())


def test_the_scripts_are_found():
    assert {"peers.py", "serve.py", "stages.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_script_prints_its_usage(script):
    result = bench_process(script, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
