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
    assert proc.stderr.strip() == "usage: benchmarks/gpu.sh table1|speed|all" and proc.stdout == ""
    assert not out.exists() and not work.exists()
