"""Pruning (prune.py): unstructured and structured, the fine-tune through the trainer, and the CLI's errors."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from digitrec import checkpoint, prune
from _cli import fails as _fails
from digitrec.models import create


def test_unstructured_prune_and_finetune_keeps_sparsity(tiny_run, tmp_path, data_root):
    m = prune.prune_run(tiny_run / "model.pt", tmp_path / "run", 0.6, finetune_epochs=1, limit=500, threads=2,
                        data_dir=str(data_root) if data_root else None, progress=False, log=lambda s: None)
    p = m["pruning"]
    assert p["sparsity_before"] < 0.01 and p["sparsity_after"] >= 0.6 - 1e-3  # fine-tuning kept the zeros
    model, _ = checkpoint.load_model(tmp_path / "run" / "model.pt")
    assert prune.sparsity(model) == pytest.approx(p["sparsity_after"])
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["pruning"]["amount"] == 0.6
    assert m["accuracy"] > 0.5  # still a digit reader after 60 % of its weights are gone


def test_keep_zeros_blocks_updates():
    model = create("simple-cnn")
    prune.prune_unstructured(model, 0.5)
    prune.keep_zeros(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(torch.rand(8, 1, 28, 28)).logsumexp(1).mean().backward()
        opt.step()
    assert prune.sparsity(model) >= 0.5


def _zero_half(model: nn.Module, seed: int = 0) -> None:
    """Silence a random half of every conv channel and hidden unit exactly (so removing them changes nothing)."""
    g = torch.Generator().manual_seed(seed)
    layers = [m for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Conv2d) or (isinstance(layer, nn.Linear) and layer.out_features != 10):
                dead = torch.randperm(layer.weight.shape[0], generator=g)[:layer.weight.shape[0] // 2]
                layer.weight[dead] = 0
                if layer.bias is not None:
                    layer.bias[dead] = 0
                bn = next((m for m in layers[i + 1:i + 3] if isinstance(m, nn.BatchNorm2d)), None)
                if bn is not None:  # its output must be exactly 0 too: γ = β = 0
                    bn.weight[dead], bn.bias[dead] = 0, 0


@pytest.mark.parametrize("name", ["paper-cnn", "simple-cnn", "fast"])
def test_structured_prune_removes_exactly_the_dead_channels(name, tmp_path):
    torch.manual_seed(0)
    model = create(name).eval()
    with torch.no_grad():  # non-trivial BN statistics
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2)
    _zero_half(model)
    small, options = prune.prune_structured(model, name, {}, 10, 0.5)
    assert prune.count_params(small) < 0.4 * prune.count_params(model)
    x = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(small(x), model(x), atol=1e-4)  # the right channels, columns and BN entries kept
    checkpoint.save(tmp_path / "s.pt", small, name, options, 10)
    rebuilt, ckpt = checkpoint.load_model(tmp_path / "s.pt")  # the new sizes live in model_options
    assert ckpt["model_options"]["channels"] == options["channels"]
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), small(x), atol=1e-6)


def test_structured_prune_run_reloads(tiny_run, tmp_path, data_root):
    m = prune.prune_run(tiny_run / "model.pt", tmp_path / "run", 0.5, structured=True, finetune_epochs=0,
                        data_dir=str(data_root) if data_root else None, log=lambda s: None)
    p = m["pruning"]
    assert p["params_after"] < 0.35 * p["params_before"]
    model, ckpt = checkpoint.load_model(tmp_path / "run" / "model.pt")
    assert ckpt["model_options"]["channels"] == [16, 32, 64, 64] and prune.count_params(model) == p["params_after"]


def test_cli_bad_inputs(tiny_run, tmp_path, capsys):
    ckpt, out = str(tiny_run / "model.pt"), tmp_path / "out"
    for amount in ("0", "1", "1.5", "-0.2"):
        _fails(capsys, ["prune", ckpt, "--amount", amount, "--out", str(out / "run")], "--amount must be in (0, 1)")
    _fails(capsys, ["prune", str(tmp_path / "nope.pt"), "--amount", "0.5", "--out", str(out / "run")], "not found")
    _fails(capsys, ["prune", ckpt, "--amount", "0.5", "--finetune-epochs", "-1", "--out", str(out / "run")],
           "--finetune-epochs")
    assert not out.exists()  # nothing half-written anywhere
    # the output never replaces the input: the source's own run folder, or a file
    before = (tiny_run / "model.pt").read_bytes()
    _fails(capsys, ["prune", ckpt, "--amount", "0.5", "--out", str(tiny_run)], "already holds a run")
    _fails(capsys, ["prune", ckpt, "--amount", "0.5", "--out", ckpt], "is a file, not a folder")
    assert (tiny_run / "model.pt").read_bytes() == before and not (tiny_run / "pruned.pt").exists()


def test_export_module_no_longer_prunes():
    from digitrec import export

    assert not hasattr(export, "prune_run") and not hasattr(export, "keep_zeros")
