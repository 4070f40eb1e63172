"""Where training runs: the device, the torchrun process group (DDP), and sharing GPUs/cores among workers.

Evaluation, ensembles, comparisons, sweeps and tuning import this module, never the training loop.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from .errors import DigitrecError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DigitrecError(f"--device must be auto, cpu or cuda[:N], got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise DigitrecError(f"--device must be auto, cpu or cuda[:N], got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DigitrecError("--device cuda asked for, but no CUDA GPU is available (use --device cpu or auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DigitrecError(f"--device {name}: there are only {torch.cuda.device_count()} GPU(s)")
    return device


def gpu_slots(device: torch.device, workers: int) -> list[int] | None:
    """The GPU of each of `workers` parallel workers, round robin, when `device` is CUDA without an index and there
    are several GPUs; None otherwise (the workers share `device`)."""
    gpus = torch.cuda.device_count() if device.type == "cuda" and device.index is None else 0
    return [i % gpus for i in range(workers)] if gpus > 1 else None


def threads_per_worker(workers: int) -> int:
    """CPU threads for each of `workers` parallel CPU workers: the cores shared out, at least one each."""
    return max(1, (os.cpu_count() or 1) // workers)


class Distributed:
    """Rank/world size when launched by torchrun (RANK, WORLD_SIZE, LOCAL_RANK set), else a single process."""

    def __init__(self) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def setup(self, device: torch.device) -> torch.device:
        if not self.enabled:
            return device
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
            if attempt is None:
                dist.init_process_group(backend)
            else:
                # torchrun keeps one store for all restarts of a run. Without a namespace per attempt, a restarted
                # rank can read the keys its dead predecessors left (e.g. a dead rank's gloo address: "connection
                # refused" at init) before the new ranks overwrite them.
                from torch.distributed.rendezvous import rendezvous

                store, rank, world_size = next(rendezvous("env://"))
                store = dist.PrefixStore(f"digitrec/attempt_{attempt}", store)
                dist.init_process_group(backend, store=store, rank=rank, world_size=world_size)
        return device

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The model DDP-wrapped when distributed (gradients averaged across processes), else itself."""
        if not self.enabled:
            return model
        return nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (BatchNorm running statistics) on every rank."""
        if self.enabled:
            import torch.distributed as dist

            for buf in model.buffers():
                dist.broadcast(buf, src=0)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def shutdown(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
