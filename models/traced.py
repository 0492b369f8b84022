"""The image tower as a TorchScript trace, for serving: one GIL release per forward, not one per op.

An eager forward calls a torch op from Python per layer step; each op releases the GIL and must
win it back. In a server whose event loop wants the GIL too, each hand-over can wait for the
interpreter's switch interval (5 ms): beside a spinning Python thread, ViT-B-32's eager forward
of 8 images took 1,543 ms against 263 ms alone, the traced one 827 ms. A trace runs its whole
graph in C++ with the GIL released. With the `tiny` model (small convolutions, many ops) the
server's throughput at concurrency 16 rose from ~400 to ~650 requests/s (`bench/serve.py`).

A tower that does not trace, or whose trace does not reproduce the eager output at two batch
sizes, is served eager (the reason logged). `torch.jit.trace` is deprecated in favour of
`torch.compile` / `torch.export`; neither runs a graph without the GIL on CPU without a C++
compiler at run time. torch is pinned (pyproject.toml), and the check below fails closed.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

ImageForward = Callable[[torch.Tensor], torch.Tensor]
CHECK_BATCHES = (1, 3)  # a trace must not have baked in the batch size it was traced with
TOLERANCE = 1e-4  # largest difference allowed, relative to the largest eager output


def trace_image_tower(
    visual: torch.nn.Module, side: int, device: torch.device, dtype: torch.dtype
) -> ImageForward | None:
    """`visual` traced on (N, 3, side, side) inputs and checked against itself; None when it cannot be."""
    probes = [torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(n)) for n in CHECK_BATCHES]
    probes = [probe.to(device, dtype) for probe in probes]
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation notice, and tracer warnings the check settles
            traced = torch.jit.trace(visual, probes[-1], check_trace=False)
            for probe in probes:
                check_same(visual(probe), traced(probe))
    except Exception as exc:  # noqa: BLE001 — any tracing failure means: serve eager
        log.warning("image tower served eager: its trace failed (%s)", exc)
        return None
    return traced


def check_same(eager: torch.Tensor, traced: torch.Tensor) -> None:
    """Raise unless `traced` has `eager`'s shape and values (within TOLERANCE, relative)."""
    if eager.shape != traced.shape:
        raise ValueError(f"traced output shape {tuple(traced.shape)} differs from eager {tuple(eager.shape)}")
    scale = float(eager.float().abs().max().clamp_min(1e-6))
    error = float((eager.float() - traced.float()).abs().max()) / scale
    if error > TOLERANCE:
        raise ValueError(f"traced output differs from eager by {error:.1e} (relative)")
