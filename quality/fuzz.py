"""Fuzz the running service from its own OpenAPI document with schemathesis (`make fuzz`).

A real server on 127.0.0.1 (the embedded `tiny` model, a fresh index, a tiny random SDXL so
`/generate` runs, an API key) is attacked with generated requests on every operation — valid,
invalid and stateful sequences (add → get → delete) — and every response is checked:

  not_a_server_error        no 5xx, ever (the gate of the issue)
  status_code_conformance   every status code is documented
  content_type_conformance  every response has its documented media type
  response_schema_conformance / response_headers_conformance
  negative_data_rejection   what the schema forbids is refused
  missing_required_header, ignored_auth   the API key is enforced
  use_after_free, ensure_resource_availability, unsupported_method, allow_header_conformance

Left out, on purpose (quality/schemathesis.toml): positive_data_acceptance — schema-valid is not
always servable: random base64 is not an image, and limits such as PCCLIP_MAX_TEXT_CHARS are
server settings; and negative_data_rejection on the multipart uploads, whose fields are strings
on the wire.

The server's own Prometheus counters give the request and 5xx totals, independently of
schemathesis. Prints a JSON summary; exits 1 on any failure or when fewer requests than
`--min-requests` were served.

    python -m quality.fuzz                       # the full run (≥ 1,000 requests)
    python -m quality.fuzz --examples 5 --min-requests 100
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from quality.server import ROOT, Server, loopback_server

CONFIG = Path(__file__).with_name("schemathesis.toml")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100, help="generated cases per operation and phase")
    parser.add_argument("--seed", type=int, default=20261128, help="schemathesis seed (same seed, same run)")
    parser.add_argument("--workers", type=int, default=2, help="concurrent schemathesis workers")
    parser.add_argument("--min-requests", type=int, default=1000, help="fail when the server saw fewer requests")
    parser.add_argument("--max-time", type=float, default=None, help="stop generating after this many seconds")
    parser.add_argument("--report-dir", type=Path, default=None, help="keep schemathesis' JUnit report here")
    return parser.parse_args(argv)


def server_settings(scratch: Path, api_key: str) -> dict[str, str]:
    """The fuzzed server: tiny model, fresh index, tiny SDXL, an API key, small generation limits."""
    from models.generation.tiny import build_tiny_sdxl

    sdxl = scratch / "sdxl"
    build_tiny_sdxl(seed=0).save_pretrained(sdxl)
    return {
        "PCCLIP_MODEL": "tiny",
        "PCCLIP_DEVICE": "cpu",
        "PCCLIP_TORCH_THREADS": "1",
        "PCCLIP_INDEX_DIR": str(scratch / "index"),
        "PCCLIP_SDXL_MODEL": str(sdxl),
        "PCCLIP_API_KEY": api_key,
        # A 2048² job of 100 steps is valid, but minutes of CPU for a toy model; these keep it brief.
        "PCCLIP_GENERATION_MAX_SIDE": "256",
        "PCCLIP_GENERATION_MAX_STEPS": "4",
    }


def answered(server: Server, api_key: str) -> Counter[tuple[str, str, str]]:
    """Requests the server answered so far by (method, route, status): its Prometheus counter."""
    text = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {api_key}"}, timeout=10).text
    counts: Counter[tuple[str, str, str]] = Counter()
    for line in text.splitlines():
        if line.startswith("pcclip_requests_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            counts[labels["method"], labels["route"], labels["status"]] += int(float(line.rsplit(" ", 1)[1]))
    return counts


def run_schemathesis(server: Server, api_key: str, args: argparse.Namespace, report_dir: Path) -> tuple[int, str]:
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", f"{server.url}/openapi.json",
        "--max-examples", str(args.examples),
        "--seed", str(args.seed),
        "--workers", str(args.workers),
        "--report", "junit",
        "--report-dir", str(report_dir),
    ]  # fmt: skip
    if args.max_time:
        command += ["--max-time", str(args.max_time)]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false", "PCCLIP_FUZZ_API_KEY": api_key}
    done = subprocess.run(command, cwd=report_dir, env=env, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def summarize(output: str) -> dict[str, object]:
    """The figures schemathesis prints at the end: cases generated, failures by kind."""
    generated = re.search(r"(\d+) generated", output)
    failures = dict(re.findall(r"❌ (ST\d+ [^:\n]+): (\d+)", output))
    links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", output)
    return {
        "cases_generated": int(generated.group(1)) if generated else 0,
        "failures": failures,
        "stateful_links_covered": f"{links.group(1)}/{links.group(2)}" if links else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    api_key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="pcclip-fuzz-") as scratch_name:
        scratch = Path(scratch_name)
        report_dir = args.report_dir or scratch / "report"
        report_dir.mkdir(parents=True, exist_ok=True)
        with loopback_server(server_settings(scratch, api_key), require=("index", "generator")) as server:
            rss_before = server.rss_bytes()
            before = answered(server, api_key)  # the start-up's /ready polls (503 while loading) are not the fuzzer's
            code, output = run_schemathesis(server, api_key, args, report_dir)
            alive = server.alive()
            ready = alive and httpx.get(f"{server.url}/ready", timeout=10).status_code == 200
            counts = answered(server, api_key) - before if alive else Counter()
            rss_after = server.rss_bytes() if alive else 0
            log_tail = server.log_tail()
    by_status = Counter()
    for (_, _, status), n in counts.items():
        by_status[status] += n
    served = sum(by_status.values())
    errors = {f"{method} {route} {status}": n for (method, route, status), n in counts.items() if status[0] == "5"}
    server_errors = sum(errors.values())
    summary = {
        "gate": "fuzz",
        "seed": args.seed,
        "examples_per_operation": args.examples,
        **summarize(output),
        "requests_served": served,
        "status_counts": dict(sorted(by_status.items())),
        "server_errors_5xx": server_errors,
        "server_errors_by_route": errors,
        "server_alive_and_ready_after": ready,
        "rss_mb_before_after": [round(rss_before / 2**20, 1), round(rss_after / 2**20, 1)],
        "schemathesis_exit": code,
        "wall_s": round(time.monotonic() - started, 1),
    }
    failed = code != 0 or server_errors or not ready or served < args.min_requests
    if failed:
        print(output[-20000:], file=sys.stderr)
        if not ready:
            print(f"server log:\n{log_tail}", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    print(("FAIL" if failed else "PASS") + f": {served} requests, {server_errors} answered 5xx", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
