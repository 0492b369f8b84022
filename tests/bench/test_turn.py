"""bench/peer_load.Turn: the figures of one server at one level, from wrk's reports or latencies."""

from __future__ import annotations

import pytest

from bench.peer_load import Turn


def wrk_figures(requests: int, mean_ms: float, failed: int = 0) -> dict:
    return {"requests": requests, "ok": requests - failed, "failed": failed, "mean_ms": mean_ms,
            "p50_ms": mean_ms, "p99_ms": 2 * mean_ms, "rps": requests / 14}  # fmt: skip


def test_answers_in_waves_quantize_the_counted_rate_not_the_closed_loop_one():
    """64 clients answered in whole waves of 64 every 2.5 s: a 14 s turn counts 5 waves,
    a 16 s turn 6, while both have the same mean latency and so the same closed-loop rate."""
    short = Turn(64, seconds=14, wrk_turns=[wrk_figures(320, 2500)])
    longer = Turn(64, seconds=16, wrk_turns=[wrk_figures(384, 2500)])
    assert short.summary()["rps"] == pytest.approx(22.86)
    assert longer.summary()["rps"] == pytest.approx(24.0)
    assert short.summary()["rps_closed_loop"] == longer.summary()["rps_closed_loop"] == pytest.approx(25.6)


def test_turns_add_up_weighted_by_their_requests():
    turn = Turn(16)
    turn.add(Turn(16, seconds=10, wrk_turns=[wrk_figures(300, 100.0, failed=3)]))
    turn.add(Turn(16, seconds=10, wrk_turns=[wrk_figures(100, 500.0)]))
    summary = turn.summary()
    assert summary["mean_ms"] == 200.0 and summary["p99_ms"] == 400.0
    assert summary["ok"] == 397 and summary["errors"] == 3 and summary["rps"] == pytest.approx(19.85)
    assert summary["rps_closed_loop"] == pytest.approx(80.0)


def test_latencies_of_the_httpx_client_give_the_same_figures():
    turn = Turn(2, latencies=[0.1, 0.2, 0.3, 0.4], seconds=1.0)
    summary = turn.summary()
    assert summary["rps"] == 4.0 and summary["mean_ms"] == 250.0 and summary["p50_ms"] == 250.0
    assert summary["rps_closed_loop"] == pytest.approx(8.0)


def test_a_turn_without_answers_has_no_latency_or_closed_loop_rate():
    summary = Turn(8, seconds=5, errors=2).summary()
    assert summary["rps"] == 0.0 and summary["rps_closed_loop"] is None and summary["mean_ms"] is None
    assert Turn(8, seconds=5, wrk_turns=[wrk_figures(0, 0.0)]).summary()["rps_closed_loop"] is None
