import functools

import pytest
import torch
from torch import nn

from digitrec.errors import DigitrecError
from digitrec.models import available, create


def test_paper_cnn_is_the_listed_stack():
    m = create("paper-cnn")
    convs = [l for l in m.modules() if isinstance(l, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 32, (3, 3)), (32, 64, (3, 3)), (64, 128, (3, 3)), (128, 256, (3, 3))]
    kinds = [type(l).__name__ for l in m.features]
    assert kinds == ["Conv2d", "ReLU", "BatchNorm2d", "Dropout", "Conv2d", "ReLU", "MaxPool2d",
                     "Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d"]
    assert [l.p for l in m.modules() if isinstance(l, nn.Dropout)] == [0.2]
    fcs = [l for l in m.modules() if isinstance(l, nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(4096, 512), (512, 10)]


@pytest.mark.parametrize("name", ["paper-cnn", "simple-cnn", "fast", "deep"])
def test_forward_shapes(name):
    m = create(name, num_classes=10).eval()
    assert m(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert create(name, num_classes=27)(torch.rand(2, 1, 28, 28)).shape == (2, 27)


def test_deep_cnn_is_the_fast_network_with_two_convolutions_at_14_and_7():
    m = create("deep", width=8)
    convs = [l for l in m.modules() if isinstance(l, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 8), (8, 16), (16, 16), (16, 32), (32, 32),
                                                                (32, 32)]
    sizes, x = [], torch.rand(2, 1, 28, 28)
    for block in m.net[:6]:
        x = block(x)
        sizes.append(x.shape[-1])
    assert sizes == [14, 14, 7, 7, 3, 3]
    assert create("deep", width=8, dropout=0.3).net[-2].p == 0.3


def test_registry_errors():
    assert {"paper-cnn", "simple-cnn", "fast"} <= set(available())
    with pytest.raises(DigitrecError, match="unknown model 'vgg'"):
        create("vgg")
    with pytest.raises(DigitrecError, match="unknown option 'widht' \\(it has dropout, channels, hidden\\)"):
        create("paper-cnn", widht=3)


@pytest.mark.parametrize("name, options, message", [
    ("fast", {"width": 200_000}, "would have 9.36e\\+12 parameters, more than the limit"),
    ("paper-cnn", {"hidden": 10**9}, "more than the limit"),
    ("fast", {"width": "wide"}, "option width must be an integer, got 'wide'"),
    ("fast", {"width": 1.5}, "option width must be an integer"),
    ("fast", {"dropout": float("nan")}, "option dropout must be a finite number"),
    ("fast", {"dropout": 2.0}, "bad option \\(dropout probability"),
    ("fast", {"channels": [8, 8]}, "channels must be 4 positive integers"),
    ("simple-cnn", {"channels": "8,8"}, "option channels must be a list of integers"),
    ("resnet18", {"input_size": 29}, "input_size must be one of 28, 64, 112, 224"),
])
def test_options_are_checked_before_anything_is_allocated(name, options, message, monkeypatch):
    """width=200000 used to start allocating ~10^13 parameters (terabytes); now it is refused from its shape alone:
    the factory only ever runs on the meta device (shapes, no memory) before the error."""
    from digitrec import models

    devices = []
    real = models._REGISTRY[name]

    @functools.wraps(real)  # the same signature and annotations
    def spy(**kw):
        devices.append(torch.empty(0).device.type)  # the default device the factory builds on
        return real(**kw)

    monkeypatch.setitem(models._REGISTRY, name, spy)
    with pytest.raises(DigitrecError, match=message) as e:
        create(name, **options)
    assert "\n" not in str(e.value)
    assert set(devices) <= {"meta"}


@pytest.mark.parametrize("options", [[1, 2], "width=8", None])
def test_options_must_be_a_table(options):
    from digitrec.models import check_options

    with pytest.raises(DigitrecError, match="options must be a table of NAME = VALUE"):
        check_options("fast", 10, options)


@pytest.mark.parametrize("num_classes", [0, 1, 10**6, 2.5, True])
def test_class_count_is_bounded(num_classes):
    with pytest.raises(DigitrecError, match="num_classes must be an integer in 2..1024"):
        create("fast", num_classes=num_classes)


def test_option_check_draws_no_random_numbers():
    """Building on the meta device must not move the RNG: the same seed gives the same model as before."""
    torch.manual_seed(0)
    before = torch.get_rng_state()
    from digitrec.models import check_options

    check_options("paper-cnn", 10, {"hidden": 64})
    assert torch.equal(before, torch.get_rng_state())
