"""Hyper-parameter search with Optuna, selected on the validation split only.

    tune(base, out, trials=N) → OUT/{study.db, trials.csv, trials.md, history.png, intermediate.png,
                                     best.toml, best.json, trials/NNNN/}

Each trial trains `base` with sampled values through `train(..., evaluate_test=False)`, so the test split is never
looked at, and reports validation accuracy after every epoch so that the median pruner can stop a hopeless trial.
The study lives in OUT/study.db (SQLite): rerunning the same command continues it, and `trials` counts the whole
study (finished + pruned). A trial cut off by a kill is marked failed on the next run and its values are retried.
`best.toml` is a preset: `digitrec train --preset OUT/best.toml --out RUN` trains the winner.

The search space is TOML, one entry per setting (see docs/distributed.md):
    lr = { low = 1e-4, high = 1e-2, log = true }      # a range (int when the setting is an int), optional step
    batch_size = { choices = [32, 64, 128] }          # a list of choices
    dropout = { low = 0.0, high = 0.5 }               # a model option (anything that is not a TrainConfig field)
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

from .config import FIELDS, TrainConfig, base_type, tomllib
from .config import preset_toml as config_toml
from .errors import DigitrecError
from .fileio import atomic_path, write_json, write_text

STUDY = "digitrec-tune"
DEFAULT_SPACE_TOML = """\
lr = { low = 3e-4, high = 3e-2, log = true }
batch_size = { choices = [32, 64, 128, 256] }
weight_decay = { choices = [0.0, 1e-5, 1e-4, 1e-3] }
dropout = { low = 0.0, high = 0.5 }
rotate = { low = 0.0, high = 20.0 }
shear = { low = 0.0, high = 20.0 }
shift = { low = 0.0, high = 0.15 }
scale = { low = 0.0, high = 0.15 }
"""
_SPEC_KEYS = {"low", "high", "log", "step", "choices"}
_MACHINE = ("device", "threads", "data_dir")  # where a trial ran, not what it was: not part of the study or preset


def parse_space(text: str, where: str = "space") -> dict[str, dict[str, Any]]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DigitrecError(f"{where}: not valid TOML ({e})") from None
    if not raw:
        raise DigitrecError(f"{where}: no settings to search")
    for name, spec in raw.items():
        bad = f"{where}: {name}"
        if name == "model_options" or (name in FIELDS and name in ("dataset", "model", "split", "limit", "epochs")):
            raise DigitrecError(f"{bad}: not searchable (set it with a flag; model options are plain keys)")
        if not isinstance(spec, dict) or not spec or set(spec) - _SPEC_KEYS:
            raise DigitrecError(f"{bad}: expected {{ low = A, high = B[, log = true][, step = S] }} "
                                f"or {{ choices = [...] }}, got {spec!r}")
        if "choices" in spec:
            choices = spec["choices"]
            if set(spec) != {"choices"} or not isinstance(choices, list) or not choices or \
                    not all(isinstance(c, (bool, int, float, str)) for c in choices):
                raise DigitrecError(f"{bad}: choices must be a non-empty list of numbers, strings or booleans")
            continue
        low, high = spec.get("low"), spec.get("high")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or not low < high:
            raise DigitrecError(f"{bad}: needs numbers low < high, got low={low!r} high={high!r}")
        if spec.get("log") and (low <= 0 or "step" in spec):
            raise DigitrecError(f"{bad}: a log range needs low > 0 and no step")
    return raw


def load_space(path: str | os.PathLike | None) -> dict[str, dict[str, Any]]:
    if path is None:
        return parse_space(DEFAULT_SPACE_TOML, "built-in space")
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise DigitrecError(f"--space: {path} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DigitrecError(f"--space: cannot read {path} ({e})") from None
    return parse_space(text, str(path))


def apply(base: TrainConfig, values: dict[str, Any]) -> TrainConfig:
    """`base` with sampled values: TrainConfig fields by name, anything else as a model option."""
    fields = {k: v for k, v in values.items() if k in FIELDS}
    options = {k: v for k, v in values.items() if k not in FIELDS}
    cfg = dataclasses.replace(base, **fields, model_options={**base.model_options, **options})
    return cfg.validate()


def check_space(space: dict[str, dict[str, Any]], base: TrainConfig, builtin: bool = False) -> dict[str, dict]:
    """Every end of every range must give a valid config and a model that builds (fails before any trial runs).
    The built-in space drops model options the model does not have (dropout for a model without it)."""
    from .models import check_options

    check_options(base.model, 10, base.model_options)  # unknown model → one clear error, now
    kept = {}
    for name, spec in space.items():
        for value in spec.get("choices", [spec.get("low"), spec.get("high")]):
            try:
                cfg = apply(base, {name: value})
                if name not in FIELDS:
                    check_options(cfg.model, 10, cfg.model_options)
            except DigitrecError as e:
                if builtin and name not in FIELDS:
                    break
                raise DigitrecError(f"space: {name} = {value!r}: {e}") from None
        else:
            kept[name] = spec
    return kept


def _suggest(trial, name: str, spec: dict[str, Any]):
    if "choices" in spec:
        return trial.suggest_categorical(name, spec["choices"])
    as_int = base_type(name) is int if name in FIELDS else \
        isinstance(spec["low"], int) and isinstance(spec["high"], int) and isinstance(spec.get("step", 1), int)
    if as_int:
        return trial.suggest_int(name, int(spec["low"]), int(spec["high"]), step=int(spec.get("step", 1)),
                                 log=bool(spec.get("log", False)))
    return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), step=spec.get("step"),
                               log=bool(spec.get("log", False)))


def _objective(trial, base: TrainConfig, space: dict, out: Path, log: Callable[[str], None]) -> float:
    import optuna

    from .train import train

    values = {name: _suggest(trial, name, spec) for name, spec in space.items()}
    cfg = apply(base, values)
    run_dir = out / "trials" / f"{trial.number:04d}"
    shutil.rmtree(run_dir, ignore_errors=True)  # trial numbers are never reused: a leftover is from a dead run
    shown = ", ".join(f"{k}={_short(v)}" for k, v in values.items())

    def on_epoch(epoch: int, row: dict[str, Any]) -> None:
        trial.report(row["val_acc"], epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"val_acc {row['val_acc']:.4f} after epoch {epoch}")

    trial.set_user_attr("run_dir", str(run_dir))
    try:
        result = train(cfg, run_dir, progress=False, log=lambda s: None, on_epoch=on_epoch, evaluate_test=False)
    except optuna.TrialPruned as e:
        log(f"trial {trial.number}: pruned ({e})  {shown}")
        raise
    except DigitrecError as e:
        if str(e).startswith("interrupted"):  # train() turns Ctrl-C into --resume advice, which tune does not use
            raise KeyboardInterrupt from None
        raise
    finally:
        (run_dir / "last.pt").unlink(missing_ok=True)  # resume state is not needed: model.pt stays
    trial.set_user_attr("train_time_s", result["train_time_s"])
    trial.set_user_attr("best_epoch", result["best_epoch"])
    log(f"trial {trial.number}: val_acc {result['best_val_acc']:.4f}  {shown}  {result['train_time_s']:.1f}s")
    return result["best_val_acc"]


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _open_study(out: Path, seed: int | None = None, prune: bool = True, create: bool = False):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'study.db'}",
                                         engine_kwargs={"connect_args": {"timeout": 120}})
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3) if prune else optuna.pruners.NopPruner()
    if create:
        return optuna.create_study(storage=storage, study_name=STUDY, direction="maximize", sampler=sampler,
                                   pruner=pruner, load_if_exists=True), storage
    return optuna.load_study(storage=storage, study_name=STUDY, sampler=sampler, pruner=pruner), storage


def _work(out: Path, base: TrainConfig, space: dict, n_trials: int, seed: int, prune: bool) -> None:
    """One worker: `n_trials` trials of the shared study (in this process or a spawned one)."""
    study, _ = _open_study(out, seed, prune)
    study.optimize(lambda t: _objective(t, base, space, out, _log_line), n_trials=n_trials, gc_after_trial=True)


def _log_line(text: str) -> None:
    print(text, flush=True)


@contextlib.contextmanager
def _exclusive(out: Path):
    """One `digitrec tune` per study folder: a second one would mark the first one's running trials failed."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    with open(out / ".tune.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DigitrecError(f"another digitrec tune is running on {out}") from None
        yield


def _study_key(base: TrainConfig, space: dict) -> dict[str, Any]:
    cfg = {k: v for k, v in dataclasses.asdict(base).items() if k not in _MACHINE}
    return json.loads(json.dumps({"base": cfg, "space": space}))


def tune(base: TrainConfig, out: str | os.PathLike, trials: int, space: dict | None = None, jobs: int = 1,
         prune: bool = True, log: Callable[[str], None] = _log_line) -> dict[str, Any]:
    """Run the study in `out` up to `trials` finished trials; write the reports. Returns best.json's content."""
    import optuna

    from .data import load
    from .device import resolve_device

    if trials < 1:
        raise DigitrecError(f"--trials must be ≥ 1, got {trials}")
    if jobs < 1:
        raise DigitrecError(f"--jobs must be ≥ 1, got {jobs}")
    base.validate()
    space = check_space(space, base) if space is not None else \
        check_space(load_space(None), base, builtin=True)
    device = resolve_device(base.device)
    load(base.dataset, base.data_dir)  # a missing dataset fails here, before a study exists (and downloads once)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        study, storage = _open_study(out, create=True)
        key = _study_key(base, space)
        if not study.user_attrs.get("key"):
            study.set_user_attr("key", key)
        elif study.user_attrs["key"] != key:
            old = study.user_attrs["key"]
            diff = sorted(k for k in set(old["base"]) | set(key["base"]) if old["base"].get(k) != key["base"].get(k))
            what = f"settings {', '.join(diff)} differ" if diff else "the search space differs"
            raise DigitrecError(f"{out}/study.db holds another study ({what}); rerun it with the same flags "
                                f"and --space, or use another --out")
        # Trials left running by a killed run are failed now (no one else works on this folder); the values of
        # every failed trial are tried once more (a study-level list remembers which were).
        states = optuna.trial.TrialState
        study_id = storage.get_study_id_from_name(STUDY)
        for t in study.get_trials(deepcopy=False, states=(states.RUNNING,)):
            storage.set_trial_state_values(storage.get_trial_id_from_study_id_trial_number(study_id, t.number),
                                           states.FAIL)
        retried = study.user_attrs.get("retried", [])
        for t in study.get_trials(deepcopy=False, states=(states.FAIL,)):
            if t.number not in retried and t.params:
                study.enqueue_trial(t.params)
                retried.append(t.number)
        study.set_user_attr("retried", retried)
        done = len(study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED)))
        todo = trials - done
        if todo > 0:
            workers = min(jobs, todo)
            log(f"{out}/study.db: {done} trial(s) done, running {todo} more"
                + (f" in {workers} processes" if workers > 1 else "")
                + f" on {base.dataset} (validation split), model {base.model}")
            seed = base.seed * 1009 + done  # a resumed study does not replay the same random draws
            if workers == 1:
                _work(out, base, space, todo, seed, prune)
            else:
                _run_workers(out, base, space, todo, workers, seed, prune, device)
        else:
            log(f"{out}/study.db already holds {done} finished trial(s) (--trials {trials}): nothing to run")
        return write_reports(out, base)


def _run_workers(out: Path, base: TrainConfig, space: dict, todo: int, workers: int, seed: int, prune: bool,
                 device) -> None:
    """Spawned processes share the SQLite study; each its own GPU (round robin) or its share of the CPU threads."""
    import multiprocessing

    from .device import gpu_slots, threads_per_worker

    slots = gpu_slots(device, workers)
    ctx = multiprocessing.get_context("spawn")
    procs = []
    for i in range(workers):
        cfg = base
        if slots is not None:
            cfg = dataclasses.replace(base, device=f"cuda:{slots[i]}")
        elif device.type == "cpu" and base.threads is None:
            cfg = dataclasses.replace(base, threads=threads_per_worker(workers))
        n = todo // workers + (i < todo % workers)
        procs.append(ctx.Process(target=_work, args=(out, cfg, space, n, seed + i, prune)))
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.join(timeout=10)
        raise
    failed = [i for i, p in enumerate(procs) if p.exitcode != 0]
    if failed:
        raise DigitrecError(f"tune: worker(s) {', '.join(map(str, failed))} failed (see above); "
                            f"rerun the same command to continue the study")


# --- reports -----------------------------------------------------------------------------------------------------

def write_reports(out: Path, base: TrainConfig) -> dict[str, Any]:
    import optuna

    study, _ = _open_study(out)
    trials = study.get_trials(deepcopy=False)
    names = sorted({k for t in trials for k in t.params})
    rows = [{"number": t.number, "state": t.state.name.lower(),
             "val_acc": t.value if t.value is not None else _last(t),
             "epochs": max(t.intermediate_values, default=0),
             "best_epoch": t.user_attrs.get("best_epoch", ""),
             "train_time_s": round(t.user_attrs["train_time_s"], 2) if "train_time_s" in t.user_attrs else "",
             **{k: t.params.get(k, "") for k in names}} for t in trials]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["number"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "trials.csv", buf.getvalue())

    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    ranked = sorted(rows, key=lambda r: (r["state"] != "complete", -(r["val_acc"] or 0)))
    lines = [f"# digitrec tune — {len(trials)} trials of {base.model} on {base.dataset} "
             f"(selected on the validation split; limit {base.limit}, {base.epochs} epochs)", "",
             "| trial | state | val acc | epochs | time (s) | " + " | ".join(names) + " |",
             "|---:|---|---:|---:|---:|" + "---:|" * len(names)]
    for r in ranked:
        acc = f"{r['val_acc']:.4f}" if isinstance(r["val_acc"], float) else ""
        lines.append(f"| {r['number']} | {r['state']} | {acc} | {r['epochs']} | {r['train_time_s']} | "
                     + " | ".join(_short(r[k]) for k in names) + " |")
    write_text(out / "trials.md", "\n".join(lines) + "\n")

    if not complete:
        return {}
    _plots(study, out)
    best = study.best_trial
    cfg = apply(base, best.params)
    summary = {"trial": best.number, "val_acc": best.value, "params": best.params,
               "finished_trials": len(complete), "trials": len(trials), "run_dir": best.user_attrs.get("run_dir"),
               "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _MACHINE}}
    header = (f"# digitrec tune: best of {len(trials)} trials in {out / 'study.db'} — trial {best.number}, "
              f"validation accuracy {best.value:.4f}\n# (tuned with limit = {base.limit}; train it with "
              f"`digitrec train --preset {out / 'best.toml'} --out RUN`)\n")
    write_text(out / "best.toml", header + preset_toml(cfg))
    write_json(out / "best.json", summary)
    return summary


def _last(t) -> float | str:
    return t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else ""


def _plots(study, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for name, plot in (("history.png", optuna.visualization.matplotlib.plot_optimization_history),
                           ("intermediate.png", optuna.visualization.matplotlib.plot_intermediate_values)):
            ax = plot(study)
            ax.set_ylabel("validation accuracy")
            fig = ax.figure
            with atomic_path(out / name) as tmp:
                fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
            plt.close(fig)


def preset_toml(cfg: TrainConfig) -> str:
    """A preset file for `cfg`: every setting but the machine-specific ones and limit (a flag cannot unset it)."""
    return config_toml(cfg, skip=(*_MACHINE, "limit"))
