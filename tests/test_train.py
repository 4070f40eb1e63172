"""The training loop: run files, best-checkpoint selection, exact resume after an interruption, clear errors,
a run folder that can never get stuck (kills and full disks between writes), honest run records."""
import errno
import json
import os
import subprocess
import sys

import pytest
import torch

import digitrec.train as train_mod
from digitrec import checkpoint, fileio
from digitrec.cli import main
from digitrec.config import make_config
from digitrec.errors import DigitrecError
from digitrec.train import train

RUN_FILES = {"model.pt", "last.pt", "history.json", "metrics.json", "accuracy.png", "loss.png", "confusion.png"}
RECIPE = dict(model="fast", dataset="mnist", split="canonical", limit=1000, epochs=2, batch_size=32, lr=3e-3, seed=0,
              threads=2, eval_batch_size=2000)


def _cfg(data_root, **kw):
    return make_config("paper", **{**RECIPE, "data_dir": str(data_root) if data_root else None, **kw})


def _argv(data_root, **kw) -> list[str]:
    """The same recipe as command-line flags."""
    values = {**RECIPE, **kw}
    argv = ["--preset", "paper", "--no-progress"] + (["--data-dir", str(data_root)] if data_root else [])
    for k, v in values.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return argv


def _weights(path):
    return checkpoint.load(path)["model"]


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, data_root):
    """The 2-epoch recipe trained without interruption: what every interrupted run must reproduce bit for bit."""
    out = tmp_path_factory.mktemp("straight") / "run"
    train(_cfg(data_root), out, progress=False, log=lambda s: None)
    return out


@pytest.mark.slow  # trains several epochs
def test_run_writes_all_files_and_records_split(straight):
    assert RUN_FILES <= {p.name for p in straight.iterdir()}
    saved = json.loads((straight / "metrics.json").read_text())
    for key in ("dataset", "split", "n", "accuracy", "precision_macro", "recall_macro", "f1_macro", "per_class",
                "confusion_matrix", "best_val_acc", "config", "sessions"):
        assert key in saved
    assert saved["split"] == "canonical" and saved["n"] == 10000 and saved["sizes"]["train"] == 1000
    assert len(saved["confusion_matrix"]) == 10 and sum(map(sum, saved["confusion_matrix"])) == 10000
    assert saved["accuracy"] > 0.5
    history = json.loads((straight / "history.json").read_text())
    assert [h["epoch"] for h in history["epochs"]] == [1, 2]
    best = max(history["epochs"], key=lambda h: h["val_acc"])
    ckpt = checkpoint.load(straight / "model.pt")
    assert ckpt["epoch"] == best["epoch"] == saved["best_epoch"] and ckpt["metrics"]["val_acc"] == best["val_acc"]
    assert ckpt["config"]["model"] == "fast" and ckpt["split"] == "canonical"


@pytest.mark.slow  # trains by itself
def test_run_records_commit_argv_and_hardware(straight):
    """One run-metadata object feeds history.json, metrics.json and the checkpoints."""
    history = json.loads((straight / "history.json").read_text())
    metrics = json.loads((straight / "metrics.json").read_text())
    (session,) = history["sessions"]
    assert metrics["sessions"] == history["sessions"] == checkpoint.load(straight / "model.pt")["sessions"]
    assert session["argv"] == sys.argv and session["start_epoch"] == 0
    assert session["commit"] == "unknown" or len(session["commit"]) == 40
    if session["dirty"]:
        assert len(session["diff_sha256"]) == 64
    hw = session["hardware"]
    assert hw["cpu"] and hw["cpu_cores"] == os.cpu_count() and hw["torch"] == torch.__version__
    assert hw["gpu"] == (torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    assert history["config"] == metrics["config"] and history["config"]["limit"] == 1000


def test_source_state_names_the_diff(tmp_path, monkeypatch):
    from digitrec.runinfo import source_state

    monkeypatch.setenv("DIGITREC_GIT_COMMIT", "abc1234")
    assert source_state() == {"commit": "abc1234", "dirty": None, "diff_sha256": None, "source": "environment"}
    monkeypatch.delenv("DIGITREC_GIT_COMMIT")
    state = source_state()
    assert state["commit"] == "unknown" or (state["dirty"] is not None and
                                            (state["diff_sha256"] is None) == (not state["dirty"]))


@pytest.mark.slow  # trains several epochs
def test_interrupted_run_resumes_exactly(tmp_path, data_root, monkeypatch, straight):
    calls = {"n": 0}
    real = train_mod.augment_batch

    def interrupt_in_epoch_two(*a, **k):
        calls["n"] += 1
        if calls["n"] == 34:  # 1,000 samples / 32 = 32 steps per epoch: step 2 of epoch 2
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(train_mod, "augment_batch", interrupt_in_epoch_two)
    with pytest.raises(DigitrecError, match="interrupted: .*last.pt holds epoch 1; continue with --resume"):
        train(_cfg(data_root), tmp_path / "resumed", progress=False, log=lambda s: None)
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    monkeypatch.setattr(train_mod, "augment_batch", real)
    train(None, tmp_path / "resumed", resume=True, progress=False, log=lambda s: None)  # its own config
    for name in ("last.pt", "model.pt"):
        assert _same(_weights(straight / name), _weights(tmp_path / "resumed" / name))
    sessions = json.loads((tmp_path / "resumed" / "history.json").read_text())["sessions"]
    assert [s["start_epoch"] for s in sessions] == [0, 1]


@pytest.mark.slow  # trains several epochs
def test_sigterm_stops_like_ctrl_c(tmp_path, data_root, monkeypatch):
    """kill / SLURM preemption / a background job (which ignores Ctrl-C): same clean stop, resumable."""
    import signal

    calls = {"n": 0}
    real = train_mod.augment_batch

    def sigterm_in_epoch_two(*a, **k):
        calls["n"] += 1
        if calls["n"] == 34:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(train_mod, "augment_batch", sigterm_in_epoch_two)
    with pytest.raises(DigitrecError, match="interrupted: .*last.pt holds epoch 1; continue with --resume"):
        train(_cfg(data_root), tmp_path / "run", progress=False, log=lambda s: None)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the training run's only
    assert not (tmp_path / "run" / "metrics.json").exists()
    monkeypatch.setattr(train_mod, "augment_batch", real)
    train(_cfg(data_root), tmp_path / "run", resume=True, progress=False, log=lambda s: None)
    assert (tmp_path / "run" / "metrics.json").exists()


def test_refuses_to_overwrite_and_resume_needs_a_run(tmp_path, data_root):
    (tmp_path / "run").mkdir()
    with pytest.raises(DigitrecError, match="nothing to resume; no epoch had been saved"):
        train(_cfg(data_root, epochs=1), tmp_path / "run", resume=True, progress=False)
    (tmp_path / "run" / "model.pt").write_bytes(b"x")
    with pytest.raises(DigitrecError, match="already holds a run"):
        train(_cfg(data_root, epochs=1), tmp_path / "run", progress=False)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(DigitrecError, match="--out .*file is a file, not a folder"):
        train(_cfg(data_root, epochs=1), tmp_path / "file", progress=False)
    assert (tmp_path / "file").read_text() == "not a folder"


# --- --resume takes the run's configuration from last.pt ---------------------------------------------------------


@pytest.fixture(scope="module")
def one_epoch_of_two(tmp_path_factory, data_root):
    """A --limit 1000 --split canonical run stopped after epoch 1 of 2 (last.pt as a kill would leave it)."""
    out = tmp_path_factory.mktemp("half") / "run"
    cfg = _cfg(data_root)

    def stop(epoch, row):
        raise KeyboardInterrupt

    with pytest.raises(DigitrecError, match="interrupted"):
        train(cfg, out, progress=False, log=lambda s: None, on_epoch=stop)
    return out


def _copy(run, tmp_path):
    import shutil

    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.slow  # trains by itself
def test_plain_resume_takes_the_runs_own_settings(one_epoch_of_two, tmp_path, capsys, straight):
    """`digitrec train --out R --resume` (the README's form): the run's split, limit and epochs, not the paper
    preset's (which would have put the canonical test images into training)."""
    run = _copy(one_epoch_of_two, tmp_path)
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert "after epoch 1/2" in capsys.readouterr().out
    cfg = checkpoint.load(run / "last.pt")["config"]
    assert (cfg["split"], cfg["limit"], cfg["epochs"], cfg["model"]) == ("canonical", 1000, 2, "fast")
    assert _same(_weights(straight / "model.pt"), _weights(run / "model.pt"))


@pytest.mark.parametrize("flags, message", [
    (["--optimizer", "sgd"], "--optimizer sgd (the run has adam)"),
    (["--model-option", "width=48"], "--model-option width=48 (the run has width=32)"),
    (["--lr", "0.01"], "--lr 0.01 (the run has 0.003)"),
    (["--preset", "fast"], "--model-option width=16"),
    (["--epochs", "5"], "--epochs 5 (the run has 2)"),
    (["--no-augment"], "--augment False (the run has True)"),
])
def test_resume_refuses_contradicting_flags(one_epoch_of_two, tmp_path, capsys, flags, message):
    run = _copy(one_epoch_of_two, tmp_path)
    before = (run / "last.pt").read_bytes()
    assert main(["train", "--out", str(run), "--resume", "--no-progress", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitrec: error: --resume:") and message in err and "\n" not in err
    assert "only --device, --threads, --data-dir may change" in err
    assert (run / "last.pt").read_bytes() == before


@pytest.mark.slow  # trains by itself
def test_resume_accepts_repeated_and_machine_flags(one_epoch_of_two, tmp_path, data_root, straight):
    """The full original command line again (as torchrun restarts and sweeps do), with other threads/device."""
    run = _copy(one_epoch_of_two, tmp_path)
    argv = _argv(data_root, threads=1, device="cpu")
    assert main(["train", *argv, "--out", str(run), "--resume"]) == 0
    cfg = checkpoint.load(run / "last.pt")["config"]
    assert cfg["threads"] == 1 and cfg["device"] == "cpu" and cfg["lr"] == 3e-3


@pytest.mark.slow  # trains by itself
def test_resume_if_exists_starts_fresh_or_resumes(tmp_path, data_root):
    run = tmp_path / "run"
    argv = ["train", *_argv(data_root, epochs=1, limit=200), "--resume-if-exists", "--out", str(run)]
    assert main(argv) == 0 and (run / "metrics.json").exists()
    assert main(argv) == 0  # resumes a finished run: nothing left to train, the same result


# --- divergence --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, message", [("inf", "--lr must be a finite number, got inf"),
                                            ("nan", "--lr must be a finite number, got nan"),
                                            ("1e6", "--lr must be > 0 and ≤ 10, got 1000000.0"),
                                            ("0", "--lr must be > 0")])
def test_absurd_learning_rates_are_refused_at_config_time(tmp_path, capsys, value, message):
    assert main(["train", "--lr", value, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitrec: error:") and message in err and "\n" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("bad_epoch", [1, 2])
def test_non_finite_loss_stops_without_saving_the_bad_epoch(tmp_path, data_root, monkeypatch, bad_epoch):
    """NaN inputs from step 5 of `bad_epoch`: the run stops at the next check, before that epoch is saved."""
    calls = {"n": 0}
    real = train_mod.augment_batch

    def nan_from(*a, **k):
        calls["n"] += 1
        x = real(*a, **k)
        return x * float("nan") if calls["n"] > 32 * (bad_epoch - 1) + 4 else x

    monkeypatch.setattr(train_mod, "augment_batch", nan_from)
    run = tmp_path / "run"
    with pytest.raises(DigitrecError, match=f"training diverged: the training loss became nan in epoch {bad_epoch} "
                                            r"\(by step [0-9]+\); stopped without saving that epoch") as e:
        train(_cfg(data_root), run, progress=False, log=lambda s: None)
    assert "lower --lr" in str(e.value) and "\n" not in str(e.value)
    assert calls["n"] <= 32 * (bad_epoch - 1) + train_mod.CHECK_EVERY  # stopped at the first check
    if bad_epoch == 1:
        assert not (run / "model.pt").exists() and not (run / "last.pt").exists()
    else:
        assert checkpoint.load(run / "model.pt")["epoch"] == 1 and checkpoint.load(run / "last.pt")["epoch"] == 1
        assert len(json.loads((run / "history.json").read_text())["epochs"]) == 1


def test_nan_checkpoint_is_refused_at_load(straight, tmp_path, capsys):
    ckpt = checkpoint.load(straight / "model.pt")
    name = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][name] = ckpt["model"][name].clone().fill_(float("nan"))
    fileio.save_torch(tmp_path / "nan.pt", ckpt)
    with pytest.raises(DigitrecError, match=f"weight '{name}' holds NaN or infinite values"):
        checkpoint.load_model(tmp_path / "nan.pt")
    assert main(["evaluate", str(tmp_path / "nan.pt")]) == 2
    assert "holds NaN" in capsys.readouterr().err


# --- a run folder never gets stuck: kills and full disks between the writes ---------------------------------------


def _fail_writes(monkeypatch, name: str, skip: int = 0):
    """The (skip+1)-th and later writes of `name` fail with ENOSPC half-way, as a full disk does."""
    real = fileio._write_file
    seen = {"n": 0}

    def write(path, data):
        if path.name.startswith(f".{name}."):
            seen["n"] += 1
            if seen["n"] > skip:
                with open(path, "wb") as f:
                    f.write(bytes(data)[:100])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, data)

    monkeypatch.setattr(fileio, "_write_file", write)


@pytest.mark.slow  # trains by itself
def test_disk_full_at_the_first_checkpoint(tmp_path, data_root, monkeypatch, capsys, straight):
    run = tmp_path / "run"
    _fail_writes(monkeypatch, "last.pt")
    assert main(["train", *_argv(data_root), "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"digitrec: error: cannot write {run / 'last.pt'}: no space left on device; nothing was saved: " \
                  "free space, then start the run again"
    assert sorted(p.name for p in run.iterdir()) == []  # no temp file, nothing half-written
    monkeypatch.undo()
    assert main(["train", *_argv(data_root), "--out", str(run), "--resume"]) == 2
    assert "nothing to resume; no epoch had been saved" in capsys.readouterr().err
    assert main(["train", *_argv(data_root), "--out", str(run)]) == 0  # a fresh run in the same folder works
    assert _same(_weights(straight / "model.pt"), _weights(run / "model.pt"))


@pytest.mark.slow  # trains by itself
def test_disk_full_between_last_pt_and_model_pt(tmp_path, data_root, monkeypatch, capsys, straight):
    run = tmp_path / "run"
    _fail_writes(monkeypatch, "model.pt")
    assert main(["train", *_argv(data_root), "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"digitrec: error: cannot write {run / 'model.pt'}: no space left on device; last.pt holds "
                   "epoch 1: free space, then rerun with --resume"]
    assert sorted(p.name for p in run.iterdir()) == ["last.pt"]
    monkeypatch.undo()
    assert main(["train", *_argv(data_root), "--out", str(run)]) == 2
    assert "already holds a run (last.pt); use --resume" in capsys.readouterr().err
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert "rewrote model.pt (epoch 1) from last.pt" in capsys.readouterr().out
    assert _same(_weights(straight / "model.pt"), _weights(run / "model.pt"))


KILL_BETWEEN_WRITES = """
import os, signal, sys
from digitrec import checkpoint, cli
real = checkpoint.save
def save(path, *a, **k):
    real(path, *a, **k)
    if path.name == "last.pt" and k["epoch"] == {epoch}:
        os.kill(os.getpid(), signal.SIGKILL)  # after last.pt, before model.pt and history.json
checkpoint.save = save
sys.exit(cli.main(sys.argv[1:]))
"""


KILL_MID_EPOCH = """
import os, signal, sys
import digitrec.train as t
from digitrec import cli
real, calls = t.augment_batch, [0]
def augment(*a, **k):
    calls[0] += 1
    if calls[0] == 40:  # step 8 of epoch 2
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*a, **k)
t.augment_batch = augment
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow  # trains by itself
def test_kill_9_mid_epoch_then_resume_is_bit_identical(tmp_path, data_root, straight):
    run, script = tmp_path / "run", tmp_path / "kill.py"
    script.write_text(KILL_MID_EPOCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run([sys.executable, str(script), "train", *_argv(data_root), "--out", str(run)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9 and checkpoint.load(run / "last.pt")["epoch"] == 1, killed.stderr
    resumed = subprocess.run([sys.executable, "-m", "digitrec", "train", "--out", str(run), "--resume",
                              "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0 and "resuming" in resumed.stdout, resumed.stderr
    for name in ("model.pt", "last.pt"):
        assert _same(_weights(straight / name), _weights(run / name))


@pytest.mark.parametrize("epoch", [1, 2])
@pytest.mark.slow  # trains by itself
def test_kill_9_between_last_pt_and_model_pt(tmp_path, data_root, epoch, straight):
    """SIGKILL right after last.pt is renamed into place: --resume rebuilds model.pt and history.json from it and
    finishes with the bit-identical model; a fresh run in that folder is told to --resume."""
    run = tmp_path / "run"
    script = tmp_path / "kill.py"
    script.write_text(KILL_BETWEEN_WRITES.replace("{epoch}", str(epoch)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run([sys.executable, str(script), "train", *_argv(data_root), "--out", str(run)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert checkpoint.load(run / "last.pt")["epoch"] == epoch
    model_epoch = checkpoint.load(run / "model.pt")["epoch"] if (run / "model.pt").exists() else None
    assert model_epoch == (None if epoch == 1 else 1)  # stale or missing: the dead end this used to be
    fresh = subprocess.run([sys.executable, "-m", "digitrec", "train", *_argv(data_root), "--out", str(run)],
                           env=env, capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 2 and "already holds a run (last.pt); use --resume" in fresh.stderr
    resumed = subprocess.run([sys.executable, "-m", "digitrec", "train", "--out", str(run), "--resume",
                              "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    best = json.loads((straight / "metrics.json").read_text())["best_epoch"]
    if best == epoch:
        assert f"rewrote model.pt (epoch {epoch}) from last.pt" in resumed.stdout
    assert _same(_weights(straight / "model.pt"), _weights(run / "model.pt"))
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history["epochs"]] == [1, 2]


TMPFS_SCRIPT = """
set -u
mount -t tmpfs -o size=400k tmpfs "$1" || exit 77
"$PY" -m digitrec train "${@:3}" --out "$1/run" > "$2/full.out" 2> "$2/full.err"; echo $? > "$2/full.rc"
mount -o remount,size=64m "$1"
"$PY" -m digitrec train "${@:3}" --out "$1/run" > "$2/again.out" 2> "$2/again.err"; echo $? > "$2/again.rc"
ls -a "$1/run" > "$2/files"
"""


@pytest.mark.slow  # trains by itself
def test_real_full_disk_in_a_small_tmpfs(tmp_path, data_root):
    """A real ENOSPC from a 400 KB tmpfs (in a private mount namespace): one line, never torch's enforce-fail text;
    after space is freed the same command runs in the same folder."""
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a private tmpfs")
    mnt, logs = tmp_path / "mnt", tmp_path / "logs"
    mnt.mkdir()
    logs.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PY": sys.executable}
    r = subprocess.run(["unshare", "-rm", "bash", "-c", TMPFS_SCRIPT, "tmpfs", str(mnt), str(logs),
                        *_argv(data_root, epochs=1)], env=env, capture_output=True, text=True, timeout=300)
    if r.returncode == 77 or not (logs / "full.rc").exists():
        pytest.skip(f"cannot mount a tmpfs here (no user namespaces?): {r.stderr.strip()[:200]}")
    err = (logs / "full.err").read_text().strip().splitlines()
    assert (logs / "full.rc").read_text().strip() == "2"
    assert len(err) == 1 and "no space left on device" in err[0] and "enforce fail" not in err[0], err
    assert (logs / "again.rc").read_text().strip() == "0", (logs / "again.err").read_text()
    assert {"model.pt", "last.pt", "metrics.json"} <= set((logs / "files").read_text().split())


# --- configuration errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw, message", [
    ({"epochs": 0}, "--epochs must be"), ({"lr": -1.0}, "--lr must be"), ({"batch_size": 1}, "--batch-size"),
    ({"optimizer": "rmsprop"}, "--optimizer"), ({"schedule": "step"}, "--schedule"), ({"ema": 1.5}, "--ema"),
    ({"model_options": {"width": 200_000}}, "more than the limit"),
    ({"model_options": [1, 2]}, "model_options must be a table"),
])
def test_bad_config_values(data_root, kw, message):
    with pytest.raises(DigitrecError, match=message):
        _cfg(data_root, **kw)


def test_unknown_device(tmp_path, data_root):
    with pytest.raises(DigitrecError, match="--device"):
        train(_cfg(data_root, device="tpu"), tmp_path / "r", progress=False)


def test_zero_training_images_is_one_line(tmp_path, capsys):
    import numpy as np

    from digitrec.data.idx import write_idx

    for kind, n in (("train", 0), ("t10k", 30)):
        write_idx(tmp_path / f"{kind}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), np.uint8))
        write_idx(tmp_path / f"{kind}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    assert main(["train", "--dataset", f"idx:{tmp_path}", "--split", "canonical", "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == f"digitrec: error: idx:{tmp_path}: no training images " \
                                              "(its train-images file holds 0)"


@pytest.mark.slow  # trains by itself
def test_ema_model_gets_batchnorm_statistics_of_its_own_weights(tmp_path, data_root):
    """The EMA weights are delivered with BatchNorm statistics recomputed for them (averaged running statistics
    belong to past raw weights: with them the EMA model scored near chance), and the recorded validation accuracy
    is that of the delivered model."""
    from torch.optim.swa_utils import update_bn

    from digitrec.data import load, make_split
    from digitrec.predict import forward_in_batches, to_float

    cfg = _cfg(data_root, epochs=2, ema=0.99, lr=0.05, optimizer="sgd", augment=False)
    out = tmp_path / "run"
    train(cfg, out, progress=False, log=lambda s: None)
    model, _ = checkpoint.load_model(out / "model.pt")
    split = make_split(load("mnist", str(data_root) if data_root else None), "canonical", limit=1000)
    expected = checkpoint.load_model(out / "model.pt")[0]
    images = torch.from_numpy(split.train_images)[:train_mod.BN_RECALIBRATION_IMAGES]
    update_bn([to_float(images)], expected)
    stats = [(n, b) for n, b in model.named_buffers() if "running" in n]
    assert stats and all(torch.allclose(b, dict(expected.named_buffers())[n], atol=1e-5) for n, b in stats)
    logits = forward_in_batches(model, torch.from_numpy(split.val_images))
    acc = (logits.argmax(1).numpy() == split.val_labels).mean()
    history = json.loads((out / "history.json").read_text())["epochs"]
    assert acc == pytest.approx(max(r["val_acc"] for r in history), abs=1e-6)


# --- speed options: bf16 on the CPU, CUDA graphs, the step code ------------------------------------------------------


@pytest.mark.parametrize("kw, message", [
    ({"cuda_graphs": True, "device": "cpu"}, "--cuda-graphs needs a CUDA device, not --device cpu"),
])
def test_cuda_graph_flags_refused_at_config_time(data_root, kw, message):
    with pytest.raises(DigitrecError, match=message):
        _cfg(data_root, **kw)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_graphs_refused_on_a_cpu_run_before_writing(tmp_path, data_root, capsys):
    assert main(["train", *_argv(data_root), "--cuda-graphs", "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == "digitrec: error: --cuda-graphs needs a CUDA device; this run is on cpu"
    assert not (tmp_path / "r").exists()


def test_cuda_graphs_with_compile_or_a_backbone_schedule_is_refused(tmp_path, data_root, monkeypatch):
    """The checks after the device is known (faked as CUDA here: they run before anything touches it)."""
    monkeypatch.setattr(train_mod, "resolve_device", lambda name: torch.device("cuda"))
    monkeypatch.setattr(train_mod.Distributed, "setup", lambda self, device: device)
    for kw, message in (({"compile": True}, "--cuda-graphs and --compile: choose one"),
                        ({"model": "hybrid", "freeze": "backbone"}, "not supported with --freeze")):
        with pytest.raises(DigitrecError, match=message):
            train(_cfg(data_root, cuda_graphs=True, **kw), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_eager_step_is_the_loop_it_replaced():
    """The CPU path: EagerStep does exactly what the loop did inline (bit-identical weights after a few steps)."""
    import torch.nn.functional as F

    from digitrec.models import create
    from digitrec.step import make_step

    def run(use_step: bool):
        torch.manual_seed(0)
        model = create("fast", width=4)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
        step = make_step(model, opt, False, False, 0.1)
        g = torch.Generator().manual_seed(1)
        for _ in range(3):
            xb, yb = torch.rand(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g)
            if use_step:
                step(xb, yb)
                continue
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):
                loss = F.cross_entropy(model(xb).float(), yb, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return model.state_dict()

    assert _same(run(True), run(False))


def test_capturable_optimizers_take_the_learning_rate_as_a_tensor(data_root):
    from digitrec.step import graph_optimizer_options

    params = [torch.nn.Parameter(torch.zeros(3))]
    for name, key in (("sgd", "fused"), ("adam", "capturable"), ("adamw", "capturable")):
        options = graph_optimizer_options(name, 0.01, torch.device("cpu"))
        assert isinstance(options["lr"], torch.Tensor) and options[key] is True
        cfg = _cfg(data_root, optimizer=name, lr=0.01, cuda_graphs=True)
        opt = train_mod.make_optimizer(cfg, params, torch.device("cpu"))
        assert isinstance(opt.param_groups[0]["lr"], torch.Tensor)
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, train_mod.lr_factor(_cfg(data_root, schedule="onecycle",
                                                                                     warmup=0.5), 10))
        lr = opt.param_groups[0]["lr"]
        opt.step()  # (no gradients: nothing moves)
        scheduler.step()
        assert opt.param_groups[0]["lr"] is lr  # changed in place: a captured graph reads the new value


@pytest.mark.slow  # trains by itself
def test_bf16_on_the_cpu_trains_like_fp32_which_stays_the_default(tmp_path, data_root, straight):
    assert not _cfg(data_root).bf16_cpu and not make_config("paper").bf16_cpu
    metrics = train(_cfg(data_root, bf16_cpu=True), tmp_path / "r", progress=False, log=lambda s: None)
    fp32 = json.loads((straight / "metrics.json").read_text())
    assert abs(metrics["accuracy"] - fp32["accuracy"]) < 0.05 and not _same(_weights(tmp_path / "r" / "last.pt"),
                                                                            _weights(straight / "last.pt"))
    assert set(metrics["phase_time_s"]) == {"train", "setup", "validate", "save", "test", "figures"}


def test_fast_network_stem_and_order_options(data_root):
    from digitrec.models import create

    x = torch.rand(2, 1, 28, 28)
    for options in ({"stem": "stride"}, {"order": "conv-bn-pool"}, {"stem": "stride", "order": "conv-bn-pool"}):
        model = create("fast", width=4, **options).eval()
        assert model(x).shape == (2, 10), options
    strided = create("fast", width=4, stem="stride")
    assert strided.net[0][0].stride == (2, 2) and isinstance(strided.net[0][1], torch.nn.Identity)
    for options, message in (({"stem": "strid"}, "stem must be one of pool, stride, got 'strid'"),
                             ({"order": "bn-conv"}, "order must be one of conv-pool-bn, conv-bn-pool, got 'bn-conv'")):
        with pytest.raises(DigitrecError, match=f"model 'fast': bad option \\({message}\\)"):
            _cfg(data_root, model="fast", model_options=options)
    speedrun = make_config("speedrun")
    assert speedrun.bf16_cpu and speedrun.model_options == {"width": 16, "stem": "stride"} and speedrun.epochs == 1


def test_bf16_on_a_cpu_without_native_bfloat16_warns(tmp_path, data_root, monkeypatch):
    import digitrec.train as train_module

    def logs(bf16_cpu: bool, native: bool) -> list[str]:
        monkeypatch.setattr(train_module, "_native_bf16", lambda: native)
        said: list[str] = []
        train_module.Trainer(_cfg(data_root, bf16_cpu=bf16_cpu, device="cpu"), tmp_path / "r", False, False,
                             said.append, None, None).setup()
        return [s for s in said if "bfloat16" in s]

    assert logs(True, False) == ["warning: this CPU has no native bfloat16 (AVX512-BF16 or AMX); --bf16-cpu will be "
                                 "slower than float32 here: add --no-bf16-cpu"]
    assert logs(True, True) == [] and logs(False, False) == []
