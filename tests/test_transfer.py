"""Transfer learning: ResNet-18 and hybrid models, backbone weights, freezing, backbone lr, --init-from, CLI errors."""
from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from digitrec import checkpoint, transfer
from digitrec.cli import main
from digitrec.config import make_config
from digitrec.errors import DigitrecError
from digitrec.fileio import save_torch
from digitrec.models import create
from digitrec.train import make_optimizer

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def tv_file(tmp_path_factory):
    """A torchvision-format ResNet-18 state_dict (random init, ImageNet's shapes: 3-channel 7×7 conv1, 1000-way fc)."""
    torch.manual_seed(1)
    sd = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet18-random.pth"
    save_torch(path, sd)
    return path, sd


def cfg_for(model="resnet18", **kw):
    return make_config(None, model=model, device="cpu", **kw)


@pytest.mark.parametrize("size", [28, 64, 112, 224])
def test_resnet18_each_input_size(size):
    model = create("resnet18", input_size=size).eval()
    out = model(torch.rand(2, 1, 28, 28))
    assert out.shape == (2, 10)
    conv1 = model.backbone.net.conv1
    assert conv1.in_channels == 1
    if size == 28:  # digit-sized stem: 3×3 stride 1, no max-pool
        assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1)
        assert isinstance(model.backbone.net.maxpool, torch.nn.Identity)
    else:  # torchvision's stem on the upsampled digit
        assert conv1.kernel_size == (7, 7) and conv1.stride == (2, 2)
        assert isinstance(model.backbone.net.maxpool, torch.nn.MaxPool2d)


def test_bad_input_size_is_a_user_error():
    with pytest.raises(DigitrecError, match="input_size must be one of 28, 64, 112, 224"):
        create("resnet18", input_size=32)


@pytest.mark.slow  # trains several epochs
def test_hybrid_forward_and_both_branches_learn():
    model = create("hybrid", input_size=28)
    x = torch.rand(4, 1, 28, 28)
    out = model(x)
    assert out.shape == (4, 10)
    assert model.head[0].in_features == 256 + 512  # pooled paper-CNN features ++ pooled ResNet features
    F.cross_entropy(out, torch.arange(4)).backward()
    assert model.cnn[0].weight.grad.abs().sum() > 0
    assert model.backbone.net.conv1.weight.grad.abs().sum() > 0


def test_conv1_adaptation_formula_and_strict_load(tv_file, tmp_path):
    path, sd = tv_file
    model = create("resnet18", input_size=64)
    notes = transfer.apply_backbone_weights(model, cfg_for(backbone_weights=str(path)))
    got = model.backbone.net.state_dict()
    # conv1: the RGB filters summed over the colour axis, exactly
    expected = sd["conv1.weight"][:, 0:1] + sd["conv1.weight"][:, 1:2] + sd["conv1.weight"][:, 2:3]
    assert torch.equal(got["conv1.weight"], expected)
    assert any("summed" in n for n in notes)
    # every other weight and BN statistic loaded unchanged; the 1000-way fc is not used
    for k, v in sd.items():
        if k != "conv1.weight" and not k.startswith("fc."):
            assert torch.equal(got[k], v), k


def test_native_stem_keeps_a_fresh_conv1(tv_file):
    path, sd = tv_file
    torch.manual_seed(0)
    model = create("hybrid", input_size=28)
    before = model.backbone.net.conv1.weight.clone()
    notes = transfer.apply_backbone_weights(model, cfg_for("hybrid", backbone_weights=str(path)))
    assert torch.equal(model.backbone.net.conv1.weight, before)
    assert any("left freshly initialised" in n for n in notes)
    assert torch.equal(model.backbone.net.layer3[1].bn1.running_var, sd["layer3.1.bn1.running_var"])


def test_backbone_from_a_digitrec_checkpoint(tmp_path):
    src = create("resnet18", input_size=64)
    checkpoint.save(tmp_path / "r.pt", src, "resnet18", {"input_size": 64}, 10)
    model = create("hybrid", input_size=64)
    transfer.apply_backbone_weights(model, cfg_for("hybrid", backbone_weights=str(tmp_path / "r.pt")))
    for k, v in src.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k


def test_wrong_weight_files_give_clear_errors(tv_file, tmp_path):
    _, sd = tv_file
    model = create("resnet18", input_size=64)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file at all")
    with pytest.raises(DigitrecError, match="not a readable weights file"):
        transfer.apply_backbone_weights(model, cfg_for(backbone_weights=str(junk)))
    r34 = tmp_path / "r34.pth"
    save_torch(r34, torchvision.models.resnet34(weights=None).state_dict())
    with pytest.raises(DigitrecError, match="not ResNet-18 weights .*unexpected layer1.2"):
        transfer.apply_backbone_weights(model, cfg_for(backbone_weights=str(r34)))
    wrong = dict(sd)
    wrong["layer2.0.conv1.weight"] = torch.zeros(128, 64, 5, 5)
    save_torch(tmp_path / "wrong.pth", wrong)
    with pytest.raises(DigitrecError, match="do not fit ResNet-18.*layer2.0.conv1.weight"):
        transfer.apply_backbone_weights(model, cfg_for(backbone_weights=str(tmp_path / "wrong.pth")))
    checkpoint.save(tmp_path / "cnn.pt", create("paper-cnn"), "paper-cnn", {}, 10)
    with pytest.raises(DigitrecError, match="has no ResNet-18 backbone"):
        transfer.apply_backbone_weights(model, cfg_for(backbone_weights=str(tmp_path / "cnn.pt")))
    with pytest.raises(DigitrecError, match="no such file"):
        transfer.check(cfg_for(backbone_weights=str(tmp_path / "missing.pth")))


def test_imagenet_without_network_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty weights cache

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    model = create("resnet18")
    with pytest.raises(DigitrecError) as e:
        transfer.apply_backbone_weights(model, cfg_for(backbone_weights="imagenet"))
    assert "--backbone-weights /path/resnet18-f37072fd.pth" in str(e.value)
    assert "name resolution" in str(e.value)


def _steps(model, cfg, n=3):
    opt = make_optimizer(cfg, transfer.param_groups(model, cfg))
    gen = torch.Generator().manual_seed(0)
    for _ in range(n):
        x = torch.rand(8, 1, 28, 28, generator=gen)
        y = torch.randint(0, 10, (8,), generator=gen)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("name", ["resnet18", "paper-cnn"])
@pytest.mark.slow  # trains several epochs
def test_freeze_keeps_backbone_weights_and_bn_statistics(name):
    cfg = cfg_for(name, freeze="backbone", lr=1e-2, weight_decay=1e-2, optimizer="adamw")
    model = create(name)
    transfer.prepare(model, cfg, resume=False, distributed=False, log=lambda s: None)
    backbone = transfer.backbone_of(model)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(("backbone", "features"))}
    transfer.start_epoch(model, cfg, 1)
    assert model.training and not backbone.training  # BN in eval mode: running statistics fixed
    _steps(model, cfg)
    for k, v in backbone.state_dict().items():  # weights AND running_mean/var/num_batches_tracked
        assert torch.equal(v, before[k]), k
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in head_before.items())

    # the same steps without freezing do move the backbone and its BN statistics (so the test above can fail)
    cfg2 = cfg_for(name, lr=1e-2)
    model2 = create(name)
    model2.load_state_dict({**{f"{'backbone' if name == 'resnet18' else 'features'}.{k}": v
                               for k, v in before.items()}, **head_before})
    transfer.start_epoch(model2, cfg2, 1)
    _steps(model2, cfg2)
    bn = [k for k in before if k.endswith("running_mean")]
    assert bn and any(not torch.equal(transfer.backbone_of(model2).state_dict()[k], before[k]) for k in bn)


def test_gradual_unfreezing():
    cfg = cfg_for("resnet18", unfreeze_epoch=3, epochs=4, backbone_lr=1e-5)
    model = create("resnet18", input_size=28)
    transfer.prepare(model, cfg, resume=False, distributed=False, log=lambda s: None)
    for epoch, frozen in ((1, True), (2, True), (3, False), (4, False)):
        transfer.start_epoch(model, cfg, epoch)
        assert model.backbone.training is not frozen
        assert all(p.requires_grad is not frozen for p in model.backbone.parameters())
        assert model.fc.weight.requires_grad
    with pytest.raises(DigitrecError, match="torchrun"):
        transfer.prepare(model, cfg, resume=False, distributed=True, log=lambda s: None)


def test_backbone_lr_param_groups():
    cfg = cfg_for("hybrid", lr=1e-3, backbone_lr=1e-5)
    model = create("hybrid")
    opt = make_optimizer(cfg, transfer.param_groups(model, cfg))
    head, backbone = opt.param_groups
    assert (head["lr"], backbone["lr"]) == (1e-3, 1e-5)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(backbone["params"]) == ids(model.backbone.parameters())
    assert ids(head["params"]) | ids(backbone["params"]) == ids(model.parameters())
    assert not ids(head["params"]) & ids(backbone["params"])
    assert ids(model.cnn.parameters()) <= ids(head["params"])  # the CNN branch trains at --lr
    # a model without a backbone cannot be given a backbone lr
    with pytest.raises(DigitrecError, match="has no backbone"):
        transfer.param_groups(create("fast"), cfg_for("fast", backbone_lr=1e-5))


def test_init_from_with_another_class_count_gets_a_new_head(tmp_path):
    src = create("paper-cnn", num_classes=10)
    checkpoint.save(tmp_path / "a.pt", src, "paper-cnn", {}, 10)
    torch.manual_seed(5)
    model = create("paper-cnn", num_classes=12)
    head_before = model.classifier[3].weight.clone()
    notes = transfer.init_from(model, str(tmp_path / "a.pt"))
    assert model.classifier[3].weight.shape == (12, 512) and torch.equal(model.classifier[3].weight, head_before)
    for k, v in src.state_dict().items():
        if not k.startswith("classifier.3"):
            assert torch.equal(model.state_dict()[k], v), k
    assert "output layer re-initialised: 10 classes" in notes[0]
    # same class count: everything, head included, is loaded
    same = create("paper-cnn")
    assert transfer.init_from(same, str(tmp_path / "a.pt")) == []
    assert torch.equal(same.classifier[3].weight, src.classifier[3].weight)
    # another architecture: a clear error, not a silent partial load
    with pytest.raises(DigitrecError, match="--init-from .*does not fit this model"):
        transfer.init_from(create("fast"), str(tmp_path / "a.pt"))


def _tiny_idx(folder, mnist, n_train=100, n_test=30):
    from digitrec.data.idx import write_idx

    for name, arr in (("train-images-idx3-ubyte", mnist.train_images[:n_train]),
                      ("train-labels-idx1-ubyte", mnist.train_labels[:n_train]),
                      ("t10k-images-idx3-ubyte", mnist.test_images[:n_test]),
                      ("t10k-labels-idx1-ubyte", mnist.test_labels[:n_test])):
        write_idx(folder / name, np.ascontiguousarray(arr))
    return f"idx:{folder}"


@pytest.mark.slow  # trains several epochs
def test_train_with_frozen_pretrained_backbone_end_to_end(tv_file, tmp_path, mnist):
    """The real loop: backbone loaded from a torchvision file, frozen for 2 epochs → model.pt's backbone is the file's."""
    from digitrec.train import train

    path, sd = tv_file
    ds = _tiny_idx(tmp_path / "data", mnist)
    cfg = make_config(None, model="resnet18", dataset=ds, split="canonical", epochs=2, batch_size=32, lr=1e-2,
                      device="cpu", threads=2, backbone_weights=str(path), freeze="backbone",
                      model_options={"input_size": 64})
    train(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    saved = checkpoint.load(tmp_path / "run" / "model.pt")["model"]
    assert torch.equal(saved["backbone.net.conv1.weight"], sd["conv1.weight"].sum(1, keepdim=True))
    for k, v in sd.items():
        if k != "conv1.weight" and not k.startswith("fc."):
            assert torch.equal(saved[f"backbone.net.{k}"], v), k
    assert saved["fc.weight"].shape == (10, 512)
    for name in ("model.pt", "history.json", "metrics.json", "accuracy.png", "loss.png", "confusion.png"):
        assert (tmp_path / "run" / name).is_file(), name


def _cli(capsys, *argv):
    rc = main(["train", "--no-progress", "--device", "cpu", *argv])
    err = capsys.readouterr().err.strip()
    return rc, err


@pytest.mark.parametrize("argv, message", [
    (["--freeze", "bogus"], "argument --freeze: unknown freeze 'bogus'; choose one of: none, backbone"),
    (["--model", "resnet18", "--backbone-weights", "/nonexistent/resnet18.pth"],
     "--backbone-weights /nonexistent/resnet18.pth: no such file"),
    (["--model", "paper-cnn", "--backbone-weights", "imagenet"], "has no ResNet-18 backbone"),
    (["--model", "resnet18", "--epochs", "3", "--unfreeze-epoch", "1"], "--unfreeze-epoch must be between 2 and"),
    (["--model", "resnet18", "--backbone-lr", "0"], "--backbone-lr must be > 0"),
    (["--model", "resnet18", "--backbone-lr", "fast"], "invalid float value"),
    (["--model", "fast", "--freeze", "backbone"], "model 'fast' has no backbone"),
])
def test_cli_bad_transfer_flags(capsys, tmp_path, argv, message):
    out = tmp_path / "run"
    rc, err = _cli(capsys, "--out", str(out), "--limit", "100", *argv)
    assert rc == 2
    assert err.startswith("digitrec: error:") and len(err.splitlines()) == 1
    assert message in err
    assert not out.exists()  # nothing half-written
