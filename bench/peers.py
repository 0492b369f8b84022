"""pcclip against a peer server (infinity) on the same CLIP architecture, machine and client, in one run.

1. Builds CLIP ViT-B/32 with random weights twice, in the layout each server loads: open_clip's
   `openclip:ViT-B-32/random` for pcclip, and a transformers `CLIPModel` of the same layers,
   widths and patch size (same parameter count, checked) saved with `save_pretrained` for infinity.
2. Starts both on 127.0.0.1, each in its own process with the same torch thread count and the
   same largest batch; infinity runs from its own virtual environment (`--infinity-python`).
3. Drives both with one load generator, wrk (`bench/wrk.py`: one C thread, a small share of the
   cores) where installed, else (or with `--client httpx`) an asynchronous httpx client in this
   process: one 640×480 JPEG photo (skimage.data, re-encoded, ~70 kB) or one short caption (never
   repeated: no cache helps either server) per request, at each concurrency, bounded in time. The
   servers take turns (A B B A …) so that the load other processes put on the machine falls on
   both alike. With wrk, a level's mean/p50/p99 is the request-weighted mean of its turns'.
4. Prints one JSON line: requests/s (the answers counted within the turns, and the closed-loop
   rate, concurrency ÷ mean latency, which answers in whole batches do not quantize: see
   `bench.peer_load.Turn`), mean/p50/p99 latency and errors per server, kind and concurrency,
   and the ratios pcclip / infinity.

pcclip is driven through `/v1/embeddings` (infinity's and OpenAI's protocol) when its OpenAPI
document lists it, else through its native `/embed`; infinity through its `/embeddings`.

    python bench/peers.py --infinity-python /work/peers/infinity-venv/bin/python
    python bench/peers.py --infinity-python ... --device cuda   # fp16 on both
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout, installed or not
from bench import wrk  # noqa: E402
from bench.peer_load import Payloads, Target, Turn, load, native_body, openai_body, photos, wait_quiet  # noqa: E402
from quality.server import Server, ServerFailed, free_port, loopback_server, stop  # noqa: E402

SERVED_NAME = "clip-vit-b-32"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--infinity-python", required=True, help="python of the venv where infinity-emb is installed")
    parser.add_argument("--arch", default="ViT-B-32", help="open_clip architecture (plain ViT image and text towers)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: fp16 on both servers")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated concurrency levels")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one server's turn at one level")
    parser.add_argument("--rounds", type=int, default=2, help="turns per server at each level (A B, B A, ...)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads in each server")
    parser.add_argument("--max-batch", type=int, default=64, help="largest batch, both servers")
    parser.add_argument("--kinds", default="image,text", help="what to send: image, text or both")
    parser.add_argument("--hf-dir", type=Path, help="keep (and reuse) the transformers CLIP folder here")
    parser.add_argument(
        "--pcclip-setting", action="append", default=[], metavar="NAME=VALUE",
        help="an extra setting for the pcclip server, e.g. PCCLIP_BATCH_PATIENCE=0 (repeatable)",
    )
    wrk.client_option(parser)
    parser.add_argument("--ready-timeout", type=float, default=900.0, help="longest wait for a server to be ready")
    return parser.parse_args()


# --- 1. the same model in two layouts ------------------------------------------------------


def openclip_config(arch: str) -> dict:
    import open_clip

    config = open_clip.get_model_config(arch)
    vision, text = config["vision_cfg"], config["text_cfg"]
    plain = (
        {"image_size", "layers", "width", "patch_size"},
        {"context_length", "vocab_size", "width", "heads", "layers"},
    )
    if set(vision) != plain[0] or set(text) != plain[1] or config.get("quick_gelu"):
        raise SystemExit(f"{arch}: only plain ViT/transformer towers (like ViT-B-32) have a known transformers twin")
    return config


def hf_clip_config(config: dict):
    """The transformers `CLIPConfig` with open_clip's layers, widths, heads (64 wide), MLP ratio 4 and GELU."""
    from transformers import CLIPConfig

    vision, text = config["vision_cfg"], config["text_cfg"]
    return CLIPConfig(
        text_config={
            "vocab_size": text["vocab_size"], "hidden_size": text["width"], "intermediate_size": 4 * text["width"],
            "num_hidden_layers": text["layers"], "num_attention_heads": text["heads"],
            "max_position_embeddings": text["context_length"], "hidden_act": "gelu",
            "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407,
        },
        vision_config={
            "hidden_size": vision["width"], "intermediate_size": 4 * vision["width"],
            "num_hidden_layers": vision["layers"], "num_attention_heads": vision["width"] // 64,
            "image_size": vision["image_size"], "patch_size": vision["patch_size"], "hidden_act": "gelu",
        },
        projection_dim=config["embed_dim"],
    )  # fmt: skip


def build_hf_clip(arch: str, folder: Path) -> dict:
    """Save a random-weight transformers CLIP twin of open_clip's `arch` (+ CLIP tokenizer and processor)."""
    import open_clip
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from transformers import CLIPImageProcessor, CLIPModel, CLIPProcessor

    from models.generation.tiny import clip_tokenizer

    config = openclip_config(arch)
    twin = CLIPModel(hf_clip_config(config))
    reference = open_clip.create_model(arch, pretrained=None)
    counts = {"pcclip": sum(p.numel() for p in reference.parameters()), "infinity": twin.num_parameters()}
    if counts["pcclip"] != counts["infinity"]:
        raise SystemExit(f"the transformers twin of {arch} differs in size: {counts}")
    if not (folder / "config.json").exists():
        size = config["vision_cfg"]["image_size"]
        processor = CLIPImageProcessor(
            size={"shortest_edge": size}, crop_size={"height": size, "width": size},
            image_mean=list(OPENAI_DATASET_MEAN), image_std=list(OPENAI_DATASET_STD),
        )  # fmt: skip
        twin.save_pretrained(folder)
        CLIPProcessor(image_processor=processor, tokenizer=clip_tokenizer()).save_pretrained(folder)
    return {"params": counts, "embed_dim": config["embed_dim"]}


# --- 2. the servers ------------------------------------------------------------------------


def pcclip_target(url: str) -> Target:
    paths = httpx.get(f"{url}/openapi.json", timeout=30).json()["paths"]
    if "/v1/embeddings" in paths:
        served = httpx.get(f"{url}/v1/models", timeout=30).json()["data"][0]["id"]  # its model spec
        return Target("pcclip", url, "/v1/embeddings", openai_body(served))
    return Target("pcclip", url, "/embed", native_body)


@contextmanager
def pcclip_server(args: argparse.Namespace) -> Iterator[Server]:
    settings = {
        "PCCLIP_MODEL": f"openclip:{args.arch}/random",
        "PCCLIP_DEVICE": args.device,
        "PCCLIP_MAX_BATCH": str(args.max_batch),
        "PCCLIP_QUEUE_LIMIT": "100000",
        "PCCLIP_TORCH_THREADS": str(args.threads),
        "OMP_NUM_THREADS": str(args.threads),
        **{name: value for name, _, value in (setting.partition("=") for setting in args.pcclip_setting)},
    }
    with (
        tempfile.TemporaryDirectory(prefix="peers-index-") as index_dir,  # not the checkout's data/index
        loopback_server({**settings, "PCCLIP_INDEX_DIR": index_dir}, ready_timeout=args.ready_timeout) as server,
    ):
        yield server


@contextmanager
def infinity_server(args: argparse.Namespace, model_dir: Path) -> Iterator[Server]:
    """`infinity_emb v2` on a free loopback port, torch limited to the same threads as pcclip."""
    port = free_port()
    command = [
        args.infinity_python, "-m", "infinity_emb.cli", "v2", "--model-id", str(model_dir),
        "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port), "--device", args.device,
        "--batch-size", str(args.max_batch), "--log-level", "warning",
        *(["--dtype", "float16"] if args.device == "cuda" else []),
    ]  # fmt: skip
    env = {
        **os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1",
        "INFINITY_ANONYMOUS_USAGE_STATS": "0", "OMP_NUM_THREADS": str(args.threads),
    }  # fmt: skip
    env.pop("PYTHONPATH", None)  # its own environment, not this checkout's
    with tempfile.TemporaryDirectory(prefix="peers-infinity-") as scratch:
        log_path = Path(scratch) / "infinity.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        server = Server(f"http://127.0.0.1:{port}", process, log_path)
        try:
            wait_healthy(server, "/health", args.ready_timeout)
            yield server
        finally:
            stop(process)


def wait_healthy(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise ServerFailed(f"server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}{path}", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise ServerFailed(f"{server.url}{path} not answering after {timeout:.0f} s:\n{server.log_tail()}")


def infinity_versions(python: str) -> dict:
    script = "import importlib.metadata as m; print(m.version('infinity-emb'), m.version('torch'))"
    infinity, torch = subprocess.run([python, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    return {"infinity_emb": infinity, "torch": torch}


# --- 3. the load -------------------------------------------------------------------------


def check_answers(targets: list[Target], kinds: list[str], payloads: Payloads, dim: int) -> None:
    """Each server answers each kind with one `dim`-wide vector, before anything is timed."""
    for target in targets:
        for kind in kinds:
            response = httpx.post(
                f"{target.url}{target.path}", json=target.body(kind, payloads.next(kind)), timeout=300
            )
            response.raise_for_status()
            body = response.json()
            vector = body["data"][0]["embedding"] if "data" in body else body[f"{kind}_embeddings"][0]
            if len(vector) != dim:
                raise ServerFailed(f"{target.name} answered a {len(vector)}-wide {kind} vector, expected {dim}")


def measure(
    targets: list[Target], kinds: list[str], levels: list[int], args: argparse.Namespace, pids: list[int]
) -> None:
    """Each server's turns alternate A B, B A, … at every (kind, concurrency), each counted from
    when both servers are idle; results land in `target.results`."""
    payloads = Payloads(photos())

    def settle() -> float:
        return wait_quiet(pids)

    for kind in kinds:
        for concurrency in levels:
            turns = {target.name: Turn(concurrency) for target in targets}
            for round_ in range(args.rounds):
                for target in targets if round_ % 2 == 0 else targets[::-1]:
                    turns[target.name].add(load(args.client, target, kind, concurrency, args.seconds, payloads, settle))
            for target in targets:
                target.results[f"{kind}_c{concurrency}"] = turns[target.name].summary()


# --- 4. the report -------------------------------------------------------------------------


def ratios(ours: dict, peer: dict) -> dict:
    out = {}
    for key, mine in ours.items():
        theirs = peer[key]
        if theirs["rps"] and mine["rps"]:
            out[f"{key}_throughput"] = round(mine["rps"] / theirs["rps"], 3)
        if theirs["rps_closed_loop"] and mine["rps_closed_loop"]:
            out[f"{key}_throughput_closed_loop"] = round(mine["rps_closed_loop"] / theirs["rps_closed_loop"], 3)
        if theirs["p99_ms"] and mine["p99_ms"]:
            out[f"{key}_p99"] = round(mine["p99_ms"] / theirs["p99_ms"], 3)
    return out


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    kinds, levels = args.kinds.split(","), [int(c) for c in args.concurrency.split(",")]
    started, load_before = time.perf_counter(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="peers-hf-") as scratch:
        hf_dir = args.hf_dir or Path(scratch) / "clip"
        model = build_hf_clip(args.arch, hf_dir)
        with pcclip_server(args) as ours, infinity_server(args, hf_dir) as peer:
            targets = [pcclip_target(ours.url), Target("infinity", peer.url, "/embeddings", openai_body(SERVED_NAME))]
            check_answers(targets, kinds, Payloads(photos(1)), model["embed_dim"])
            measure(targets, kinds, levels, args, [ours.pid, peer.pid])
            memory = {"pcclip": ours.rss_bytes() >> 20, "infinity": peer.rss_bytes() >> 20}
    pcclip, infinity = targets
    print(json.dumps({
        "bench": "peers",
        "model": f"{args.arch}, random weights: open_clip openclip:{args.arch}/random for pcclip; a transformers "
        "CLIPModel of the same layers, widths, heads and patch size, saved with save_pretrained, for infinity",
        "params": model["params"],
        "text_tokens": "both pad a batch to its longest text (pcclip: models/trimmed_text.py)",
        "device": args.device, "precision": "fp16" if args.device == "cuda" else "fp32",
        "cpus": os.cpu_count(), "torch_threads": args.threads, "max_batch": args.max_batch,
        "load_avg_before": [round(x, 1) for x in load_before],
        "load_avg_after": [round(x, 1) for x in os.getloadavg()],
        "infinity": infinity_versions(args.infinity_python),
        "protocols": {"pcclip": pcclip.path, "infinity": infinity.path},
        "request": "one 640x480 JPEG (~70 kB, base64 in JSON) or one new caption per request",
        "seconds_per_turn": args.seconds, "rounds": args.rounds, "client": args.client,
        "pcclip_settings": args.pcclip_setting,
        "rss_mib": memory,
        "pcclip_results": pcclip.results,
        "infinity_results": infinity.results,
        "ratio_pcclip_over_infinity": ratios(pcclip.results, infinity.results),
        "wall_s": round(time.perf_counter() - started, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
