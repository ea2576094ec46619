"""scripts/profile_training_step.py (BENCHMARKS "Speed"): it profiles a few steps of a real run and stops it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_profile_reports_the_matmul_share_of_the_profiled_steps(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path]
) -> None:
    files = sentiment_files
    command = [
        sys.executable, str(ROOT / "scripts" / "profile_training_step.py"),
        "--train-file", str(files["train"]), "--validation-file", str(files["validation"]),
        "--max-train-samples", "24", "--warmup", "1", "--steps", "2",
        "--", "--model", str(tiny_checkpoint),
    ]  # fmt: skip
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "TMPDIR": str(temporary)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert "matrix-multiply peak measured here:" in done.stdout
    assert "FFN up 512x384 @ 384x1536:" in done.stdout
    assert "2 steps in " in done.stdout and "matrix multiplies (aten::mm, aten::addmm, aten::bmm): " in done.stdout
    assert "aten::addmm" in done.stdout  # the operator table
    assert not any(temporary.glob("nlp-transfer-profile-*"))  # the run's temporary folder is gone
