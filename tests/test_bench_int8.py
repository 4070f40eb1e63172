"""benchmarks/int8.py without its long parts: the verdict, the tables, the arguments, the quick records' folder."""
from __future__ import annotations

import sys

import pytest

from benchmarks import int8, readme


def _network(name, speedups, accuracies):
    rows = [{"variant": "fp32 ONNX Runtime", "bytes": 4096, "accuracy": accuracies[0], "images_per_s_b256": 1000.0,
             "latency_b1_p50_ms": 1.0, "latency_b1_p99_ms": 2.0, "speedup_b256": 1.0, "speedup_b1": 1.0,
             "ops": {"Conv": 4}}]
    for i, ((b256, b1), acc) in enumerate(zip(speedups, accuracies[1:])):
        rows.append({"variant": f"int8 v{i}", "bytes": 1024, "accuracy": acc, "images_per_s_b256": 1000.0 * b256,
                     "latency_b1_p50_ms": 1.0 / b1, "latency_b1_p99_ms": 2.0, "speedup_b256": b256, "speedup_b1": b1,
                     "ops": {"QLinearConv": 4, "BatchNormalization": 3, "Transpose": 6}})
    return {"network": name, "preset": "fast", "model_options": {}, "rows": rows}


def test_the_verdict_needs_both_batches_and_the_accuracy():
    net = _network("fast", [(1.6, 1.4), (1.6, 1.6), (2.0, 2.0)], [0.9940, 0.9935, 0.9925, 0.9930])
    # v0: batch 1 too slow; v1: 0.15 point lost; v2: 0.10 point lost and fast enough at both batches
    assert int8.verdict({"networks": [net]}) == [
        "Target (≥ 1.5× fp32 ONNX Runtime at batch 256 and at batch 1, one thread, ≤ 0.1 point accuracy loss): "
        "met by fast: int8 v2."]
    slow = _network("fast", [(1.1, 0.9)], [0.994, 0.994])
    assert "not met by any variant" in int8.verdict({"networks": [slow]})[0]


def test_the_table_shows_speedups_loss_and_the_float_ops_left():
    lines = int8.results_table(_network("fast", [(1.23, 0.8)], [0.9940, 0.9931]))
    assert len(lines) == 4 and lines[3] == "| int8 v0 | 1 | 99.31% | +0.09 | 1,230 | 1.23 | 1.250 | 0.80 | 4 | 3 | 6 |"


def test_a_partial_record_says_so_and_the_readme_skips_quick_ones():
    record = {"kind": "int8", "provenance": {"commit": "a" * 40, "dirty": False, "date": "2026-12-03 13:00 UTC"},
              "complete": False, "quick": True, "onnxruntime": "1.x", "cpu_flags": ["avx512_vnni"],
              "networks": [_network("fast", [(1.2, 1.1)], [0.99, 0.99])]}
    text = int8.markdown(record)
    assert "Partial results" in text and "avx512_vnni" in text and "## fast" in text
    selected = [heading for heading, select, _ in readme.SECTIONS if select(record)]
    assert selected == []
    assert [h for h, select, _ in readme.SECTIONS if select({**record, "quick": False})] == [
        "int8 and bf16 on a CPU (`python -m benchmarks.int8`)"]


def test_unknown_networks_are_refused_and_quick_is_small(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["int8.py", "--networks", "fast,fsat"])
    with pytest.raises(SystemExit) as e:
        int8.parse_args()
    assert e.value.code == 2 and "unknown network(s) fsat" in capsys.readouterr().err
    for bad, message in (("fast", "--checkpoint takes NAME=PATH"), ("fast=/no/such/model.pt", "--checkpoint takes"),
                         ("fsat=/no/such/model.pt", "unknown network(s) fsat")):
        monkeypatch.setattr(sys, "argv", ["int8.py", "--checkpoint", bad])
        with pytest.raises(SystemExit):
            int8.parse_args()
        assert message in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["int8.py", "--quick"])
    args = int8.parse_args()
    assert (args.rounds, args.bf16_seeds) == (2, "0") and args.networks == "fast,fast-bn-first,speedrun"
