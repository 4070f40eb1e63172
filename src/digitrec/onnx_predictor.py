"""`OnnxPredictor`: the Predictor interface over an exported .onnx file, run by ONNX Runtime (no torch needed).

Expects the interface `digitrec export` writes: one float input N×1×28×28 (0–1) and one N×C output, probabilities
(metadata `digitrec.output`; a foreign model without it counts as probabilities when its graph ends in Softmax,
else as logits, to which softmax is applied here).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import DigitrecError

INPUT_SHAPE = (1, 28, 28)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class OnnxPredictor:
    """Digit probabilities from an ONNX model; input: float N×1×28×28 (0–1, MNIST polarity) or uint8 0–255."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise DigitrecError(f"{self.path}: ONNX model not found" if not self.path.exists() else f"{self.path}: not a file")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # errors only: ORT's warnings are not the user's business
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own pybind types (InvalidProtobuf, Fail, InvalidGraph, ...)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise DigitrecError(f"{self.path}: not a readable ONNX model ({first[:200]})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = list(inputs[0].shape) if len(inputs) == 1 else []
        if len(inputs) != 1 or inputs[0].type != "tensor(float)" or len(shape) != 4 or tuple(shape[1:]) != INPUT_SHAPE:
            got = ", ".join(f"{i.name}: {i.type} {i.shape}" for i in inputs) or "no input"
            raise DigitrecError(f"{self.path}: expected one float input of shape N×1×28×28, the model takes {got}")
        out_shape = list(outputs[0].shape) if len(outputs) == 1 else []
        if len(outputs) != 1 or len(out_shape) != 2 or not isinstance(out_shape[1], int) or out_shape[1] < 2:
            got = ", ".join(f"{o.name}: {o.shape}" for o in outputs) or "no output"
            raise DigitrecError(f"{self.path}: expected one output of shape N×classes, the model gives {got}")
        self.input_name = inputs[0].name
        self.fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        self._num_classes = int(out_shape[1])
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        kind = self.metadata.get("digitrec.output")
        if kind is None:
            import onnx

            graph = onnx.load(str(self.path), load_external_data=False).graph
            kind = "probabilities" if graph.node and graph.node[-1].op_type == "Softmax" else "logits"
        self.outputs_probabilities = kind == "probabilities"

    @property
    def num_classes(self) -> int:
        return self._num_classes

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.fixed_batch is None:
            return self.session.run(None, {self.input_name: x})[0]
        n, b = len(x), self.fixed_batch  # a model exported with a fixed batch size: pad the last chunk
        pad = (-n) % b
        x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)]) if pad else x
        return np.concatenate([self.session.run(None, {self.input_name: x[i:i + b]})[0] for i in range(0, len(x), b)])[:n]

    def predict_proba(self, images, batch_size: int = 256) -> np.ndarray:
        x = np.asarray(images)
        x = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32, copy=False)
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or tuple(x.shape[1:]) != INPUT_SHAPE:
            raise DigitrecError(f"images must be N×1×28×28 (or N×28×28), got shape {tuple(np.asarray(images).shape)}")
        if len(x) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        out = np.concatenate([self._run(np.ascontiguousarray(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])
        return out if self.outputs_probabilities else _softmax(out)

    def predict(self, images) -> np.ndarray:
        return self.predict_proba(images).argmax(axis=1)
