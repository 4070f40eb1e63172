"""`digitrec quantize CHECKPOINT|MODEL.onnx --out FILE`: static int8 ONNX (default: QDQ, per-channel int8 weights,
uint8 activations), calibrated on training images; prints test accuracy before and after on the dataset's official
test set."""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ..errors import DigitrecError

TYPES = {"u8s8": ("uint8", "int8"), "u8u8": ("uint8", "uint8"), "s8s8": ("int8", "int8")}


def register(sub) -> None:
    p = sub.add_parser("quantize", help="int8 ONNX model, calibrated on training images; accuracy before/after",
                       description=__doc__)
    p.add_argument("model", help="a digitrec checkpoint (.pt) or an fp32 ONNX file from `digitrec export`")
    p.add_argument("--out", required=True, help="int8 .onnx file to write")
    p.add_argument("--calibration-images", type=int, default=1000,
                   help="training images for calibrating activation ranges (default: 1000)")
    p.add_argument("--calibrate-method", choices=["minmax", "entropy", "percentile"], default="minmax")
    p.add_argument("--format", choices=["qdq", "qoperator"], default="qdq", dest="quant_format",
                   help="QDQ (Quantize/DequantizeLinear pairs ONNX Runtime fuses; default) or QOperator (QLinearConv "
                        "nodes written directly)")
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor, not per output channel")
    p.add_argument("--types", choices=["u8s8", "u8u8", "s8s8"], default="u8s8",
                   help="activations and weights: u8s8 (default; what VNNI multiplies), u8u8 or s8s8")
    p.add_argument("--reduce-range", action="store_true",
                   help="7-bit weights (for CPUs without VNNI, where 8-bit multiply-adds can saturate)")
    p.add_argument("--dataset", default=None, help="default: the one the model was trained on (else mnist)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import require
    from ..outputs import check_output_file

    if args.calibration_images < 10:
        raise DigitrecError(f"--calibration-images must be ≥ 10, got {args.calibration_images}")
    check_output_file(args.out, [args.model])
    require("onnx", "onnxruntime", *([] if str(args.model).endswith(".onnx") else ["onnxscript"]),
            what="digitrec quantize")
    from .. import export
    from ..onnx_predictor import OnnxPredictor

    with tempfile.TemporaryDirectory() as tmp:
        if str(args.model).endswith(".onnx"):
            fp32 = Path(args.model)
            dataset = args.dataset or OnnxPredictor(fp32).metadata.get("digitrec.dataset", "mnist")
        else:
            from .. import checkpoint

            model, ckpt = checkpoint.load_model(args.model)
            dataset = args.dataset or ckpt.get("dataset", "mnist")
            fp32 = Path(tmp) / "fp32.onnx"
            images = export.test_images(dataset, args.data_dir)[0][:1000]
            export.export_onnx(model, fp32, images, {"digitrec.model": ckpt["model_name"], "digitrec.dataset": dataset})
        calib = export.calibration_images(dataset, args.calibration_images, args.data_dir)
        activations, weights = TYPES[args.types]
        export.quantize_onnx(fp32, args.out, calib, args.calibrate_method, args.quant_format, not args.per_tensor,
                             activations, weights, args.reduce_range)
        x, y = export.test_images(dataset, args.data_dir)
        acc = {name: float((OnnxPredictor(path).predict(x) == y).mean()) for name, path in
               (("fp32", fp32), ("int8", Path(args.out)))}
        sizes = {"fp32": export.file_size(fp32), "int8": export.file_size(args.out)}
    report = {"dataset": dataset, "test_images": int(len(y)), "calibration_images": int(len(calib)),
              "calibrate_method": args.calibrate_method, "format": args.quant_format,
              "per_channel": not args.per_tensor, "types": args.types, "reduce_range": args.reduce_range,
              "accuracy_fp32": acc["fp32"], "accuracy_int8": acc["int8"],
              "drop_pp": 100 * (acc["fp32"] - acc["int8"]), "bytes_fp32": sizes["fp32"], "bytes_int8": sizes["int8"],
              "out": str(args.out)}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{dataset} test set ({len(y):,} images): fp32 {acc['fp32']:.2%} → int8 {acc['int8']:.2%} "
              f"(drop {report['drop_pp']:+.2f} pp); size {sizes['fp32'] / 1024:.0f} → {sizes['int8'] / 1024:.0f} KiB")
        if report["drop_pp"] > 0.1:
            print(f"note: the drop exceeds 0.1 pp; try --calibrate-method percentile or more --calibration-images")
        print(f"wrote {args.out}")
    return 0
