"""`digitrec export CHECKPOINT --format onnx|torchscript --out FILE`: a deployable file, verified on real digits.

The file takes float32 N×1×28×28 images in 0–1 (input `images`, N dynamic) and returns probabilities N×classes
(output `probabilities`), like Predictor.predict_proba.
"""
from __future__ import annotations

import argparse

from ..errors import DigitrecError


def register(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript (verified against PyTorch)",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("checkpoint")
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    p.add_argument("--out", required=True, help="file to write (e.g. model.onnx)")
    p.add_argument("--check-images", type=int, default=2000,
                   help="real test images on which the export must agree with PyTorch (default: 2000)")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import checkpoint
    from ..errors import require
    from ..export import CHECK_MAX_ABS_DIFF, CHECK_MIN_AGREEMENT, export_onnx, export_torchscript, file_size, test_images
    from ..outputs import check_output_file

    if args.check_images < 1:
        raise DigitrecError(f"--check-images must be ≥ 1, got {args.check_images}")
    check_output_file(args.out, [args.checkpoint])
    if args.format == "onnx":  # exporter, checker and the runtime that verifies the file
        require("onnx", "onnxscript", "onnxruntime", what="digitrec export --format onnx")
    model, ckpt = checkpoint.load_model(args.checkpoint)
    dataset = ckpt.get("dataset", "mnist")
    images = test_images(dataset, args.data_dir)[0][:args.check_images]
    if args.format == "onnx":
        meta = {"digitrec.model": ckpt["model_name"], "digitrec.dataset": dataset,
                "digitrec.num_classes": ckpt["num_classes"], "digitrec.source": str(args.checkpoint)}
        check = export_onnx(model, args.out, images, meta)
        runtime = "ONNX Runtime"
    else:
        check = export_torchscript(model, args.out, images)
        runtime = "TorchScript"
    print(f"check: {runtime} vs PyTorch on {check['n']} {dataset} test images: max |Δp| {check['max_abs_diff']:.1e} "
          f"(≤ {CHECK_MAX_ABS_DIFF:g}), same prediction {check['same_prediction']:.2%} "
          f"(≥ {CHECK_MIN_AGREEMENT:.1%}) — OK")
    print(f"wrote {args.out} ({file_size(args.out) / 1024:.0f} KiB): input 'images' float32 N×1×28×28 in 0–1, "
          f"output 'probabilities' N×{ckpt['num_classes']}")
    return 0
