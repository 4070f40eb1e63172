"""The training loop: data resident on the device as uint8, batches sliced from it, one batched augmentation.

    train(cfg, out_dir) → RUN_DIR/{model.pt, last.pt, history.json, metrics.json, accuracy.png, loss.png, confusion.png}

`model.pt` is the best epoch by validation accuracy; `last.pt` holds everything needed to resume (optimizer,
schedule, EMA, RNG states, history). Both are written atomically after every epoch, so a killed run resumes
from its last finished epoch with `resume=True`, and continues exactly as if it had not been interrupted.
When launched by torchrun, the loop runs DistributedDataParallel; only rank 0 writes files.
"""
from __future__ import annotations

import dataclasses
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint, transfer
from .augment import AugmentConfig, augment_batch
from .config import TrainConfig
from .data import load, make_split
from .errors import DigitrecError
from .fileio import write_json
from .models import create
from .predict import forward_in_batches, to_float


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DigitrecError(f"--device must be auto, cpu or cuda[:N], got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DigitrecError("--device cuda asked for, but no CUDA GPU is available (use --device cpu or auto)")
    if device.type not in ("cpu", "cuda"):
        raise DigitrecError(f"--device must be auto, cpu or cuda[:N], got {name!r}")
    return device


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


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


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay)


def lr_factor(cfg: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base learning rate at each optimizer step."""
    warm = max(1, int(cfg.warmup * total_steps)) if cfg.warmup > 0 else 0

    def factor(step: int) -> float:
        if cfg.schedule == "constant":
            return 1.0
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        if cfg.schedule == "onecycle":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "generator": gen.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False, progress: bool = True,
          log: Callable[[str], None] = print, on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
          evaluate_test: bool = True, setup: Callable[[nn.Module], None] | None = None) -> dict[str, Any]:
    """Train, keep the best checkpoint by validation accuracy, evaluate it on the test split. Returns metrics.

    `on_epoch(epoch, row)` runs after each epoch's files are written (on every rank, with the same row); it may
    raise to stop the run (tuning prunes this way). `evaluate_test=False` never touches the test split
    (hyper-parameter search selects on validation only); the result then holds validation numbers only.
    `cfg.init_from` starts from another checkpoint's weights; `setup(model)` runs on the built model before the
    optimizer exists (pruning registers gradient masks there so that pruned weights stay zero).
    """
    cfg.validate()
    transfer.check(cfg, resume)
    out = Path(out_dir)
    dist = Distributed()
    device = dist.setup(resolve_device(cfg.device))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    last_path = out / "last.pt"
    if resume and not last_path.exists():
        raise DigitrecError(f"--resume: {last_path} not found (nothing to resume)")
    if not resume and (out / "model.pt").exists():
        raise DigitrecError(f"{out} already holds a run (model.pt); use --resume to continue it or another --out")

    # --- data: uint8 tensors on the training device (one process per machine downloads, the others wait)
    if dist.local_rank != 0:
        dist.barrier()
    data = load(cfg.dataset, cfg.data_dir)
    if dist.local_rank == 0:
        dist.barrier()
    split = make_split(data, cfg.split, cfg.limit)
    train_x = torch.from_numpy(split.train_images).to(device)
    train_y = torch.from_numpy(split.train_labels).long().to(device)
    val_x = torch.from_numpy(split.val_images)
    val_y = torch.from_numpy(split.val_labels).long()
    n_train = len(train_y)

    # --- model, optimizer, schedule
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    model = create(cfg.model, num_classes=data.num_classes, **cfg.model_options).to(device)
    if cfg.init_from and not resume:  # a resume restores its own weights from last.pt
        _load_weights(model, cfg.init_from, log)
    transfer.prepare(model, cfg, resume, dist.enabled, log)  # backbone weights (new runs), freezing
    if setup is not None:
        setup(model)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, transfer.param_groups(model, cfg))  # the backbone its own group if asked
    # every rank gets the same number of samples, so the same number of steps (DDP hangs otherwise); the few
    # (< world size) left over differ each epoch. batch_size is per process: the global batch is batch_size × world.
    per_rank = n_train // dist.world_size
    if per_rank < 2:
        raise DigitrecError(f"{n_train} training samples cannot be shared by {dist.world_size} processes")
    steps_per_epoch = max(1, per_rank // cfg.batch_size + (per_rank % cfg.batch_size >= 2))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, steps_per_epoch * cfg.epochs))
    ema = None
    if cfg.ema > 0:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    train_model: nn.Module = model
    if dist.enabled:
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    if cfg.compile:
        train_model = torch.compile(train_model)
    aug = AugmentConfig.from_config(cfg)
    autocast = cfg.bf16 and device.type == "cuda"

    history: list[dict[str, Any]] = []
    start_epoch, best_acc, train_time = 0, -1.0, 0.0
    if resume:
        state = checkpoint.load(last_path)
        if state.get("config", {}).get("model") != cfg.model or state.get("config", {}).get("dataset") != cfg.dataset:
            raise DigitrecError(f"--resume: {last_path} was trained with model {state['config'].get('model')!r} on "
                                f"{state['config'].get('dataset')!r}, not {cfg.model!r} on {cfg.dataset!r}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        if state.get("world_size", 1) != dist.world_size:  # the global batch and the schedule depend on it
            raise DigitrecError(f"--resume: {last_path} was trained by {state.get('world_size', 1)} process(es), "
                                f"not {dist.world_size}; resume with the same number of processes")
        _set_rng_state(state["rng"], gen)
        start_epoch, best_acc = state["epoch"], state["best_val_acc"]
        history, train_time = state["history"], state["train_time_s"]
        if dist.is_main:
            log(f"resuming {out} after epoch {start_epoch}/{cfg.epochs} (its last checkpoint)")
    elif dist.is_main:
        out.mkdir(parents=True, exist_ok=True)

    meta = {"dataset": cfg.dataset, "split": cfg.split, "sizes": split.sizes(), "device": str(device),
            "world_size": dist.world_size, "config": dataclasses.asdict(cfg)}
    if dist.is_main:
        log(f"training {cfg.model} on {cfg.dataset} ({cfg.split} split: {split.sizes()}) on {device}"
            + (f" × {dist.world_size} processes (global batch {cfg.batch_size * dist.world_size})"
               if dist.enabled else ""))

    # SIGTERM (kill, SLURM preemption, a shell's background job, which ignores Ctrl-C) stops like Ctrl-C: the
    # epoch in progress is dropped, last.pt keeps the last finished one, and the error says how to resume.
    previous_sigterm = None
    if threading.current_thread() is threading.main_thread():
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        for epoch in range(start_epoch, cfg.epochs):
            transfer.start_epoch(model, cfg, epoch + 1)  # model.train(), a frozen backbone kept in eval mode
            t0 = time.perf_counter()
            perm = torch.randperm(n_train, device=device, generator=gen)
            aug_gen = gen
            if dist.enabled:  # every rank its own equal shard of one permutation (gen stays in step on all ranks)
                perm = perm[:per_rank * dist.world_size][dist.rank::dist.world_size]
                # own augmentation and dropout draws per rank (a shared stream would give rank r's batch i the
                # transforms of rank 0's), seeded by (seed, epoch, rank) so a resume needs no per-rank RNG state
                rank_seed = (cfg.seed * 1_000_003 + epoch) * 1009 + dist.rank
                aug_gen = torch.Generator(device=device).manual_seed(rank_seed)
                torch.manual_seed(rank_seed)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            bar = None
            if progress and dist.is_main:
                from tqdm import tqdm

                bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                           leave=False, dynamic_ncols=True)
            for step in range(steps_per_epoch):
                idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
                xb = augment_batch(to_float(train_x[idx]), aug, aug_gen)
                yb = train_y[idx]
                if cfg.channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    logits = train_model(xb)
                    loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(model)
                loss_sum += loss.detach() * len(yb)
                correct += (logits.argmax(1) == yb).sum()
                seen += len(yb)
                if bar is not None:
                    bar.update(1)
                    if step % 50 == 0 or step == steps_per_epoch - 1:  # a host sync: only now and then
                        bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{correct.item() / seen:.4f}")
            if device.type == "cuda":
                torch.cuda.synchronize()
            epoch_time = time.perf_counter() - t0
            train_time += epoch_time
            if bar is not None:
                bar.close()
            totals = dist.all_sum(torch.stack([loss_sum.float(), correct.float(),
                                               torch.tensor(float(seen), device=device)]))
            eval_model = ema.module if ema is not None else model
            if dist.enabled:  # BN running stats drift per rank in the last step: validate rank 0's model everywhere
                dist.broadcast_buffers(eval_model)
            # each rank a shard of the validation set, summed: every rank gets the same numbers, so agrees on "best"
            val_loss, val_acc = _validate(eval_model, val_x[dist.rank::dist.world_size],
                                          val_y[dist.rank::dist.world_size], cfg.eval_batch_size, device, autocast,
                                          dist)
            row = {"epoch": epoch + 1, "train_loss": totals[0].item() / totals[2].item(),
                   "train_acc": totals[1].item() / totals[2].item(), "val_loss": val_loss, "val_acc": val_acc,
                   "lr": optimizer.param_groups[0]["lr"], "epoch_time_s": epoch_time,
                   "images_per_s": totals[2].item() / epoch_time}
            history.append(row)
            if dist.is_main:
                log(f"epoch {epoch + 1}/{cfg.epochs}  loss {row['train_loss']:.4f}  acc {row['train_acc']:.4f}  "
                    f"val_loss {val_loss:.4f}  val_acc {val_acc:.4f}  {epoch_time:.1f}s")
                ckpt_meta = {"config": dataclasses.asdict(cfg), "dataset": cfg.dataset, "split": cfg.split,
                             "sizes": split.sizes()}
                if val_acc > best_acc:
                    best_acc = val_acc
                    checkpoint.save(out / "model.pt", eval_model, cfg.model, cfg.model_options, data.num_classes,
                                    epoch=epoch + 1, metrics={"val_acc": val_acc, "val_loss": val_loss}, **ckpt_meta)
                checkpoint.save(last_path, model, cfg.model, cfg.model_options, data.num_classes,
                                epoch=epoch + 1, optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                                ema=ema.state_dict() if ema is not None else None, rng=_rng_state(gen),
                                best_val_acc=best_acc, history=history, train_time_s=train_time,
                                world_size=dist.world_size, **ckpt_meta)
                write_json(out / "history.json", {**meta, "train_time_s": train_time, "epochs": history})
            else:
                best_acc = max(best_acc, val_acc)
            dist.barrier()
            if on_epoch is not None:
                on_epoch(epoch + 1, row)
    except KeyboardInterrupt:
        done = len(history)
        where = f"{last_path} holds epoch {done}; continue with --resume" if done else "no epoch had finished"
        raise DigitrecError(f"interrupted: {where}") from None
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)

    result: dict[str, Any] = {}
    if dist.is_main and not evaluate_test:
        result = {"best_val_acc": best_acc, "best_epoch": _best_epoch(history), "train_time_s": train_time,
                  "epochs": cfg.epochs, "model": cfg.model, "device": str(device), "world_size": dist.world_size}
    elif dist.is_main:
        from .evaluate import evaluate_checkpoint, write_figures

        result = evaluate_checkpoint(out / "model.pt", cfg.dataset, cfg.split, data_dir=cfg.data_dir,
                                     device=device, tta=cfg.tta, split_obj=split)
        result.update({"train_time_s": train_time, "epochs": cfg.epochs, "best_epoch": _best_epoch(history),
                       "model": cfg.model, "device": str(device), "world_size": dist.world_size})
        write_json(out / "metrics.json", result)
        write_figures(history, result, out)
    dist.barrier()
    dist.shutdown()
    return result


def _load_weights(model: nn.Module, path: str, log: Callable[[str], None] = print) -> None:
    """--init-from: another checkpoint's weights, strictly (same architecture and shapes), except that the
    output layer stays new when the class count differs (pretrain on one dataset, fine-tune on another)."""
    for note in transfer.init_from(model, path):
        log(f"--init-from: {note}")


def _best_epoch(history: list[dict[str, Any]]) -> int:
    return max(history, key=lambda r: r["val_acc"])["epoch"] if history else 0


def _validate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device,
              autocast: bool, dist: Distributed) -> tuple[float, float]:
    """Validation loss and accuracy over the shards of all ranks (x, y: this rank's shard)."""
    totals = torch.zeros(3, dtype=torch.float64)
    if len(y):
        logits = forward_in_batches(model, x, batch_size, device, autocast)
        totals += torch.tensor([F.cross_entropy(logits, y, reduction="sum").item(),
                                (logits.argmax(1) == y).sum().item(), len(y)], dtype=torch.float64)
    totals = dist.all_sum(totals.to(device)).cpu()  # NCCL reduces on the GPU only
    return (totals[0] / totals[2]).item(), (totals[1] / totals[2]).item()
