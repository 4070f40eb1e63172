"""The checkpoint format: every damaged or foreign file is one clear line, never a traceback and never torch's
advice to load it unsafely; weights that are not finite numbers are refused."""
from __future__ import annotations

import pytest
import torch

from digitrec import checkpoint
from digitrec.cli import main
from digitrec.errors import DigitrecError
from digitrec.fileio import save_torch
from digitrec.models import create


def _good() -> dict:
    torch.manual_seed(0)
    model = create("fast", width=4)
    return {"format": checkpoint.FORMAT, "model_name": "fast", "model_options": {"width": 4}, "num_classes": 10,
            "model": model.state_dict(), "config": {"model": "fast"}, "epoch": 1}


def _write(tmp_path, **changes) -> str:
    ckpt = {**_good(), **changes}
    for key in [k for k, v in changes.items() if v is _DROP]:
        del ckpt[key]
    path = tmp_path / "ck.pt"
    save_torch(path, ckpt)
    return str(path)


_DROP = object()


def test_a_good_checkpoint_loads(tmp_path):
    model, ckpt = checkpoint.load_model(_write(tmp_path))
    assert ckpt["model_name"] == "fast" and sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("changes, message", [
    ({"model_name": _DROP}, "damaged digitrec checkpoint (model_name is missing)"),
    ({"model_name": 3}, "model_name is a int, not a str"),
    ({"num_classes": "10"}, "num_classes is a str, not a int"),
    ({"model": [1, 2]}, "model is a list, not a dict"),
    ({"model_options": [1, 2]}, "options must be a table of NAME = VALUE, got list"),
    ({"model_options": {"width": 200_000}}, "more than the limit of 1e+08"),
    ({"model_options": {"width": "4"}}, "option width must be an integer"),
    ({"num_classes": 10**9}, "num_classes must be an integer in 2..1024"),
    ({"model_name": "vgg"}, "unknown model 'vgg'"),
    ({"config": [1]}, "config is a list"),
    ({"model": {"net.0.0.weight": "abc"}}, "weight 'net.0.0.weight' is not a tensor"),
])
def test_damaged_checkpoints(tmp_path, changes, message):
    path = _write(tmp_path, **changes)
    with pytest.raises(DigitrecError) as e:
        checkpoint.load_model(path)
    assert message in str(e.value) and str(e.value).startswith(path) and "\n" not in str(e.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path, value):
    ckpt = _good()
    ckpt["model"]["net.7.weight"] = ckpt["model"]["net.7.weight"].clone()
    ckpt["model"]["net.7.weight"][0, 0] = value
    path = tmp_path / "nan.pt"
    save_torch(path, ckpt)
    with pytest.raises(DigitrecError, match="weight 'net.7.weight' holds NaN or infinite values"):
        checkpoint.load(path)


def test_unsafe_pickle_message_does_not_advise_weights_only_false(tmp_path, capsys):
    import decimal

    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "payload": decimal.Decimal("1.5")}, path)  # not weights-only
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"digitrec: error: {path}: not a digitrec checkpoint: it holds Python objects")
    assert "weights_only" not in err and "\n" not in err and "trust" not in err


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04" + bytes(40)])
def test_unreadable_files(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(DigitrecError, match="not a readable digitrec checkpoint") as e:
        checkpoint.load(path)
    assert "weights_only" not in str(e.value) and "\n" not in str(e.value)


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "ck.pt"
    save_torch(path, _good())
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DigitrecError, match="not a readable digitrec checkpoint"):
        checkpoint.load(path)


def test_foreign_dict_and_folder(tmp_path):
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(DigitrecError, match="no 'digitrec-checkpoint-v1' marker"):
        checkpoint.load(tmp_path / "foreign.pt")
    with pytest.raises(DigitrecError, match="not a file"):
        checkpoint.load(tmp_path)
