"""The fast subset of `make fuzz` and `make soak`: the same scripts, smaller, against a real server."""

from __future__ import annotations

import json

from quality import fuzz, soak


def test_fuzzing_every_operation_from_the_openapi_document_finds_no_failure(capsys):
    code = fuzz.main(["--examples", "3", "--workers", "1", "--min-requests", "300"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["server_errors_5xx"] == 0
    assert report["failures"] == {}
    assert report["requests_served"] >= 300
    assert report["server_alive_and_ready_after"]


def test_a_short_soak_has_no_errors_and_overload_is_refused_fast_with_retry_after(capsys):
    code = soak.main(
        ["--duration", "8", "--clients", "8", "--overload-duration", "3", "--overload-clients", "32",
         "--max-refusal-p99-ms", "5000"]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report["failures"]
    assert report["soak"]["errors"] == 0 and report["soak"]["requests"] > 100
    assert {"POST /embed", "POST /search", "POST /index/items", "POST /generate"} <= set(report["soak"]["endpoints"])
    overload = report["overload"]
    assert overload["refused"] > 0 and overload["refusals_without_retry_after"] == 0
    assert report["after"] == {**report["after"], "alive": True, "health": 200, "ready": 200, "embed": 200}


def overload_report(**overload) -> dict:
    base = {"errors": 0, "refused": 10, "refusal_p99_ms": 400.0, "accepted": 5}
    after = {"alive": True, "health": 200, "ready": 200, "embed": 200}
    return {"soak": {"errors": 0}, "overload": {**base, **overload}, "after": after}


def test_the_overload_gate_weighs_an_embed_refusal_against_an_embed_done_not_a_queued_generate_job():
    args = soak.parse_args([])
    # Queued /generate jobs (202 at once) pull the accepted median below the refusals': no failure.
    fast_enough = overload_report(refusal_p50_ms=300.0, accepted_p50_ms=200.0,
                                  embed_refusal_p50_ms=300.0, embed_accepted_p50_ms=2500.0)  # fmt: skip
    assert soak.verdict(fast_enough, args) == []
    too_slow = overload_report(refusal_p50_ms=300.0, accepted_p50_ms=400.0,
                               embed_refusal_p50_ms=300.0, embed_accepted_p50_ms=250.0)  # fmt: skip
    assert soak.verdict(too_slow, args) == [
        "overload: /embed refusals (p50 300.0 ms) are no faster than embeds done (p50 250.0 ms)"
    ]
