"""The towers as TorchScript traces, for serving: one GIL release per forward, not one per op.

An eager forward calls a torch op from Python per layer step; each op releases the GIL and must
win it back. In a server whose event loop wants the GIL too, each hand-over can wait for the
interpreter's switch interval (5 ms): beside a spinning Python thread, ViT-B-32's eager forward
of 8 images took 1,543 ms against 263 ms alone, the traced one 827 ms. A trace runs its whole
graph in C++ with the GIL released. With the `tiny` model (small convolutions, many ops) the
server's throughput at concurrency 16 rose from ~400 to ~650 requests/s (`bench/serve.py`).

A tower that does not trace, or whose trace does not reproduce the eager output on probes of
two batch sizes (and two text lengths), is served eager (the reason logged). `torch.jit.trace`
is deprecated in favour of `torch.compile` / `torch.export`; neither runs a graph without the
GIL on CPU without a C++ compiler at run time. torch is pinned (pyproject.toml), and the check
fails closed.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

Forward = Callable[[torch.Tensor], torch.Tensor]
TOLERANCE = 1e-4  # largest difference allowed, relative to the largest eager output


def traced(
    forward: Forward, probes: list[torch.Tensor], what: str, owner: torch.nn.Module | None = None
) -> Forward | None:
    """`forward` traced on the last probe and checked against itself on every probe (probes of
    two batch sizes and, for texts, two lengths: a trace must not have baked in either); None
    when it cannot be. A `forward` that is not itself a module runs the layers of `owner`."""
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation notice, and tracer warnings the check settles
            module = forward if isinstance(forward, torch.nn.Module) else _Calling(forward, owner)
            trace = torch.jit.trace(module, probes[-1], check_trace=False)
            for probe in probes:
                check_same(forward(probe), trace(probe))
    except Exception as exc:  # noqa: BLE001 — any tracing failure means: serve eager
        log.warning("%s served eager: its trace failed (%s)", what, str(exc)[:300])
        return None
    return trace


class _Calling(torch.nn.Module):
    """A module whose forward is `forward`, holding `owner` (whose layers `forward` runs) so that
    the trace keeps their weights as parameters, not as constants."""

    def __init__(self, forward: Forward, owner: torch.nn.Module | None) -> None:
        super().__init__()
        self.owner = owner
        self.call = forward

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.call(inputs)


def image_probes(side: int, device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
    """Random inputs of the image tower, batches of 1 and 3.  -> [(1, 3, side, side), (3, 3, side, side)]"""
    return [
        torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(n)).to(device, dtype) for n in (1, 3)
    ]


TEXT_PROBES = (["a cat"], ["two red squares on a blue ground", "a dog", "the first is larger than the second"])


def check_same(eager: torch.Tensor, traced: torch.Tensor) -> None:
    """Raise unless `traced` has `eager`'s shape and values (within TOLERANCE, relative)."""
    if eager.shape != traced.shape:
        raise ValueError(f"traced output shape {tuple(traced.shape)} differs from eager {tuple(eager.shape)}")
    scale = float(eager.float().abs().max().clamp_min(1e-6))
    error = float((eager.float() - traced.float()).abs().max()) / scale
    if error > TOLERANCE:
        raise ValueError(f"traced output differs from eager by {error:.1e} (relative)")
