"""benchmarks/gpu.sh, the script for a lent GPU: a wrong part name stops it before it writes anything."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_unknown_part_is_refused_before_anything_is_written(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh"), "tabel1"], cwd=ROOT, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "OUT": str(out), "WORK": str(work)}, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "usage: benchmarks/gpu.sh speed|table1|all" and proc.stdout == ""
    assert not out.exists() and not work.exists()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_without_a_gpu_it_refuses_before_anything_is_written(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh"), "speed"], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "OUT": str(out), "WORK": str(work)}, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().startswith("benchmarks/gpu.sh: no NVIDIA GPU here")
    assert not out.exists() and not work.exists()


def test_the_python_part_refuses_without_cuda_too(tmp_path, monkeypatch, capsys):
    import torch

    from benchmarks import gpu

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("sys.argv", ["gpu.py", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")])
    with pytest.raises(SystemExit) as e:
        gpu.main()
    assert e.value.code == 2 and "no CUDA GPU visible" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


def test_an_unknown_code_state_is_refused(monkeypatch):
    import torch

    from benchmarks import gpu

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gpu, "provenance", lambda: {"commit": "unknown", "dirty": None})
    assert "code state is unknown" in gpu.refusal() and "benchmarks.provenance --env" in gpu.refusal()


def test_the_plan_and_an_unknown_part(monkeypatch):
    from benchmarks import gpu

    runs = gpu.plan(["speed", "paper"], quick=False)
    speed = [r for r in runs if r["part"] == "speed"]
    assert len(speed) == 12 and {(r["preset"], r["mode"]) for r in speed} == {
        (p, m) for p in ("speedrun", "fast") for m in ("eager", "cuda-graphs")}
    assert all(("--cuda-graphs" in r["extra"]) == (r["mode"] == "cuda-graphs") for r in runs)
    paper = [r for r in runs if r["part"] == "paper"]
    assert [r["extra"] for r in paper] == [["--cuda-graphs"], ["--epochs", "2"]]  # 25 epochs graphed; 2 eager
    assert all("--epochs" in r["extra"] and "--limit" in r["extra"] for r in gpu.plan(["speed", "paper"], True))
    monkeypatch.setattr("sys.argv", ["gpu.py", "--parts", "speed,tabel1"])
    with pytest.raises(SystemExit, match="unknown part.*tabel1"):
        gpu.main()


def test_the_record_summarizes_per_preset_and_mode():
    from benchmarks import gpu

    runs = [{"preset": "fast", "mode": m, "seed": s, "test_accuracy": 0.992 + 0.001 * s, "train_time_s": t,
             "epochs": 2, "command_wall_s": 9.0, "command": f"digitrec train --preset fast --seed {s}"}
            for m, t in (("eager", 3.0), ("cuda-graphs", 0.4)) for s in range(3)]
    summary = {(s["mode"]): s for s in gpu.summarize(runs)}
    assert summary["cuda-graphs"]["accuracy_median"] == pytest.approx(0.993)
    assert summary["cuda-graphs"]["epoch_time_median_s"] == pytest.approx(0.2)
    text = gpu.markdown({"provenance": {"commit": "a" * 40, "dirty": False, "hardware": {"gpu": "NVIDIA H200"}},
                         "complete": False, "runs": runs, "summary": gpu.summarize(runs)})
    assert "NVIDIA H200" in text and "Partial results" in text and "| fast | cuda-graphs | 3 | 2 | 99.30% | 0.40 s |" in text
