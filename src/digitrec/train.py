"""The training loop: data resident on the device as uint8, batches sliced from it, one batched augmentation.

    train(cfg, out_dir) → RUN_DIR/{model.pt, last.pt, history.json, metrics.json, accuracy.png, loss.png, confusion.png}

A run is `Trainer.setup` (device, data, model, optimizer), `restore` (a resume), then per epoch `epoch` →
`validate` → `save`, then `finish` (test metrics, figures). `last.pt` holds everything needed to resume (optimizer,
schedule, EMA, RNG states, history) and is the run's commit point: it is written first each epoch, then `model.pt`
(the best epoch by validation accuracy) and `history.json`, all atomically. A run killed anywhere resumes from its
last saved epoch with `resume=True` and continues exactly as if it had not been interrupted; files written after
last.pt that a kill left behind are rebuilt from it. When launched by torchrun, the loop runs DDP; only rank 0
writes files.
"""
from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint, config, transfer
from .augment import AugmentConfig, augment_batch
from .config import TrainConfig
from .data import load, make_split
from .device import Distributed, resolve_device
from .errors import DigitrecError
from .fileio import write_json
from .models import create
from .predict import forward_in_batches, to_float
from .runinfo import RunInfo
from .step import graph_optimizer_options, make_step

CHECK_EVERY = 50  # steps between host syncs (progress bar, non-finite loss check)
BN_RECALIBRATION_IMAGES = 5000  # training images whose statistics the EMA model's BatchNorm layers are given


def make_optimizer(cfg: TrainConfig, params, device: torch.device | None = None) -> torch.optim.Optimizer:
    """The optimizer; with cfg.cuda_graphs, in its capturable form (learning rate as a tensor on `device`)."""
    options = graph_optimizer_options(cfg.optimizer, cfg.lr, device) if cfg.cuda_graphs else {"lr": cfg.lr}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, weight_decay=cfg.weight_decay, **options)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, weight_decay=cfg.weight_decay, **options)
    return torch.optim.SGD(params, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay, **options)


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


def _native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a private oneDNN query: when it is missing, assume support
        return True


def train(cfg: TrainConfig | None, out_dir, resume: bool = False, progress: bool = True,
          log: Callable[[str], None] = print, on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
          evaluate_test: bool = True, setup: Callable[[nn.Module], None] | None = None) -> dict[str, Any]:
    """Train, keep the best checkpoint by validation accuracy, evaluate it on the test split. Returns metrics.

    `cfg=None` with `resume=True` continues the run in `out_dir` with its own configuration (from last.pt); a
    given `cfg` must agree with it (config.MAY_CHANGE_ON_RESUME aside). `on_epoch(epoch, row)` runs after each
    epoch's files are written (on every rank, with the same row); it may raise to stop the run (tuning prunes this
    way). `evaluate_test=False` never touches the test split (hyper-parameter search selects on validation only).
    `setup(model)` runs on the built model before the optimizer exists (pruning registers gradient masks there).
    """
    return Trainer(cfg, out_dir, resume, progress, log, on_epoch, setup).run(evaluate_test)


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class Trainer:
    """One run: `setup` → `restore` (a resume) → per epoch `epoch` → `validate` → `save` → `finish`; `run` does it all."""

    def __init__(self, cfg: TrainConfig | None, out_dir, resume: bool = False, progress: bool = True,
                 log: Callable[[str], None] = print, on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
                 setup: Callable[[nn.Module], None] | None = None) -> None:
        self.out, self.resume, self.progress, self.log = Path(out_dir), resume, progress, log
        self.on_epoch, self.setup_model = on_epoch, setup
        self.last_path, self.best_path = self.out / "last.pt", self.out / "model.pt"
        self.dist = Distributed()
        self.state = check_folder(self.out, resume, self.dist.is_main)  # last.pt, loaded once, when resuming
        if cfg is None and not resume:
            raise DigitrecError("train: a configuration is needed unless resuming a run")
        self.cfg = resume_config(self.state, cfg, self.last_path) if resume else cfg.validate()
        transfer.check(self.cfg, resume)
        self.history: list[dict[str, Any]] = []
        self.saved_epoch, self.best_epoch, self.best_acc, self.train_time = 0, 0, -1.0, 0.0
        self.phase_s: dict[str, float] = {}

    # --- setup: device, data, model, optimizer -------------------------------------------------------------------

    def setup(self) -> None:
        cfg, dist = self.cfg, self.dist
        self.device = dist.setup(resolve_device(cfg.device))
        self._check_speed_options()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if dist.local_rank != 0:  # one process per machine downloads, the others wait
            dist.barrier()
        data = load(cfg.dataset, cfg.data_dir)
        if dist.local_rank == 0:
            dist.barrier()
        self.num_classes = data.num_classes
        self.split = make_split(data, cfg.split, cfg.limit)
        self.train_x = torch.from_numpy(self.split.train_images).to(self.device)
        self.train_y = torch.from_numpy(self.split.train_labels).long().to(self.device)
        # every rank gets the same number of samples, so the same number of steps (DDP hangs otherwise); the few
        # (< world size) left over differ each epoch. batch_size is per process: the global batch is × world size.
        self.per_rank = len(self.train_y) // dist.world_size
        if self.per_rank < 2:
            raise DigitrecError(f"{len(self.train_y)} training samples cannot be shared by {dist.world_size} "
                                "process(es); a run needs at least 2 per process")
        self.steps_per_epoch = max(1, self.per_rank // cfg.batch_size + (self.per_rank % cfg.batch_size >= 2))
        self.autocast = (cfg.bf16 and self.device.type == "cuda") or (cfg.bf16_cpu and self.device.type == "cpu")
        if self.autocast and self.device.type == "cpu" and not _native_bf16():
            self.log("warning: this CPU has no native bfloat16 (AVX512-BF16 or AMX); --bf16-cpu will be slower than "
                     "float32 here: add --no-bf16-cpu")
        self._build_model()
        self.aug = AugmentConfig.from_config(cfg)

    def _check_speed_options(self) -> None:
        """--cuda-graphs needs a CUDA device and one process, and a fixed set of trained parameters."""
        cfg = self.cfg
        if not cfg.cuda_graphs:
            return
        if self.device.type != "cuda":
            raise DigitrecError(f"--cuda-graphs needs a CUDA device; this run is on {self.device}")
        if cfg.compile:
            raise DigitrecError("--cuda-graphs and --compile: choose one (--compile --compile-mode reduce-overhead "
                                "graphs the forward and backward passes itself)")
        if self.dist.enabled:
            raise DigitrecError("--cuda-graphs is not supported with torchrun (several processes)")
        if transfer.uses_backbone(cfg):
            raise DigitrecError("--cuda-graphs is not supported with --freeze, --unfreeze-epoch or --backbone-lr")

    def _build_model(self) -> None:
        cfg, device = self.cfg, self.device
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)
        model = create(cfg.model, num_classes=self.num_classes, **cfg.model_options).to(device)
        if cfg.init_from and not self.resume:  # a resume restores its own weights from last.pt
            for note in transfer.init_from(model, cfg.init_from):
                self.log(f"--init-from: {note}")
        transfer.prepare(model, cfg, self.resume, self.dist.enabled, self.log)  # backbone weights, freezing
        if self.setup_model is not None:
            self.setup_model(model)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer = make_optimizer(cfg, transfer.param_groups(model, cfg), device)  # a backbone group if asked
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           lr_factor(cfg, self.steps_per_epoch * cfg.epochs))
        self.ema = None
        if cfg.ema > 0:
            self.ema = torch.optim.swa_utils.AveragedModel(
                model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
        self.train_model = self.dist.wrap(model, device)
        if cfg.compile:
            self.train_model = torch.compile(self.train_model, mode=cfg.compile_mode)
        self.step = make_step(self.train_model, self.optimizer, cfg.cuda_graphs, self.autocast, cfg.label_smoothing)

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    # --- restore: continue from last.pt --------------------------------------------------------------------------

    def restore(self) -> None:
        state, dist = self.state, self.dist
        if state.get("world_size", 1) != dist.world_size:  # the global batch and the schedule depend on it
            raise DigitrecError(f"--resume: {self.last_path} was trained by {state.get('world_size', 1)} "
                                f"process(es), not {dist.world_size}; resume with the same number of processes")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["rng"]["torch"])
        self.gen.set_state(state["rng"]["generator"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.saved_epoch, self.best_acc = state["epoch"], state["best_val_acc"]
        self.history, self.train_time = state["history"], state["train_time_s"]
        self.best_epoch = state.get("best_epoch") or _best_epoch(self.history)
        if dist.is_main:
            self.log(f"resuming {self.out} after epoch {self.saved_epoch}/{self.cfg.epochs} (its last checkpoint)")
            self._repair()

    def _repair(self) -> None:
        """Rebuild what a kill (or a full disk) between last.pt and the files after it left stale or missing."""
        saved = checkpoint.load(self.best_path).get("epoch") if self.best_path.is_file() else None
        if saved != self.best_epoch:
            if self.best_epoch != self.saved_epoch:  # only the last epoch's weights are in last.pt
                raise DigitrecError(f"{self.best_path} (best epoch {self.best_epoch}) is missing or was replaced, "
                                    f"and last.pt holds epoch {self.saved_epoch}: start a new run in another --out")
            self._write_best(self.history[-1])
            self.log(f"rewrote {self.best_path.name} (epoch {self.best_epoch}) from last.pt: the run had stopped "
                     "before writing it")
        write_json(self.out / "history.json", self._history_record())

    # --- one epoch ------------------------------------------------------------------------------------------------

    def epoch(self, epoch: int) -> dict[str, Any]:
        """Train one (0-based) epoch; returns its training loss, accuracy and time (summed over all ranks)."""
        cfg, dist, device = self.cfg, self.dist, self.device
        transfer.start_epoch(self.model, cfg, epoch + 1)  # model.train(), a frozen backbone kept in eval mode
        t0 = time.perf_counter()
        perm = torch.randperm(len(self.train_y), device=device, generator=self.gen)
        aug_gen = self.gen
        if dist.enabled:  # every rank its own equal shard of one permutation (gen stays in step on all ranks)
            perm = perm[:self.per_rank * dist.world_size][dist.rank::dist.world_size]
            # own augmentation and dropout draws per rank (a shared stream would give rank r's batch i the
            # transforms of rank 0's), seeded by (seed, epoch, rank) so a resume needs no per-rank RNG state
            rank_seed = (cfg.seed * 1_000_003 + epoch) * 1009 + dist.rank
            aug_gen = torch.Generator(device=device).manual_seed(rank_seed)
            torch.manual_seed(rank_seed)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        bar = self._progress_bar(epoch)
        for step in range(self.steps_per_epoch):
            idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            xb = augment_batch(to_float(self.train_x[idx]), self.aug, aug_gen)
            yb = self.train_y[idx]
            if cfg.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            loss, logits = self.step(xb, yb)
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            loss_sum += loss.detach() * len(yb)
            correct += (logits.argmax(1) == yb).sum()
            seen += len(yb)
            if step % CHECK_EVERY == CHECK_EVERY - 1 or step == self.steps_per_epoch - 1:  # a host sync
                if not dist.enabled:  # (with DDP, all ranks decide together below, on the summed loss)
                    self._check_finite(loss_sum, epoch, step)
                if bar is not None:
                    bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{correct.item() / seen:.4f}")
            if bar is not None:
                bar.update(1)
        if device.type == "cuda":
            torch.cuda.synchronize()
        epoch_time = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        seen_t = torch.tensor(float(seen), device=device)
        totals = dist.all_sum(torch.stack([loss_sum.float(), correct.float(), seen_t]))
        self._check_finite(totals[0], epoch, self.steps_per_epoch - 1)
        return {"epoch": epoch + 1, "train_loss": totals[0].item() / totals[2].item(),
                "train_acc": totals[1].item() / totals[2].item(), "epoch_time_s": epoch_time,
                "images_per_s": totals[2].item() / epoch_time}

    def _progress_bar(self, epoch: int):
        if not (self.progress and self.dist.is_main):
            return None
        from tqdm import tqdm

        return tqdm(total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", unit="batch",
                    leave=False, dynamic_ncols=True)

    def _check_finite(self, value: torch.Tensor, epoch: int, step: int, what: str = "training loss") -> None:
        if bool(torch.isfinite(value)):
            return
        kept = f"{self.best_path.name} holds epoch {self.best_epoch}" if self.best_epoch else "no model.pt was written"
        raise DigitrecError(f"training diverged: the {what} became {value.item()} in epoch {epoch + 1} "
                            f"(by step {step + 1}); stopped without saving that epoch ({kept}); try a lower --lr")

    @torch.no_grad()
    def recalibrate_ema(self) -> None:
        """Give the EMA model's BatchNorm layers the statistics of its own weights. Averaged running statistics belong
        to the raw weights of past steps, not to the averaged weights (with weight decay and a high learning rate
        the EMA model then scores near chance); the first training images, unaugmented, as SWA's update_bn does."""
        if self.ema is None:
            return
        x = self.train_x[:BN_RECALIBRATION_IMAGES]
        batches = [to_float(x[i:i + self.cfg.eval_batch_size]) for i in range(0, len(x), self.cfg.eval_batch_size)]
        if self.cfg.channels_last:
            batches = [b.contiguous(memory_format=torch.channels_last) for b in batches]
        torch.optim.swa_utils.update_bn(batches, self.ema.module, self.device)

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        """Validation loss and accuracy of the evaluated model over the shards of all ranks."""
        self.recalibrate_ema()
        dist, model = self.dist, self.eval_model
        if dist.enabled:  # BN running stats drift per rank in the last step: validate rank 0's model everywhere
            dist.broadcast_buffers(model)
        # each rank a shard of the validation set, summed: every rank gets the same numbers, so agrees on "best"
        x = torch.from_numpy(self.split.val_images)[dist.rank::dist.world_size]
        y = torch.from_numpy(self.split.val_labels).long()[dist.rank::dist.world_size]
        totals = torch.zeros(3, dtype=torch.float64)
        if len(y):
            logits = forward_in_batches(model, x, self.cfg.eval_batch_size, self.device, self.autocast)
            totals += torch.tensor([F.cross_entropy(logits, y, reduction="sum").item(),
                                    (logits.argmax(1) == y).sum().item(), len(y)], dtype=torch.float64)
        totals = dist.all_sum(totals.to(self.device)).cpu()  # NCCL reduces on the GPU only
        return (totals[0] / totals[2]).item(), (totals[1] / totals[2]).item()

    # --- save: last.pt first (the commit point), then model.pt and history.json -----------------------------------

    def save(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        epoch, improved = row["epoch"], row["val_acc"] > self.best_acc
        if improved:
            self.best_acc, self.best_epoch = row["val_acc"], epoch
        if not self.dist.is_main:
            return
        try:
            checkpoint.save(self.last_path, self.model, self.cfg.model, self.cfg.model_options, self.num_classes,
                            epoch=epoch, optimizer=self.optimizer.state_dict(),
                            scheduler=self.scheduler.state_dict(),
                            ema=self.ema.state_dict() if self.ema is not None else None, rng=self._rng_state(),
                            best_val_acc=self.best_acc, best_epoch=self.best_epoch, history=self.history,
                            train_time_s=self.train_time, world_size=self.dist.world_size,
                            **self.info.checkpoint_fields())
            self.saved_epoch = epoch
            if improved:
                self._write_best(row)
            write_json(self.out / "history.json", self._history_record())
        except DigitrecError as e:
            where = (f"last.pt holds epoch {self.saved_epoch}: free space, then rerun with --resume"
                     if self.saved_epoch else "nothing was saved: free space, then start the run again")
            raise DigitrecError(f"{e}; {where}") from None

    def _write_best(self, row: dict[str, Any]) -> None:
        checkpoint.save(self.best_path, self.eval_model, self.cfg.model, self.cfg.model_options, self.num_classes,
                        epoch=row["epoch"], metrics={"val_acc": row["val_acc"], "val_loss": row["val_loss"]},
                        **self.info.checkpoint_fields())

    def _rng_state(self) -> dict[str, Any]:
        state = {"torch": torch.get_rng_state(), "generator": self.gen.get_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def _history_record(self) -> dict[str, Any]:
        return {**self.info.record(), "train_time_s": self.train_time, "epochs": self.history}

    # --- the whole run --------------------------------------------------------------------------------------------

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        """Wall time spent in a part of the run (setup, validate, save, test, figures), summed: metrics.json's
        phase_time_s says where a run's time went besides training."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.phase_s[name] = self.phase_s.get(name, 0.0) + time.perf_counter() - t0

    def run(self, evaluate_test: bool = True) -> dict[str, Any]:
        with self._phase("setup"):  # device, data (decoded or from the cache), model, optimizer
            self.setup()
        cfg, dist, state = self.cfg, self.dist, self.state or {}
        self.info = RunInfo.start(cfg, self.split.sizes(), self.device, dist.world_size, state.get("epoch", 0),
                                  state.get("sessions"))
        if self.resume:
            self.restore()
        if dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.log(f"training {cfg.model} on {cfg.dataset} ({cfg.split} split: {self.split.sizes()}) on "
                     f"{self.device}" + (f" × {dist.world_size} processes (global batch "
                                         f"{cfg.batch_size * dist.world_size})" if dist.enabled else ""))
        # SIGTERM (kill, SLURM preemption, a shell's background job, which ignores Ctrl-C) stops like Ctrl-C: the
        # epoch in progress is dropped, last.pt keeps the last finished one, and the error says how to resume.
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            for epoch in range(self.saved_epoch, cfg.epochs):
                row = self.epoch(epoch)
                self.train_time += row["epoch_time_s"]
                with self._phase("validate"):
                    val_loss, val_acc = self.validate()
                self._check_finite(torch.tensor(val_loss), epoch, self.steps_per_epoch - 1, "validation loss")
                row = {**row, "val_loss": val_loss, "val_acc": val_acc,
                       "lr": float(self.optimizer.param_groups[0]["lr"])}  # a tensor with --cuda-graphs
                with self._phase("save"):
                    self.save(_ordered(row))
                if dist.is_main:
                    self.log(f"epoch {epoch + 1}/{cfg.epochs}  loss {row['train_loss']:.4f}  acc "
                             f"{row['train_acc']:.4f}  val_loss {val_loss:.4f}  val_acc {val_acc:.4f}  "
                             f"{row['epoch_time_s']:.1f}s")
                dist.barrier()
                if self.on_epoch is not None:
                    self.on_epoch(epoch + 1, row)
        except KeyboardInterrupt:
            where = f"{self.last_path} holds epoch {self.saved_epoch}; continue with --resume" \
                if self.saved_epoch else "no epoch had finished"
            raise DigitrecError(f"interrupted: {where}") from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return self.finish(evaluate_test)

    def finish(self, evaluate_test: bool) -> dict[str, Any]:
        """The result: validation summary, plus (rank 0, evaluate_test) the best model's test metrics + figures."""
        result = {"best_val_acc": self.best_acc, "best_epoch": self.best_epoch, "train_time_s": self.train_time,
                  "epochs": self.cfg.epochs, "model": self.cfg.model, "device": str(self.device),
                  "world_size": self.dist.world_size}
        if self.dist.is_main and evaluate_test:
            from .evaluate import evaluate_checkpoint, write_figures

            with self._phase("test"):
                metrics = evaluate_checkpoint(self.best_path, self.cfg.dataset, self.cfg.split, device=self.device,
                                              tta=self.cfg.tta, split_obj=self.split)
            result = {**metrics, **result, **self.info.record()}
            with self._phase("figures"):
                write_figures(self.history, result, self.out)
            result["phase_time_s"] = {"train": self.train_time, **self.phase_s}  # this session's
            write_json(self.out / "metrics.json", result)  # last: the run's completion mark
        self.dist.barrier()
        self.dist.shutdown()
        return result


def _ordered(row: dict[str, Any]) -> dict[str, Any]:
    """history.json's column order: epoch, train, validation, lr, timing."""
    keys = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time_s", "images_per_s")
    return {k: row[k] for k in keys}


def _best_epoch(history: list[dict[str, Any]]) -> int:
    return max(history, key=lambda r: r["val_acc"])["epoch"] if history else 0


def check_folder(out: Path, resume: bool, is_main: bool = True) -> dict[str, Any] | None:
    """The run folder's state: refuse a file, a finished or unfinished run (without resume) or nothing to resume;
    remove temporary files a killed write left (rank 0, the only writer); return last.pt's content when resuming."""
    if out.exists() and not out.is_dir():
        raise DigitrecError(f"--out {out} is a file, not a folder")
    for tmp in list(out.glob(".*.tmp")) if out.is_dir() and is_main else []:  # a kill during an atomic write
        tmp.unlink(missing_ok=True)
    last = out / "last.pt"
    if resume:
        if not last.is_file():
            raise DigitrecError(f"--resume: {last} not found (nothing to resume"
                                + ("; no epoch had been saved: start the run again without --resume)"
                                   if out.is_dir() and not (out / "model.pt").exists() else ")"))
        return checkpoint.load(last)
    for name, what in (("last.pt", "a run (last.pt); use --resume to continue it"),
                       ("model.pt", "a run (model.pt); use --resume to continue it")):
        if (out / name).exists():
            raise DigitrecError(f"{out} already holds {what} or another --out")
    return None


def resume_config(state: dict[str, Any], cfg: TrainConfig | None, where: Path) -> TrainConfig:
    """The configuration of the run being resumed; a given `cfg` may only change what a resume may change."""
    saved = config.from_dict(state.get("config"), str(where))
    if cfg is None:
        return saved
    return config.for_resume(saved, {k: getattr(cfg.validate(), k) for k in config.FIELDS}, str(where))
