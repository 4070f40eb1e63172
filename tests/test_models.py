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


@pytest.mark.parametrize("name", ["paper-cnn", "simple-cnn", "fast"])
def test_forward_shapes(name):
    m = create(name, num_classes=10).eval()
    assert m(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert create(name, num_classes=27)(torch.rand(2, 1, 28, 28)).shape == (2, 27)


def test_registry_errors():
    assert {"paper-cnn", "simple-cnn", "fast"} <= set(available())
    with pytest.raises(DigitrecError, match="unknown model 'vgg'"):
        create("vgg")
    with pytest.raises(DigitrecError, match="bad option"):
        create("paper-cnn", widht=3)
