"""The training loop: run files, best-checkpoint selection, exact resume after an interruption, clear errors."""
import json
import os

import pytest
import torch

import digitrec.train as train_mod
from digitrec import checkpoint
from digitrec.config import make_config
from digitrec.errors import DigitrecError
from digitrec.train import train

RUN_FILES = {"model.pt", "last.pt", "history.json", "metrics.json", "accuracy.png", "loss.png", "confusion.png"}


def _cfg(data_root, **kw):
    base = dict(model="fast", dataset="mnist", split="canonical", limit=1000, epochs=2, batch_size=32, lr=3e-3,
                data_dir=str(data_root) if data_root else None, seed=0, threads=2, eval_batch_size=2000)
    base.update(kw)
    return make_config("paper", **base)


def test_run_writes_all_files_and_records_split(tmp_path, data_root):
    metrics = train(_cfg(data_root), tmp_path / "run", progress=False, log=lambda s: None)
    assert RUN_FILES <= {p.name for p in (tmp_path / "run").iterdir()}
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for key in ("dataset", "split", "n", "accuracy", "precision_macro", "recall_macro", "f1_macro", "per_class",
                "confusion_matrix"):
        assert key in saved
    assert saved["split"] == "canonical" and saved["n"] == 10000 and saved["sizes"]["train"] == 1000
    assert len(saved["confusion_matrix"]) == 10 and sum(map(sum, saved["confusion_matrix"])) == 10000
    assert saved["accuracy"] == metrics["accuracy"] > 0.5
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in history["epochs"]] == [1, 2]
    best = max(history["epochs"], key=lambda h: h["val_acc"])
    ckpt = checkpoint.load(tmp_path / "run" / "model.pt")
    assert ckpt["epoch"] == best["epoch"] and ckpt["metrics"]["val_acc"] == best["val_acc"]
    assert ckpt["config"]["model"] == "fast" and ckpt["split"] == "canonical"


def test_interrupted_run_resumes_exactly(tmp_path, data_root, monkeypatch):
    cfg = _cfg(data_root, epochs=3)
    train(cfg, tmp_path / "straight", progress=False, log=lambda s: None)

    calls = {"n": 0}
    real = train_mod.augment_batch

    def interrupt_in_epoch_two(*a, **k):
        calls["n"] += 1
        if calls["n"] == 34:  # 1,000 samples / 32 = 32 steps per epoch: step 2 of epoch 2
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(train_mod, "augment_batch", interrupt_in_epoch_two)
    with pytest.raises(DigitrecError, match="interrupted: .*last.pt holds epoch 1; continue with --resume"):
        train(cfg, tmp_path / "resumed", progress=False, log=lambda s: None)
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    monkeypatch.setattr(train_mod, "augment_batch", real)
    train(cfg, tmp_path / "resumed", resume=True, progress=False, log=lambda s: None)

    a = checkpoint.load(tmp_path / "straight" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "resumed" / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_stops_like_ctrl_c(tmp_path, data_root, monkeypatch):
    """kill / SLURM preemption / a background job (which ignores Ctrl-C): same clean stop, resumable."""
    import signal

    cfg = _cfg(data_root, epochs=2)
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
        train(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the training run's only
    assert not (tmp_path / "run" / "metrics.json").exists()
    monkeypatch.setattr(train_mod, "augment_batch", real)
    train(cfg, tmp_path / "run", resume=True, progress=False, log=lambda s: None)
    assert (tmp_path / "run" / "metrics.json").exists()


def test_refuses_to_overwrite_and_resume_needs_a_run(tmp_path, data_root):
    (tmp_path / "run").mkdir()
    with pytest.raises(DigitrecError, match="nothing to resume"):
        train(_cfg(data_root, epochs=1), tmp_path / "run", resume=True, progress=False)
    (tmp_path / "run" / "model.pt").write_bytes(b"x")
    with pytest.raises(DigitrecError, match="already holds a run"):
        train(_cfg(data_root, epochs=1), tmp_path / "run", progress=False)


def test_resume_with_other_model_is_refused(tmp_path, data_root):
    train(_cfg(data_root, epochs=1, limit=200), tmp_path / "run", progress=False, log=lambda s: None)
    with pytest.raises(DigitrecError, match="was trained with model 'fast'"):
        train(_cfg(data_root, epochs=2, limit=200, model="simple-cnn"), tmp_path / "run", resume=True, progress=False)


@pytest.mark.parametrize("kw, message", [
    ({"epochs": 0}, "--epochs must be"), ({"lr": -1.0}, "--lr must be"), ({"batch_size": 1}, "--batch-size"),
    ({"optimizer": "rmsprop"}, "--optimizer"), ({"schedule": "step"}, "--schedule"), ({"ema": 1.5}, "--ema"),
])
def test_bad_config_values(data_root, kw, message):
    with pytest.raises(DigitrecError, match=message):
        _cfg(data_root, **kw)


def test_unknown_device(tmp_path, data_root):
    with pytest.raises(DigitrecError, match="--device"):
        train(_cfg(data_root, device="tpu"), tmp_path / "r", progress=False)
