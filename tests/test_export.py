"""Edge deployment: ONNX/TorchScript export, int8 quantization, OnnxPredictor, and their CLI errors (pruning:
test_prune.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from digitrec import checkpoint, export
from _cli import fails as _fails
from digitrec.cli import main
from digitrec.errors import DigitrecError
from digitrec.onnx_predictor import OnnxPredictor
from digitrec.predict import Predictor, load_predictor


@pytest.fixture(scope="module")
def test_digits(mnist):
    return mnist.test_images[:300], mnist.test_labels[:300].astype(np.int64)


@pytest.fixture(scope="module")
def onnx_file(tiny_run, tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    assert main(["export", str(tiny_run / "model.pt"), "--out", str(out), "--check-images", "300"]
                + (["--data-dir", str(data_root)] if data_root else [])) == 0
    return out


def test_onnx_matches_torch_and_has_dynamic_batch(onnx_file, tiny_run, test_digits):
    images, labels = test_digits
    onnx_p, torch_p = OnnxPredictor(onnx_file), Predictor(tiny_run / "model.pt")
    p_onnx, p_torch = onnx_p.predict_proba(images), torch_p.predict_proba(images)
    assert np.abs(p_onnx - p_torch).max() <= 1e-4
    assert (p_onnx.argmax(1) == p_torch.argmax(1)).mean() >= 0.999
    assert np.allclose(p_onnx.sum(1), 1, atol=1e-5)  # probabilities, like Predictor
    assert (p_onnx.argmax(1) == labels).mean() > 0.9  # a real model on real digits
    for n in (1, 7):  # the batch axis is dynamic; uint8 and float inputs agree
        assert onnx_p.predict_proba(images[:n]).shape == (n, 10)
    assert np.allclose(onnx_p.predict_proba(images[:5]), onnx_p.predict_proba(images[:5, None] / 255.0), atol=1e-6)
    assert isinstance(load_predictor(onnx_file), OnnxPredictor) and onnx_p.num_classes == 10


def test_torchscript_export(tiny_run, test_digits, tmp_path):
    model, _ = checkpoint.load_model(tiny_run / "model.pt")
    check = export.export_torchscript(model, tmp_path / "m.ts", test_digits[0])
    assert check["max_abs_diff"] <= 1e-4 and check["same_prediction"] >= 0.999
    loaded = torch.jit.load(str(tmp_path / "m.ts"))
    x = torch.from_numpy(test_digits[0][:4]).float().div(255)[:, None]
    assert torch.allclose(loaded(x), torch.softmax(model(x), 1), atol=1e-5)


def test_int8_accuracy_close(onnx_file, mnist, test_digits, tmp_path):
    images, labels = test_digits
    calib = mnist.train_images[:256]  # training images, never test images
    export.quantize_onnx(onnx_file, tmp_path / "int8.onnx", calib)
    acc32 = (OnnxPredictor(onnx_file).predict(images) == labels).mean()
    acc8 = (OnnxPredictor(tmp_path / "int8.onnx").predict(images) == labels).mean()
    assert abs(acc32 - acc8) <= 0.01, (acc32, acc8)
    assert export.file_size(tmp_path / "int8.onnx") < 0.5 * export.file_size(onnx_file)
    import onnx

    ops = {n.op_type for n in onnx.load(str(tmp_path / "int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_quantize_cli_from_checkpoint(tiny_run, tmp_path, capsys, data_root):
    out = tmp_path / "q.onnx"
    args = ["quantize", str(tiny_run / "model.pt"), "--out", str(out), "--calibration-images", "200", "--json"]
    assert main(args + (["--data-dir", str(data_root)] if data_root else [])) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["test_images"] == 10000 and report["calibration_images"] == 200
    assert abs(report["drop_pp"]) < 1.0 and report["bytes_int8"] < report["bytes_fp32"]
    assert OnnxPredictor(out).predict_proba(np.zeros((2, 28, 28), np.uint8)).shape == (2, 10)


# --- bad inputs ----------------------------------------------------------------------------------------------

def test_corrupt_and_wrong_shape_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07not really onnx" * 10)
    with pytest.raises(DigitrecError, match="not a readable ONNX model"):
        OnnxPredictor(bad)
    with pytest.raises(DigitrecError, match="not found"):
        load_predictor(tmp_path / "missing.onnx")
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "rgb",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 32, 32])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "rgb.onnx"))
    with pytest.raises(DigitrecError, match=r"expected one float input of shape N×1×28×28.*3, 32, 32"):
        OnnxPredictor(tmp_path / "rgb.onnx")


def test_cli_bad_inputs(tiny_run, tmp_path, capsys):
    ckpt, out = str(tiny_run / "model.pt"), tmp_path / "out"
    _fails(capsys, ["export", str(tmp_path / "nope.pt"), "--out", str(out / "m.onnx")], "checkpoint not found")
    _fails(capsys, ["export", ckpt, "--format", "tflite", "--out", str(out / "m.tflite")], "invalid choice")
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    _fails(capsys, ["quantize", str(tmp_path / "bad.onnx"), "--out", str(out / "q.onnx")], "not a readable ONNX")
    _fails(capsys, ["quantize", str(tmp_path / "nope.pt"), "--out", str(out / "q.onnx")], "not found")
    _fails(capsys, ["predict", str(tmp_path / "bad.onnx"), str(tmp_path / "bad.onnx")], "not a readable ONNX")
    assert not out.exists()  # nothing half-written anywhere


def test_predict_cli_accepts_onnx(onnx_file, tiny_run, mnist, tmp_path, capsys):
    from PIL import Image

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"d{i}.png")
        Image.fromarray(255 - mnist.test_images[i]).save(paths[-1])  # dark ink on white, like a scan
    rows = {}
    for model in (onnx_file, tiny_run / "model.pt"):
        assert main(["predict", str(model), *map(str, paths), "--json"]) == 0
        rows[model.suffix] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["digit"] for r in rows[".onnx"]] == [r["digit"] for r in rows[".pt"]]
    assert max(abs(a["confidence"] - b["confidence"]) for a, b in zip(rows[".onnx"], rows[".pt"])) < 1e-4


# --- int8 variants -------------------------------------------------------------------------------------------

def _optimized_ops(path, tmp_path) -> dict[str, int]:
    """Operator counts of the graph ONNX Runtime actually runs (after its optimizations)."""
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    ops: dict[str, int] = {}
    for node in onnx.load(opts.optimized_model_filepath).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return ops


@pytest.mark.parametrize("options", [dict(quant_format="qoperator"), dict(per_channel=False),
                                     dict(activations="uint8", weights="uint8"), dict(reduce_range=True),
                                     dict(activations="int8", weights="int8")])
def test_int8_variants_keep_accuracy(onnx_file, mnist, test_digits, tmp_path, options):
    images, labels = test_digits
    export.quantize_onnx(onnx_file, tmp_path / "int8.onnx", mnist.train_images[:256], **options)
    acc32 = (OnnxPredictor(onnx_file).predict(images) == labels).mean()
    acc8 = (OnnxPredictor(tmp_path / "int8.onnx").predict(images) == labels).mean()
    assert abs(acc32 - acc8) <= 0.01, (options, acc32, acc8)
    assert _optimized_ops(tmp_path / "int8.onnx", tmp_path).get("QLinearConv") == 4  # every conv runs in int8


def test_int8_bad_options_are_refused_before_writing(onnx_file, mnist, tmp_path):
    for options, message in ((dict(quant_format="qint"), "format must be one of qdq, qoperator"),
                             (dict(activations="int8", weights="uint8"), "int8/uint8 is not supported")):
        with pytest.raises(DigitrecError, match=message):
            export.quantize_onnx(onnx_file, tmp_path / "q.onnx", mnist.train_images[:64], **options)
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.parametrize("order, float_batchnorms", [("conv-pool-bn", 3), ("conv-bn-pool", 0)])
def test_batchnorm_after_pooling_stays_a_float_op_in_int8(mnist, tmp_path, order, float_batchnorms):
    """Why the fast network gains little from int8: its BatchNorms after max-pooling cannot fold into the conv, so
    ONNX Runtime runs them in float between quantized ops (with layout transposes); BN before pooling folds away."""
    from digitrec.models import create

    model = create("fast", width=8, order=order)
    model.train()
    with torch.no_grad():  # realistic BatchNorm statistics
        model(torch.from_numpy(mnist.train_images[:512]).float().div(255)[:, None])
    model.eval()
    export.export_onnx(model, tmp_path / "fp32.onnx", mnist.test_images[:64])
    export.quantize_onnx(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", mnist.train_images[:256])
    ops = _optimized_ops(tmp_path / "int8.onnx", tmp_path)
    assert ops.get("BatchNormalization", 0) == float_batchnorms and ops.get("QLinearConv") == 4, ops
    assert (ops.get("Transpose", 0) > 2) == (float_batchnorms > 0), ops


def test_quantize_cli_options(tiny_run, tmp_path, capsys, data_root):
    out = tmp_path / "q.onnx"
    args = ["quantize", str(tiny_run / "model.pt"), "--out", str(out), "--calibration-images", "100", "--json",
            "--format", "qoperator", "--per-tensor", "--types", "u8u8"]
    assert main(args + (["--data-dir", str(data_root)] if data_root else [])) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (report["format"], report["per_channel"], report["types"]) == ("qoperator", False, "u8u8")
    assert abs(report["drop_pp"]) < 1.0
    _fails(capsys, ["quantize", str(tiny_run / "model.pt"), "--out", str(tmp_path / "r.onnx"), "--types", "s8u8"],
           "invalid choice")
    assert not (tmp_path / "r.onnx").exists()
