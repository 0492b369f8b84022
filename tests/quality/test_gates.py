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
