"""/generate with a tiny random SDXL saved to disk and loaded back like real weights.

The tiny pipeline draws noise; these tests check the plumbing: jobs, progress, cancellation,
the bounded queue, reproducibility, who fills SDXL's text_encoder slot, and the arithmetic.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import open_clip
import pytest
import torch
from apptools import make_settings
from open_clip.transform import image_transform
from PIL import Image

from app.main import create_app
from app.services.generation import EVENT_POLL_S
from models import Encoder
from models.generation.pipeline import Edit, SDXLBridge, pipeline_view
from models.generation.tiny import tiny_text_cfg

JOB = {"prompt": "a photo of a forest", "steps": 2, "width": 32, "height": 32, "seed": 7}


@pytest.fixture(scope="session")
def clip_encoder():
    """A served model whose text tower has the architecture of the tiny SDXL's text_encoder."""
    torch.manual_seed(3)
    vision = {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16}
    model = open_clip.CLIP(embed_dim=24, vision_cfg=vision, text_cfg=tiny_text_cfg(), quick_gelu=True).eval()
    return Encoder(
        model=model, preprocess=image_transform(32, is_train=False), tokenizer=open_clip.SimpleTokenizer(),
        spec="test-clip", fingerprint="c" * 64, device=torch.device("cpu"), dtype=torch.float32, base="test-clip",
    )


@pytest.fixture
def gen_client(make_client, sdxl_dir, sdxl_pipe, clip_encoder):
    """gen_client(encoder=None, from_disk=False, **settings) → a client whose generator is ready.

    `from_disk` loads the saved pipeline with the server's own loader; otherwise the app gets a
    view of the session's loaded pipeline (loading costs seconds on a busy machine)."""

    def make(encoder=None, from_disk=False, **overrides):
        settings = make_settings(sdxl_model=str(sdxl_dir), **overrides)
        loaders = {} if from_disk else {"sdxl_loader": lambda _settings: pipeline_view(sdxl_pipe)}
        client = make_client(create_app(settings, encoder=encoder or clip_encoder, **loaders))
        deadline = time.monotonic() + 30
        while client.get("/ready").json()["generator"]["state"] == "loading":
            assert time.monotonic() < deadline, "generator still loading"
            time.sleep(0.05)
        assert client.get("/ready").json()["generator"] == {"state": "ready", "detail": None}
        return client

    return make


def wait_finished(client, job_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/generate/{job_id}").json()
        if body["status"] in ("done", "failed", "cancelled"):
            return body
        time.sleep(0.02)
    pytest.fail(f"job {job_id} did not finish")


def image_of(body: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(body["image_png_b64"])))


def gate(client):
    """Hold the worker inside its first denoising step until `release` is set."""
    manager = client.app.state.generator_slot.require().jobs
    entered, release, run = threading.Event(), threading.Event(), manager.runner

    def gated(request, on_step):
        def step(done, total):
            entered.set()
            release.wait(10)
            on_step(done, total)

        return run(request, step)

    manager.runner = gated
    return entered, release


def pace(client, seconds: float) -> None:
    """Make every denoising step last `seconds` after it reports, so a poller sees each step."""
    manager = client.app.state.generator_slot.require().jobs
    run = manager.runner

    def paced(request, on_step):
        def step(done, total):
            on_step(done, total)
            time.sleep(seconds)

        return run(request, step)

    manager.runner = paced


def test_without_sdxl_weights_generation_is_503_and_info_says_why(client):
    refused = client.post("/generate", json=JOB)
    assert refused.status_code == 503
    assert "PCCLIP_SDXL_MODEL" in refused.json()["detail"]
    assert client.get("/generate/abc").status_code == 503
    info = client.get("/info").json()
    assert info["capabilities"]["generation"] is False
    assert info["generation"]["state"] == "unavailable" and "PCCLIP_SDXL_MODEL" in info["generation"]["detail"]
    ready = client.get("/ready")
    assert ready.json()["generator"]["state"] == "unavailable"
    assert ready.json()["model"]["state"] == "ready"


def test_job_lifecycle_with_pcclip_in_the_text_encoder_slot(gen_client):
    client = gen_client(from_disk=True)  # the server's own loader, from the saved folder
    info = client.get("/info").json()
    assert info["capabilities"]["generation"] is True
    assert info["generation"]["pcclip_in_slot"] is True
    assert "PC-CLIP test-clip" in info["generation"]["encoders"]["text_encoder"]

    pace(client, 4 * EVENT_POLL_S)  # the stream polls: steps faster than it would be merged (a flaky test)
    accepted = client.post("/generate", json={**JOB, "steps": 4, "edits": [{"text": "snowier", "weight": 0.8}]})
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    assert accepted.json()["events_url"] == f"/generate/{job_id}/events"

    events = []
    with client.stream("GET", f"/generate/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    progress = [event["progress"] for event in events]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert len(set(progress)) >= 3  # steps were reported as they happened, not only at the end
    assert events[-1]["status"] == "done" and events[-1]["image_png_b64"] is None  # events carry no image

    body = client.get(f"/generate/{job_id}").json()
    assert body["status"] == "done" and body["progress"] == 1.0 and body["seed"] == 7
    assert image_of(body).size == (32, 32)
    report = body["report"]
    assert report["pcclip_in_slot"] is True and report["fallback_reason"] is None
    assert report["edits"] == [{"text": "snowier", "weight": 0.8}]
    assert set(report["parts"]) == {"text_encoder", "text_encoder_2"}
    assert -1 <= report["pooled_cosine_to_prompt"] < 1  # the edit moved the pooled vector
    assert any("test-clip" in note for note in report["notes"])  # not SDXL's own ViT-L/14 base


def test_same_seed_same_image_and_edits_change_it(gen_client):
    client = gen_client()
    ids = [
        client.post("/generate", json=body).json()["job_id"]
        for body in (JOB, JOB, {**JOB, "seed": 8}, {**JOB, "edits": [{"text": "at night", "weight": 2.0}]})
    ]
    images = [image_of(wait_finished(client, job_id)).tobytes() for job_id in ids]
    assert images[0] == images[1]
    assert images[2] != images[0]
    assert images[3] != images[0]
    # every job ran on a fresh scheduler: the pipeline's own never took a step
    assert client.app.state.generator_slot.require().bridge.pipe.scheduler.step_index is None


def test_cancel_a_running_job_and_a_queued_one(gen_client):
    client = gen_client()
    entered, release = gate(client)
    running = client.post("/generate", json=JOB).json()["job_id"]
    assert entered.wait(10)
    queued = client.post("/generate", json=JOB).json()["job_id"]
    assert client.get(f"/generate/{queued}").json()["queue_position"] == 0

    cancelled = client.post(f"/generate/{queued}/cancel").json()
    assert cancelled["status"] == "cancelled"  # at once: it never ran
    asked = client.post(f"/generate/{running}/cancel").json()
    assert asked["status"] == "running" and asked["cancel_requested"] is True
    release.set()
    body = wait_finished(client, running)
    assert body["status"] == "cancelled" and body["image_png_b64"] is None and body["progress"] < 1
    assert client.post("/generate/no-such-job/cancel").status_code == 404


def test_a_full_queue_answers_429(gen_client):
    client = gen_client(generation_queue_limit=1)
    entered, release = gate(client)
    first = client.post("/generate", json=JOB).json()["job_id"]
    assert entered.wait(10)  # running, so no longer queued
    second = client.post("/generate", json=JOB).json()["job_id"]
    refused = client.post("/generate", json=JOB)
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    release.set()
    assert [wait_finished(client, job)["status"] for job in (first, second)] == ["done", "done"]


def test_a_model_that_cannot_take_the_slot_falls_back_and_says_why(gen_client, encoder):
    client = gen_client(encoder=encoder)  # tiny-base: MiniLM text tower
    generation = client.get("/info").json()["generation"]
    assert generation["pcclip_in_slot"] is False
    assert "MiniLM" in generation["fallback_reason"]
    assert generation["encoders"]["text_encoder"].startswith("pipeline's own")
    body = wait_finished(client, client.post("/generate", json=JOB).json()["job_id"])
    assert body["status"] == "done"
    assert body["report"]["pcclip_in_slot"] is False and "MiniLM" in body["report"]["fallback_reason"]


def test_bad_requests_are_422_and_unknown_jobs_404(gen_client):
    client = gen_client()
    for change, where in [({"width": 36}, "width"), ({"steps": 101}, "steps"), ({"edits": [{"text": ""}]}, "edits")]:
        response = client.post("/generate", json={**JOB, **change})
        assert response.status_code == 422 and where in json.dumps(response.json()), change
    assert client.get("/generate/no-such-job").status_code == 404
    assert client.get("/generate/no-such-job/events").status_code == 404


def reference_states(encoder: Encoder, pipe, texts: list[str]):
    """What the documented formula needs, computed without the bridge: the text_encoder part
    with open_clip's own forward (output of the penultimate residual block), the rest with
    the pipeline's text_encoder_2."""
    ids = pipe.tokenizer(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    blocks = encoder.model.transformer.resblocks
    captured = []
    hook = blocks[-2].register_forward_hook(lambda _m, _i, out: captured.append(out))
    with torch.no_grad():
        encoder.model.encode_text(ids)
        hook.remove()
        out2 = pipe.text_encoder_2(ids, output_hidden_states=True)
    first = captured[0] if captured[0].shape[0] == len(texts) else captured[0].transpose(0, 1)
    return torch.cat([first, out2.hidden_states[-2]], dim=-1), out2.text_embeds  # (N, L, D), (N, P)


def test_edits_change_the_conditioning_exactly_as_documented(sdxl_pipe, clip_encoder):
    bridge = SDXLBridge(pipeline_view(sdxl_pipe), clip_encoder)
    assert bridge.pcclip_in_slot
    hidden, pooled = reference_states(clip_encoder, bridge.pipe, ["a forest", "", "snowier", "warmer light"])
    w = (0.8, -0.5)

    cond = bridge.encode("a forest", [Edit("snowier", w[0]), Edit("warmer light", w[1])])
    expected = hidden[0] + w[0] * (hidden[2] - hidden[1]) + w[1] * (hidden[3] - hidden[1])  # (L, D)
    expected_pooled = pooled[0] + w[0] * (pooled[2] - pooled[1]) + w[1] * (pooled[3] - pooled[1])
    torch.testing.assert_close(cond.prompt_embeds[0], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(cond.pooled_prompt_embeds[0], expected_pooled, atol=1e-5, rtol=0)
    torch.testing.assert_close(cond.prompt_embeds[0, 0], hidden[0, 0], atol=1e-6, rtol=0)  # start token kept
    assert torch.equal(cond.negative_prompt_embeds, torch.zeros_like(cond.prompt_embeds))  # force_zeros config
    cosine = torch.nn.functional.cosine_similarity(expected_pooled, pooled[0], dim=0)
    assert cond.report.pooled_cosine_to_prompt == pytest.approx(float(cosine), abs=1e-5)
    assert cond.report.parts["text_encoder"].mean_token_norm == pytest.approx(
        float(expected[:, :32].norm(dim=-1).mean()), abs=1e-4
    )

    plain = bridge.encode("a forest", [Edit("snowier", 0.0)])  # weight 0 = the prompt alone
    torch.testing.assert_close(plain.prompt_embeds[0], hidden[0], atol=1e-5, rtol=0)
    assert plain.report.pooled_cosine_to_prompt == pytest.approx(1.0, abs=1e-6)


def test_cli_generate_writes_pngs_and_a_report_and_compares_with_the_base(sdxl_dir, encoder, tmp_path):
    from app.commands import generate
    from models.generation.clip_score import clip_score, compare_arms

    generate(
        "a photo of a forest", edit=["snowier=0.5", "a=b"], steps=2, width=32, height=32, seed=3, count=2,
        model="tiny-base", sdxl_model=str(sdxl_dir), device="cpu", out=tmp_path, compare_base=True, target="snow",
    )
    report = json.loads((tmp_path / "generate.json").read_text())
    assert report["edits"] == [{"text": "snowier", "weight": 0.5}, {"text": "a=b", "weight": 1.0}]
    files = {(r["arm"], r["seed"]): tmp_path / r["file"] for r in report["images"]}
    assert set(files) == {("pcclip", 3), ("pcclip", 4), ("base", 3), ("base", 4)}
    # tiny-base cannot take the slot, so both arms use the pipeline's own encoders: same images
    assert all(r["report"]["pcclip_in_slot"] is False for r in report["images"])
    images = {key: Image.open(path).convert("RGB") for key, path in files.items()}
    assert images["pcclip", 3].tobytes() == images["base", 3].tobytes() != images["pcclip", 4].tobytes()

    scores = clip_score(encoder, [images["pcclip", 3], images["pcclip", 4]], "snow")  # (2,)
    recorded = [r["clip_score"] for r in report["images"] if r["arm"] == "pcclip"]
    assert scores.tolist() == pytest.approx(recorded, abs=1e-5)
    summary = compare_arms(encoder, {"pcclip": [images["pcclip", 3], images["pcclip", 4]]}, ["snow", "snow"])
    assert summary["pcclip"].n == 2 and summary["pcclip"].mean == pytest.approx(float(scores.mean()), abs=1e-6)
    assert report["scores"]["pcclip"]["n"] == 2
    assert report["scores"]["pcclip"]["mean"] == pytest.approx(summary["pcclip"].mean, abs=1e-5)
    assert report["scores"]["base"]["sem"] == pytest.approx(summary["pcclip"].sem, abs=1e-5)  # the same images


def test_the_bridge_leaves_the_pipeline_it_is_given_as_it_is(sdxl_pipe, clip_encoder):
    pipe = pipeline_view(sdxl_pipe)
    own, own_2 = pipe.text_encoder, pipe.text_encoder_2
    bridge = SDXLBridge(pipe, clip_encoder)
    assert bridge.pcclip_in_slot
    assert pipe.text_encoder is own and bridge.pipe.text_encoder is not own
    assert bridge.pipe.text_encoder_2 is own_2  # the other modules are shared, not copied
    assert SDXLBridge(pipe, None).pipe.text_encoder is own


def test_python_client_generates_follows_events_and_cancels(gen_client):
    from app.client import PcclipClient, PcclipError, generated_image

    api = PcclipClient(http=gen_client())
    accepted = api.generate("a forest", edits=[("snowier", 0.5)], steps=2, width=32, height=32, seed=1)
    progress = [event.progress for event in api.generation_events(accepted.job_id)]
    assert progress == sorted(progress) and progress[-1] == 1.0
    done = api.wait_generation(accepted.job_id)
    assert done.status == "done" and done.report.edits == [{"text": "snowier", "weight": 0.5}]
    assert generated_image(done).size == (32, 32)
    assert api.cancel_generation(accepted.job_id).status == "done"  # finished jobs stay as they are
    with pytest.raises(PcclipError) as missing:
        api.generation("nope")
    assert missing.value.status_code == 404
