"""Where an image request's time goes in pcclip: per-stage CPU cost, against the served cost.

1. stages — the server's own functions, called in this process on the same 640×480 JPEG requests
   (`bench/peers.py`'s photos), each timed in CPU milliseconds per image: JSON parse, request
   validation, base64, JPEG decode, preprocess, the batched forward (`--batch` images a pass,
   like the server's batches), and the response (rows → `EmbedResponse` → JSON bytes, as
   FastAPI's fast path does; and the same through orjson).
2. served — a real server (`pcclip serve` on loopback) driven with one-image `/embed` requests at
   `--concurrency` for `--seconds`; its process CPU time (/proc) per request served. What the
   stages do not account for is the HTTP server, routing and the event loop.
3. profile (`--py-spy`) — py-spy samples the loaded server; samples are grouped by stage.

CPU time, unlike wall time, barely moves with the load other processes put on the machine.

    python bench/stages.py --model tiny --py-spy
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout, installed or not
from bench.peer_load import Payloads, Target, drive, native_body, photos, process_cpu_s  # noqa: E402
from quality.server import loopback_server  # noqa: E402

# py-spy frame prefixes → stage; a sample goes to the stage of its deepest matching frame.
STAGE_FRAMES = {
    "forward": ("encode_pixels (models/encoder.py", "_process (app/batcher.py"),
    "preprocess": ("pixels (models/encoder.py",),
    "decode": ("load_pixels (app/images.py", "open_image (app/images.py"),
    "base64": ("decode_b64 (app/images.py",),
    "parse+validate": ("json (starlette/requests.py", "request_body_to_args (fastapi/", "_validate_value"),
    "respond": ("embed (app/services/embedding.py", "serialize_response (fastapi/"),
    "http": ("h11_impl.py", "httptools_impl.py", "(h11/"),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="model spec")
    parser.add_argument("--batch", type=int, default=16, help="images per forward pass in the stage timing")
    parser.add_argument("--repeat", type=int, default=64, help="images timed per stage")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the served measurement")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (both parts)")
    parser.add_argument("--py-spy", action="store_true", help="sample the loaded server with py-spy")
    parser.add_argument("--stacks", type=Path, help="with --py-spy: keep py-spy's collapsed stacks in this file")
    return parser.parse_args()


# --- 1. stages in process ------------------------------------------------------------------


def cpu_ms(work: Callable[[], object], count: int) -> float:
    """Process CPU milliseconds per call of `work` (all threads: the forward pass uses several)."""
    work()  # warm
    start = time.process_time()
    for _ in range(count):
        work()
    return 1000 * (time.process_time() - start) / count


def stage_costs(args: argparse.Namespace, images: list[str]) -> dict[str, float]:
    import orjson
    import torch
    from pydantic import TypeAdapter

    from app.images import ImageLimits, decode_b64, load_pixels, open_image
    from app.schemas import EmbedRequest, EmbedResponse
    from app.services.embedding import rows
    from app.settings import Settings
    from models import create_model

    torch.set_num_threads(args.threads)
    encoder = create_model(args.model, device="cpu")
    limits = ImageLimits.from_settings(Settings())
    bodies = [json.dumps(native_body("image", b64)).encode() for b64 in images]
    parsed = [json.loads(body) for body in bodies]
    raw = [decode_b64(b64, "images[0]") for b64 in images]
    side = encoder.input_side  # the server decodes a large JPEG reduced towards it
    decoded = [load_pixels(open_image(data, "images[0]", limits), "images[0]", side) for data in raw]
    pixels = encoder.pixels(decoded[: args.batch])
    vectors = encoder.encode_pixels(pixels)[:1]
    adapter = TypeAdapter(EmbedResponse)
    pick = iter(range(10**9))

    def nth(items: list):
        return lambda: items[next(pick) % len(items)]

    def respond() -> bytes:
        answer = EmbedResponse(text_embeddings=[], image_embeddings=rows(vectors), fingerprint=encoder.fingerprint)
        return adapter.dump_json(adapter.validate_python(answer))

    def respond_orjson() -> bytes:
        answer = {"text_embeddings": [], "image_embeddings": vectors.numpy(), "fingerprint": encoder.fingerprint}
        return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)

    n = args.repeat
    costs = {
        "json_parse": cpu_ms(lambda: json.loads(nth(bodies)()), n),
        "validate": cpu_ms(lambda: EmbedRequest.model_validate(nth(parsed)()), n),
        "base64": cpu_ms(lambda: decode_b64(nth(images)(), "images[0]"), n),
        "decode": cpu_ms(lambda: load_pixels(open_image(nth(raw)(), "images[0]", limits), "images[0]", side), n),
        "preprocess": cpu_ms(lambda: encoder.pixels([nth(decoded)()]), n),
        "forward": cpu_ms(lambda: encoder.encode_pixels(pixels), max(2, n // args.batch)) / args.batch,
        "respond": cpu_ms(respond, n),
        "respond_orjson_numpy": cpu_ms(respond_orjson, n),
    }
    return {name: round(value, 3) for name, value in costs.items()}


# --- 2./3. the served request --------------------------------------------------------------


def served(args: argparse.Namespace, images: list[str]) -> dict:
    settings = {
        "PCCLIP_MODEL": args.model,
        "PCCLIP_DEVICE": "cpu",
        "PCCLIP_QUEUE_LIMIT": "100000",
        "PCCLIP_TORCH_THREADS": str(args.threads),
    }
    with (
        tempfile.TemporaryDirectory(prefix="stages-") as scratch,
        loopback_server(
            {**settings, "PCCLIP_INDEX_DIR": str(Path(scratch) / "index")}  # not the checkout's data/index
        ) as server,
    ):
        target = Target("pcclip", server.url, "/embed", native_body)
        payloads = Payloads(images)
        asyncio.run(drive(target, "image", args.concurrency, 2.0, payloads))  # warm
        stacks = args.stacks or Path(scratch) / "stacks.txt"
        spy = start_py_spy(server.pid, args.seconds, stacks) if args.py_spy else None
        cpu_before = process_cpu_s(server.pid)
        turn = asyncio.run(drive(target, "image", args.concurrency, args.seconds, payloads))
        cpu_used = process_cpu_s(server.pid) - cpu_before
        profile = finish_py_spy(spy, stacks) if spy else {}
    summary = turn.summary()
    requests = summary["ok"] + summary["errors"]
    return {
        **summary,
        "server_cpu_ms_per_request": round(1000 * cpu_used / requests, 3) if requests else None,
        **({"py_spy_share": profile} if profile else {}),
    }


def start_py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    command = ["py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200"]
    py_spy = Path(sys.executable).with_name("py-spy")
    command[0] = str(py_spy) if py_spy.exists() else command[0]
    return subprocess.Popen(
        [*command, "--format", "raw", "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def finish_py_spy(spy: subprocess.Popen, out: Path) -> dict[str, float]:
    _, errors = spy.communicate(timeout=120)
    if spy.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed ({spy.returncode}): {errors.decode(errors='replace')[-500:]}")
    return stage_shares(out.read_text())


def stage_shares(collapsed: str) -> dict[str, float]:
    """Share of on-CPU samples per stage, from py-spy's collapsed stacks ("a;b;c count" lines)."""
    counts: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        counts[stage_of(stack.split(";"))] += int(number)
    total = sum(counts.values()) or 1
    return {stage: round(count / total, 3) for stage, count in counts.most_common()}


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for stage, prefixes in STAGE_FRAMES.items():
            if any(prefix in frame for prefix in prefixes):
                return stage
    return "other (event loop, routing, middleware)"


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    images = photos()
    load_before = os.getloadavg()
    stages = stage_costs(args, images)
    serving = served(args, images)
    accounted = sum(value for name, value in stages.items() if name != "respond_orjson_numpy")
    print(json.dumps({
        "bench": "stages",
        "model": args.model,
        "cpus": os.cpu_count(),
        "torch_threads": args.threads,
        "request": "one 640x480 JPEG (~70 kB, base64 in JSON) per /embed request",
        "load_avg_before": [round(x, 1) for x in load_before],
        "load_avg_after": [round(x, 1) for x in os.getloadavg()],
        "stage_cpu_ms_per_image": stages,
        "stages_total_cpu_ms": round(accounted, 3),
        "forward_share_of_stages": round(stages["forward"] / accounted, 3),
        f"served_c{args.concurrency}": serving,
        "unaccounted_cpu_ms_per_request": round(serving["server_cpu_ms_per_request"] - accounted, 3)
        if serving["server_cpu_ms_per_request"] else None,
        "image_bytes_mean": round(sum(len(base64.b64decode(b)) for b in images) / len(images)),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
