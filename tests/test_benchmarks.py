"""benchmarks/train_throughput.py runs train.py's model and reports consistent numbers."""

import json
import os
import subprocess
import sys

import pytest

from conftest import GLUE, REPO


def test_train_throughput_prints_one_consistent_json_line(minilm_dir):
    """Pruned and padded to a fixed length: the rows of issue 7 that differ most from train.py's defaults."""
    args = ["benchmarks/train_throughput.py", f"--init_checkpoint={minilm_dir}", "--task=rte", f"--glue_dir={GLUE}",
            "--train_batch_size=8", "--max_seq_length=32", "--warmup_steps=2", "--steps=3",
            "--mixed_precision=float32", "--fixed_length", "--target_sparsity=0.5", "--pruning_frequency=1"]
    result = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-5000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["steps"] == 3 and found["seconds"] > 0
    assert found["examples_per_s"] == pytest.approx(3 * 8 / found["seconds"], rel=1e-2)  # full batches of 8
    assert found["padded_tokens_per_s"] >= found["tokens_per_s"] > 0
    assert found["padding"] == "fixed" and found["target_sparsity"] == 0.5
    assert found["padded_tokens_per_s"] == pytest.approx(found["examples_per_s"] * 32, rel=1e-2)
