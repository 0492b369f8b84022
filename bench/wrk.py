"""wrk (Debian's `wrk`) as the load generator of the serving benchmarks.

One C thread with `concurrency` keep-alive connections posts JSON bodies in turn from a Lua
script: a closed loop like the httpx client's, at a small fraction of its CPU (at 64
connections the httpx client in the benchmark's own process cost 3.8–4.6 ms of CPU per request
on the cores the servers were measured on).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def available() -> bool:
    return shutil.which("wrk") is not None


def run(url: str, path: str, bodies: list[str], concurrency: int, seconds: float, timeout: float = 120.0) -> dict:
    """POST `bodies` (JSON texts, in turn) to `url` + `path`: rps, p50/p99 ms, ok and failed requests.

    timeout: seconds a request may take before wrk counts it failed (its own default, 2 s, fails
    a loaded CPU server's answers at concurrency 64).
    """
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as scratch:
        script = Path(scratch) / "bodies.lua"
        script.write_text(script_text(path, bodies))
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", f"--timeout={timeout:g}s", "--latency"]
        command += ["-s", str(script), url]
        report = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return figures(report)


def script_text(path: str, bodies: list[str]) -> str:
    """A wrk Lua script that POSTs the JSON `bodies` to `path`, one per request, in turn."""
    quoted = ",\n".join(json.dumps(body) for body in bodies)
    return (
        f"bodies = {{\n{quoted}\n}}\ni = 0\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n  i = i % #bodies + 1\n"
        f"  return wrk.format(nil, {json.dumps(path)}, nil, bodies[i])\nend\n"
    )


def figures(report: str) -> dict:
    """From wrk's --latency report: requests/s, mean, p50 and p99 latency (ms), `requests`
    (answered, any status), `ok` (answered 2xx) and `failed` (answered otherwise, or lost to a
    socket error or timeout, which wrk does not count among its requests)."""
    out: dict[str, float] = {}
    non_2xx = socket_errors = 0
    for line in report.splitlines():
        parts = line.split()
        if parts[:1] == ["Requests/sec:"]:
            out["rps"] = float(parts[1])
        elif parts[:1] == ["Latency"] and parts[1] != "Distribution":  # thread stats: avg, stdev, max
            out["mean_ms"] = _milliseconds(parts[1])
        elif parts[:1] in (["50%"], ["99%"]):
            out[f"p{parts[0][:-1]}_ms"] = _milliseconds(parts[1])
        elif "requests in" in line:
            out["requests"] = int(parts[0])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            non_2xx = int(parts[-1])
        elif line.strip().startswith("Socket errors:"):  # "connect 0, read 0, write 0, timeout 2"
            socket_errors = sum(int(word.rstrip(",")) for word in parts[3::2])
    missing = {"rps", "mean_ms", "p50_ms", "p99_ms", "requests"} - out.keys()
    if missing:
        raise RuntimeError(f"wrk's report lacks {sorted(missing)}:\n{report}")
    return out | {"ok": out["requests"] - non_2xx, "failed": non_2xx + socket_errors}


def client_option(parser: argparse.ArgumentParser) -> None:
    """The benchmarks' `--client` option: wrk where installed, else the httpx client in-process."""
    parser.add_argument(
        "--client", choices=["wrk", "httpx"], default="wrk" if available() else "httpx", help="load generator"
    )


def _milliseconds(text: str) -> float:
    """wrk prints "812.00us", "6.67ms", "1.20s", "1.00m"."""
    number = text.rstrip("usm")
    return float(number) * UNITS_MS[text[len(number) :]]
