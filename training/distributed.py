"""Data-parallel finetuning for several GPUs: `torchrun --nproc_per_node N -m cli finetune …`.

Each process holds the whole model, takes its contiguous share of every batch, and the
gradients of the trainable text blocks are averaged across processes before each optimizer
step, so all replicas stay identical. InfoNCE negatives are per process (no all-gather), which
makes N processes with batch B train exactly like one process with `--grad-accum N`, up to
dropout noise. Only rank 0 writes the cache, state and checkpoints. Without torchrun
(WORLD_SIZE unset) every function here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Worker:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = Worker()  # the one worker of a run without torchrun


def start(device: str) -> tuple[Worker, str]:
    """Join the torchrun process group if there is one; returns this worker and its device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Worker(), device
    use_cuda = torch.cuda.is_available() and device != "cpu"
    dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    return Worker(dist.get_rank(), world), device


def stop(worker: Worker) -> None:
    if worker.world > 1:
        dist.destroy_process_group()


def barrier(worker: Worker) -> None:
    if worker.world > 1:
        dist.barrier()


def shard(batch: torch.Tensor, worker: Worker) -> torch.Tensor:
    """This worker's contiguous share of a batch of indices."""
    return batch.tensor_split(worker.world)[worker.rank] if worker.world > 1 else batch


def average_gradients(parameters: list[torch.nn.Parameter], worker: Worker) -> None:
    if worker.world == 1:
        return
    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= worker.world


def mean(value: float, worker: Worker) -> float:
    """The mean of a number over all workers (for logging losses)."""
    if worker.world == 1:
        return value
    total = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(total)
    return float(total) / worker.world


def check_in_sync(parameters: list[torch.nn.Parameter], worker: Worker) -> None:
    """Raise if the replicas' trainable parameters have drifted apart (a broken gradient sync)."""
    if worker.world == 1:
        return
    checksum = torch.stack([p.detach().double().sum() for p in parameters]).sum().reshape(1).cpu()
    gathered = [torch.zeros_like(checksum) for _ in range(worker.world)]
    dist.all_gather(gathered, checksum)
    if any(not torch.allclose(other, checksum, rtol=1e-9, atol=0) for other in gathered):
        raise RuntimeError(f"replicas out of sync: parameter checksums {[float(g) for g in gathered]}")
