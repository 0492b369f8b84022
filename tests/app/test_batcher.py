"""The micro-batcher, with a stand-in encoder whose forward passes the test controls."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from app.batcher import MicroBatcher, NonFiniteOutput, PixelBudget
from app.errors import NotReady, Overloaded


class GatedEncoder:
    """encode_*: row i = [value of item i, batch size]; blocks while `gate` is closed."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls: list[tuple[str, int]] = []
        self.chunks: list[int] = []  # the batch_size of each encode_pixels call

    def _run(self, kind: str, values: list[float]) -> torch.Tensor:
        self.entered.set()
        self.gate.wait(5)
        if any(v < 0 for v in values):
            raise ValueError("negative item")
        self.calls.append((kind, len(values)))
        return torch.tensor([[v, float(len(values))] for v in values])

    def encode_pixels(self, pixels: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        self.chunks.append(batch_size)
        return self._run("pixels", pixels[:, 0, 0, 0].tolist())

    def encode_texts(self, texts, batch_size: int = 256) -> torch.Tensor:
        return self._run("text", [float(t) for t in texts])


def pixels(*values: float) -> torch.Tensor:
    return torch.tensor(values).reshape(-1, 1, 1, 1).expand(-1, 3, 2, 2).contiguous()  # (n, 3, 2, 2)


@pytest.fixture
def encoder():  # shadows the real model: these tests are about queueing, not encoding
    return GatedEncoder()


def make(encoder, **options) -> MicroBatcher:
    return MicroBatcher(encoder, **{"max_batch": 8, "max_wait_ms": 0, "queue_limit": 100, **options})


def hold(encoder: GatedEncoder, batcher: MicroBatcher) -> None:
    """Occupy the worker with a one-item batch so later jobs pile up in the queue."""
    encoder.gate.clear()
    batcher.submit("pixels", pixels(99))
    assert encoder.entered.wait(5)


def test_queued_jobs_merge_into_one_forward_and_each_gets_its_rows(encoder):
    batcher = make(encoder)
    hold(encoder, batcher)
    futures = [batcher.submit("pixels", pixels(*range(10 * i, 10 * i + n))) for i, n in enumerate((1, 3, 2))]
    encoder.gate.set()
    results = [f.result(5) for f in futures]
    assert [r[:, 0].tolist() for r in results] == [[0.0], [10.0, 11.0, 12.0], [20.0, 21.0]]
    assert all((r[:, 1] == 6).all() for r in results)  # all six items went through one pass
    assert encoder.calls == [("pixels", 1), ("pixels", 6)]
    assert batcher.stats.largest_batch == 6
    batcher.close()


def test_batches_never_exceed_max_batch(encoder):
    batcher = make(encoder, max_batch=4)
    hold(encoder, batcher)
    futures = [batcher.submit("pixels", pixels(float(i), float(i))) for i in range(5)]  # 10 items
    encoder.gate.set()
    for i, f in enumerate(futures):
        assert f.result(5)[:, 0].tolist() == [float(i), float(i)]
    assert [n for _, n in encoder.calls[1:]] == [4, 4, 2]
    batcher.close()


def test_a_job_larger_than_max_batch_runs_alone(encoder):
    batcher = make(encoder, max_batch=2)
    assert batcher.submit("pixels", pixels(1, 2, 3, 4, 5)).result(5)[:, 0].tolist() == [1, 2, 3, 4, 5]
    batcher.close()


def test_texts_and_pixels_never_share_a_batch(encoder):
    batcher = make(encoder)
    hold(encoder, batcher)
    a = batcher.submit("text", ["1", "2"])
    b = batcher.submit("pixels", pixels(3))
    c = batcher.submit("text", ["4"])
    encoder.gate.set()
    assert a.result(5)[:, 0].tolist() == [1, 2] and c.result(5)[:, 0].tolist() == [4]
    assert b.result(5)[:, 0].tolist() == [3]
    assert sorted(encoder.calls[1:]) == [("pixels", 1), ("text", 3)]
    batcher.close()


def test_a_full_queue_is_refused_with_a_retry_hint(encoder):
    batcher = make(encoder, queue_limit=4)
    hold(encoder, batcher)
    batcher.submit("pixels", pixels(1, 2, 3))
    with pytest.raises(Overloaded) as refused:
        batcher.submit("pixels", pixels(4, 5))
    assert refused.value.retry_after > 0
    assert "queued" in refused.value.message
    assert batcher.queue_depth == 3
    batcher.submit("pixels", pixels(6))  # still fits exactly
    encoder.gate.set()
    batcher.close()


def test_requests_still_decoding_count_against_the_limit_and_are_refused_before_decoding(encoder):
    batcher = make(encoder, queue_limit=4)
    hold(encoder, batcher)
    with batcher.admit(3):  # a request decoding three images holds their room...
        with pytest.raises(Overloaded) as refused, batcher.admit(2):  # ...so the next one is refused early
            pytest.fail("admitted past the limit")
        assert "decoding" in refused.value.message
        with batcher.admit(1):
            pass
    with batcher.admit(4):  # the room is given back on exit, refused or not
        pass
    batcher.submit("pixels", pixels(1, 2, 3, 4))
    with pytest.raises(Overloaded), batcher.admit(1):
        pass
    encoder.gate.set()
    batcher.close()
    with pytest.raises(NotReady), batcher.admit(1):
        pass


def test_an_empty_queue_admits_a_job_over_the_limit(encoder):
    batcher = make(encoder, queue_limit=2)
    assert batcher.submit("pixels", pixels(1, 2, 3)).result(5)[:, 0].tolist() == [1, 2, 3]
    batcher.close()


def test_one_bad_job_does_not_fail_the_jobs_merged_with_it(encoder):
    batcher = make(encoder)
    hold(encoder, batcher)
    good = batcher.submit("pixels", pixels(1, 2))
    bad = batcher.submit("pixels", pixels(-1))
    also_good = batcher.submit("pixels", pixels(3))
    encoder.gate.set()
    assert good.result(5)[:, 0].tolist() == [1, 2]
    assert also_good.result(5)[:, 0].tolist() == [3]
    with pytest.raises(ValueError, match="negative"):
        bad.result(5)
    assert batcher.submit("pixels", pixels(7)).result(5)[:, 0].tolist() == [7]  # worker alive
    batcher.close()


def test_max_wait_lets_a_late_job_join(encoder):
    batcher = make(encoder, max_wait_ms=300)
    first = batcher.submit("pixels", pixels(1))
    time.sleep(0.05)
    second = batcher.submit("pixels", pixels(2))
    assert first.result(5)[:, 1].tolist() == [2.0] and second.result(5)[:, 1].tolist() == [2.0]
    batcher.close()


def test_cancelled_jobs_are_skipped(encoder):
    batcher = make(encoder)
    hold(encoder, batcher)
    gone = batcher.submit("pixels", pixels(1))
    kept = batcher.submit("pixels", pixels(2))
    assert gone.cancel()
    encoder.gate.set()
    assert kept.result(5)[:, 1].tolist() == [1.0]  # the cancelled item was not encoded
    batcher.close()


def test_close_fails_queued_jobs_and_refuses_new_ones(encoder):
    batcher = make(encoder)
    hold(encoder, batcher)
    queued = batcher.submit("pixels", pixels(1))
    closer = threading.Thread(target=batcher.close)
    closer.start()
    time.sleep(0.05)
    encoder.gate.set()
    closer.join(5)
    with pytest.raises(NotReady):
        queued.result(5)
    with pytest.raises(NotReady):
        batcher.submit("pixels", pixels(2))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pixels_beyond_the_budget_are_refused_until_decoded_images_give_theirs_back():
    clock = Clock()
    budget = PixelBudget(1000, clock=clock)
    with budget.hold(800) as release:  # a request of two 400-pixel images, decoding
        with pytest.raises(Overloaded) as refused, budget.hold(300):
            pytest.fail("admitted past the budget")
        assert "800 decoded image pixels in flight (limit 1000)" in refused.value.message
        clock.now += 4.0
        release(400)  # its first image is a tensor now: 4 s for 400 pixels
        assert budget.held == 400
        with budget.hold(300):
            assert budget.held == 700
        with pytest.raises(Overloaded) as refused, budget.hold(900):
            pass
        # Retry-After: the 300 pixels over the budget at the measured pace (a running mean).
        assert refused.value.retry_after == pytest.approx(300 * (0.9 * 2e-8 + 0.1 * 4.0 / 400))
    assert budget.held == 0


def test_a_failed_request_gives_its_pixels_back_and_an_empty_budget_admits_any_request():
    budget = PixelBudget(1000)
    with pytest.raises(ValueError), budget.hold(600) as release:
        release(100)
        raise ValueError("images[1]: corrupt image data")
    assert budget.held == 0
    with budget.hold(5000):  # larger than the budget, but nothing else is decoding
        assert budget.held == 5000
    assert budget.held == 0


def test_the_last_request_to_finish_decoding_after_a_burst_releases_free_memory():
    trims = []
    budget = PixelBudget(1000, trim_after=500, trim=lambda: trims.append(budget.held))
    with budget.hold(300), budget.hold(300):
        pass  # the inner one exits while the outer still decodes: no trim yet
    assert trims == [0]  # once, with nothing held
    with budget.hold(400):
        pass
    assert trims == [0]  # 400 pixels since the last trim: not a burst
    with pytest.raises(ValueError), budget.hold(200):
        raise ValueError("images[0]: corrupt image data")  # a failed request's pixels count too
    assert trims == [0, 0]


def test_images_run_in_forward_calls_of_image_chunk(encoder):
    assert make(encoder).image_chunk == 8  # max_batch by default
    batcher = make(encoder, image_chunk=3)
    batcher.submit("pixels", pixels(1, 2, 3, 4, 5)).result(5)
    assert encoder.chunks == [3]


def test_a_job_with_non_finite_rows_fails_alone():
    """The worker checks the rows (a model fault is never sent); the jobs merged with it get theirs."""

    class Faulty(GatedEncoder):
        def _run(self, kind, values):
            out = super()._run(kind, values)
            out[torch.tensor(values) == 7] = float("nan")
            return out

    encoder = Faulty()
    batcher = make(encoder)
    hold(encoder, batcher)
    good, bad = batcher.submit("pixels", pixels(1, 2)), batcher.submit("pixels", pixels(7))
    encoder.gate.set()
    assert good.result(5).tolist() == [[1.0, 3.0], [2.0, 3.0]]  # one forward of three items
    with pytest.raises(NonFiniteOutput):
        bad.result(5)


def test_a_batch_waits_patiently_for_image_requests_still_decoding(encoder):
    batcher = make(encoder, max_wait_ms=0, patience=1e6)  # waits up to a million times the last forward
    batcher.submit("pixels", pixels(0)).result(5)  # one forward timed, however short
    encoder.calls.clear()
    with batcher.admit(1):  # a request decoding its image
        first = batcher.submit("pixels", pixels(1))  # another, decoded: the model is free
        time.sleep(0.05)
        assert not first.done()  # kept for the one still decoding
    second = batcher.submit("pixels", pixels(2))
    assert first.result(5)[:, 1].tolist() == [2.0] and second.result(5)[:, 1].tolist() == [2.0]
    assert encoder.calls == [("pixels", 2)]
    batcher.close()


def test_patience_ends_when_the_decoding_request_fails_and_texts_never_wait(encoder):
    batcher = make(encoder, max_wait_ms=0, patience=1e6)
    batcher.submit("pixels", pixels(0)).result(5)
    batcher.submit("text", ["0"]).result(5)
    with pytest.raises(ValueError, match="broken image"), batcher.admit(1):
        alone = batcher.submit("pixels", pixels(1))
        text = batcher.submit("text", ["2"])
        assert text.result(5)[:, 0].tolist() == [2.0]  # texts do not wait for images
        raise ValueError("broken image")
    assert alone.result(5)[:, 1].tolist() == [1.0]  # ran as soon as the decoding request gave up
    batcher.close()


def test_no_patience_without_decoding_requests_or_when_turned_off(encoder):
    for batcher in (make(encoder, patience=1e6), make(encoder, patience=0.0)):
        batcher.submit("pixels", pixels(0)).result(5)
        if batcher.patience == 0.0:
            with batcher.admit(1):
                assert batcher.submit("pixels", pixels(1)).result(5)[:, 1].tolist() == [1.0]
        else:
            assert batcher.submit("pixels", pixels(1)).result(5)[:, 1].tolist() == [1.0]
        batcher.close()


def test_a_batch_smaller_than_the_last_waits_patiently_for_the_rest_of_its_wave(encoder):
    batcher = make(encoder, patience=1e6)
    hold(encoder, batcher)
    wave = [batcher.submit("text", [str(n)]) for n in range(3)]  # queued behind the held batch
    encoder.gate.set()
    assert [f.result(5)[:, 1].tolist() for f in wave] == [[3.0]] * 3  # the last text batch held 3
    encoder.calls.clear()
    early = batcher.submit("text", ["10"])
    time.sleep(0.05)
    assert not early.done()  # 1 < 3: the rest of its wave is likely on its way
    late = [batcher.submit("text", [str(n)]) for n in (11, 12)]
    assert [f.result(5)[:, 1].tolist() for f in (early, *late)] == [[3.0]] * 3
    assert encoder.calls == [("text", 3)]
    batcher.close()


def test_no_patience_when_jobs_were_already_waiting_as_the_model_came_free(encoder):
    batcher = make(encoder, patience=1e6)
    hold(encoder, batcher)
    wave = [batcher.submit("text", [str(n)]) for n in range(3)]
    encoder.gate.set()
    assert all(f.result(5) is not None for f in wave)  # the last text batch held 3
    hold(encoder, batcher)
    backlog = batcher.submit("text", ["7"])  # queued while the model is busy: it is the bottleneck
    encoder.gate.set()
    assert backlog.result(5)[:, 1].tolist() == [1.0]  # taken alone at once, though 1 < 3
    batcher.close()
