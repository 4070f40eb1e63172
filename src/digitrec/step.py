"""One training step (forward, loss, backward, optimizer step), run eagerly or replayed from a CUDA graph.

    step = make_step(model, optimizer, cfg, device)   # EagerStep, or GraphedStep when cfg.cuda_graphs
    loss, logits = step(xb, yb)

At small batches (the paper's 64) a step of these networks is bound by kernel launches and Python, not by the GPU
(4–5 ms a step on an H100 for well under 1 ms of GPU work). `GraphedStep` captures the whole step once and then
replays it with one launch. What a graph needs:
- static shapes and addresses: the batch is copied into fixed input buffers, and loss and logits are left in fixed
  output tensors (valid until the next step); a batch of another size (an epoch's last, partial batch) runs eagerly;
- a learning rate that is a tensor on the device (`graph_optimizer_options`), so the schedule changes it in place
  between replays instead of being frozen into the graph;
- a few eager warm-up steps on a side stream before capture (they are real training steps);
- autocast without its weight-cast cache (the cache would hold tensors from outside the graph).
Dropout inside the graph draws from the default CUDA generator, which graphs support.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

WARMUP_STEPS = 3


def eager_step(model: nn.Module, optimizer: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor,
               autocast: bool, label_smoothing: float, cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=autocast, cache_enabled=cache):
        logits = model(xb)
        loss = F.cross_entropy(logits.float(), yb, label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, logits


class EagerStep:
    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, autocast: bool,
                 label_smoothing: float) -> None:
        self.model, self.optimizer, self.autocast, self.label_smoothing = model, optimizer, autocast, label_smoothing

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return eager_step(self.model, self.optimizer, xb, yb, self.autocast, self.label_smoothing)


class GraphedStep(EagerStep):
    """The step as a CUDA graph, captured after WARMUP_STEPS eager steps of the full batch size."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, autocast: bool,
                 label_smoothing: float) -> None:
        super().__init__(model, optimizer, autocast, label_smoothing)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.full_steps = 0  # eager steps of the batch size being captured

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graph is not None and xb.shape == self.x.shape:
            self.x.copy_(xb)
            self.y.copy_(yb)
            self.graph.replay()
            return self.loss, self.logits
        if self.graph is not None:  # another size than the captured one: the last, partial batch
            return eager_step(self.model, self.optimizer, xb, yb, self.autocast, self.label_smoothing)
        if self.full_steps == WARMUP_STEPS:
            self._capture(xb, yb)
            return self(xb, yb)
        self.full_steps += 1
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = eager_step(self.model, self.optimizer, xb, yb, self.autocast, self.label_smoothing, cache=False)
        torch.cuda.current_stream().wait_stream(side)
        return out

    def _capture(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        self.x, self.y = xb.clone(), yb.clone()
        self.optimizer.zero_grad(set_to_none=True)  # backward inside the graph then allocates (and overwrites) them
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast, cache_enabled=False):
                self.logits = self.model(self.x)
                self.loss = F.cross_entropy(self.logits.float(), self.y, label_smoothing=self.label_smoothing)
            self.loss.backward()
            self.optimizer.step()
        self.graph = graph


def graph_optimizer_options(optimizer: str, lr: float, device: torch.device) -> dict[str, Any]:
    """Optimizer keyword arguments that make its step capturable: the learning rate as a device tensor, and the
    implementation that reads it on the device (fused SGD; capturable Adam/AdamW) instead of calling .item()."""
    options: dict[str, Any] = {"lr": torch.tensor(lr, device=device)}
    if optimizer == "sgd":
        options["fused"] = True
    else:
        options.update(capturable=True, foreach=True)
    return options


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer, graphs: bool, autocast: bool,
              label_smoothing: float) -> EagerStep:
    return (GraphedStep if graphs else EagerStep)(model, optimizer, autocast, label_smoothing)
