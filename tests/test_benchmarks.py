"""benchmarks/train_throughput.py runs train.py's model and its peer, and reports consistent numbers."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf
import tf_keras as keras
from tensorflow.python.framework import convert_to_constants

import bert_keras
from benchmarks import flops
from conftest import GLUE, REPO


def run_benchmark(minilm_dir, *flags):
    args = ["benchmarks/train_throughput.py", f"--init_checkpoint={minilm_dir}", "--task=rte", f"--glue_dir={GLUE}",
            "--train_batch_size=8", "--max_seq_length=32", "--warmup_steps=2", "--steps=3", *flags]
    result = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pruned_fixed_length(minilm_dir):
    """Pruned and padded to a fixed length: the rows of issue 7 that differ most from train.py's defaults."""
    return run_benchmark(minilm_dir, "--mixed_precision=float32", "--fixed_length", "--target_sparsity=0.5",
                         "--pruning_frequency=1")


def minilm_forward_flops(output_range):
    """MiniLM-L6 (H 384, I 1536, 6 layers) on an [8, 32] batch, 2 classes; the last layer on `output_range`
    query tokens (k and v on all 32)."""
    def layer(queries):
        return 2 * 8 * (32 * 2 * 384 * 384 + queries * (2 * 384 * 384 + 2 * 384 * 1536)) + 4 * 8 * queries * 32 * 384
    return 5 * layer(32) + layer(output_range) + 2 * 8 * (384 * 384 + 384 * 2)


def test_train_throughput_prints_one_consistent_json_line(pruned_fixed_length):
    found = pruned_fixed_length
    assert found["steps"] == 3 and found["seconds"] > 0 and found["examples"] == 3 * 8
    assert found["padded_tokens"] == 3 * 8 * 32 >= found["tokens"]
    assert found["examples_per_s"] == pytest.approx(3 * 8 / found["seconds"], rel=1e-2)  # full batches of 8
    assert found["padded_tokens_per_s"] >= found["tokens_per_s"] > 0
    assert found["padding"] == "fixed" and found["target_sparsity"] == 0.5
    assert found["padded_tokens_per_s"] == pytest.approx(found["examples_per_s"] * 32, rel=1e-2)
    assert found["tflops_per_s"] * 1e12 * found["seconds"] == pytest.approx(3 * 3 * minilm_forward_flops(1), rel=1e-2)
    assert found["flops_share_of_peak"] == pytest.approx(
        found["tflops_per_s"] / found["matmul_peak_tflops_per_s"], rel=1e-2)
    assert 0 < found["flops_share_of_peak"] < 1.5  # a step cannot beat the machine's matmul peak by much
    assert found["input_pipeline_step_s"] > 0
    assert found["input_pipeline_share"] == pytest.approx(found["input_pipeline_step_s"] / found["step_s"], rel=1e-2)


def test_peer_trains_on_the_same_batches(minilm_dir, pruned_fixed_length):
    """--framework transformers: the PyTorch peer on the batches train.py's step sees, with the same accounting."""
    ours = pruned_fixed_length  # pruning changes the step, not the batches
    peer = run_benchmark(minilm_dir, "--mixed_precision=float32", "--fixed_length", "--framework=transformers")
    assert (ours["framework"], peer["framework"]) == ("train.py", "transformers") and "torch" in peer["versions"]
    for key in ("padding", "padding_share", "steps", "batch_size", "examples", "tokens", "padded_tokens"):
        assert peer[key] == ours[key]  # the very same examples and tokens
    # 3 steps, 3x the forward: the peer's last layer on every token, train.py's on [CLS] alone.
    assert peer["tflops_per_s"] * 1e12 * peer["seconds"] == pytest.approx(3 * 3 * minilm_forward_flops(32), rel=1e-2)
    assert peer["examples_per_s"] > 0


@pytest.mark.parametrize("output_range", [1, None])
def test_training_flops_count_every_matmul_tensorflow_counts(minilm_dir, output_range):
    """The dense part of flops.training_flops equals TensorFlow's own count of the forward graph's MatMuls:
    train.py's classifier (the last layer on [CLS] alone), and a head on the whole encoder."""
    pretrained = bert_keras.load_encoder(minilm_dir)
    if output_range:
        model = bert_keras.build_classifier(pretrained.encoder, 2, 0.1)
    else:
        features = {n: keras.Input((None,), dtype="int32", name=n) for n in bert_keras.INPUT_NAMES}
        model = keras.Model(features, keras.layers.Dense(2)(pretrained.encoder(features)["pooled_output"]))
    batch, seq = 2, 16
    spec = {name: tf.TensorSpec((batch, seq), tf.int32) for name in ("input_word_ids", "input_mask", "input_type_ids")}
    forward = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    graph = convert_to_constants.convert_variables_to_constants_v2(forward).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options.update(output="none", account_type_regexes=["MatMul"])  # attention is BatchMatMulV2, not counted by TF
    counted = tf.compat.v1.profiler.profile(graph, options=options).total_float_ops
    config = pretrained.config
    last_queries = output_range or seq
    attention = 4 * batch * seq * config.hidden_size * ((config.num_hidden_layers - 1) * seq + last_queries)
    assert counted > 0 and flops.training_flops(config, batch, seq, 2, output_range) == 3 * (counted + attention)


@pytest.mark.slow
def test_inference_serves_the_peers_probabilities(minilm_dir):
    """benchmarks/inference.py: both sides hold the same weights, so their probabilities agree."""
    args = ["benchmarks/inference.py", f"--init_checkpoint={minilm_dir}", f"--glue_dir={GLUE}", "--requests=3",
            "--warmup_requests=1", "--long_texts=8"]
    result = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=900,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr[-5000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(found["rows"]) == {"sst2", "long"} and found["rows"]["long"]["texts"] == 8
    for row in found["rows"].values():
        assert row["max_abs_probability_difference"] < 1e-5
        assert row["saved_model"]["latency_ms_median"] > 0 and row["transformers_pipeline"]["batch_examples_per_s"] > 0


def test_op_costs_prints_positive_timings():
    result = subprocess.run([sys.executable, "benchmarks/op_costs.py"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("gelu_bfloat16_ms", "gelu_in_float32_with_casts_ms", "random_uniform_ms", "generator_uniform_ms",
                "stateless_uniform_ms", "stateless_uniform_constant_seed_ms", "attention_einsum_ms",
                "attention_matmul_ms"):
        assert found[key] > 0


@pytest.mark.slow  # ~100 s each: two models built and traced; test_train checks what each A/B changes
@pytest.mark.parametrize("ab, before, after, differs", [
    ("optimizer", "keras_adamw", "train_adamw", ("optimizer", "tf_keras.src.optimizers.adamw.AdamW", "train.AdamW")),
    ("output_range", "whole_encoder", "cls_only_last_layer", ("last_layer_tokens", None, 1)),
    # 105 variables, one compiled update each; then the dense ones' and two embeddings' (sparse)
    ("fused_update", "per_variable", "fused", ("update_traces", 105, 3))])
def test_step_ab_times_both_variants(minilm_dir, ab, before, after, differs):
    result = subprocess.run([sys.executable, "benchmarks/step_ab.py", f"--init_checkpoint={minilm_dir}", f"--ab={ab}",
                             "--mixed_precision=float32", "--seq_length=8", "--train_batch_size=4", "--rounds=1"],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["ab"] == ab and found["batch"] == [4, 8] and found["steps_each"] == 15
    key, value_before, value_after = differs
    assert (found["built"][before][key], found["built"][after][key]) == (value_before, value_after)
    assert set(found["median_step_ms"]) == {before, after} and min(found["median_step_ms"].values()) > 0
    assert found[f"{after}_over_{before}"] == pytest.approx(
        found["median_step_ms"][after] / found["median_step_ms"][before], abs=2e-3)


def test_matmul_vs_torch_sums_a_steps_matmuls():
    result = subprocess.run([sys.executable, "benchmarks/matmul_vs_torch.py", "--tokens=16", "--hidden=8",
                             "--intermediate=32", "--layers=2", "--repeats=2"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for dtype in ("bfloat16", "float32"):
        per_matmul = found[dtype]["ms_per_matmul"]
        assert len(per_matmul) == 9 and min(min(ms.values()) for ms in per_matmul.values()) > 0
        for side in ("tensorflow", "torch"):  # 4 hidden x hidden layers, 1 of each other, in 2 layers
            expected = 2 * sum(ms[side] * (4 if name.startswith("8x8 ") else 1) for name, ms in per_matmul.items())
            assert found[dtype]["ms_per_step"][side] == pytest.approx(expected, rel=1e-3, abs=1e-3)
        step = found[dtype]["ms_per_step"]
        assert found[dtype]["tensorflow_over_torch"] == pytest.approx(step["tensorflow"] / step["torch"], rel=0.01)


@pytest.mark.slow  # ~110 s: TensorFlow and PyTorch models built and traced in one process
def test_step_by_length_times_both_sides_on_every_batch(minilm_dir):
    args = ["benchmarks/step_by_length.py", f"--init_checkpoint={minilm_dir}", "--task=rte", f"--glue_dir={GLUE}",
            "--train_batch_size=4", "--max_seq_length=32", "--bucket_width=16", "--batches=6", "--rounds=2",
            "--mixed_precision=float32"]
    result = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr[-5000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["batches"] == 6 and found["rounds"] == 2 and found["policy"] == "float32"
    assert sum(row["batches"] for row in found["by_length"].values()) == 6
    assert set(found["by_length"]) <= {"16", "32"}  # RTE's pairs, in buckets 16 tokens wide up to 32
    mean = found["mean_step_ms"]
    assert min(mean.values()) > 0
    assert found["train_py_over_transformers"] == pytest.approx(mean["train.py"] / mean["transformers"], rel=2e-2)
    for row in found["by_length"].values():
        assert row["train.py_median_ms"] > 0 and row["transformers_median_ms"] > 0


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_peer_step_scales_the_loss_in_float16_only(minilm_dir, precision):
    """The peer's 16-bit steps (benchmarks/hf_peer.py): float16 with dynamic loss scaling, as Keras'
    mixed_float16; bfloat16 without. Either way the step trains: finite loss, weights move."""
    import torch
    from benchmarks import hf_peer

    torch.manual_seed(0)
    model = hf_peer.load_model(minilm_dir, 2, is_regression=False)
    optimizer, scheduler = hf_peer.make_optimizer(model, 1e-3, 0.01, warmup_steps=0, total_steps=10)
    scaler = hf_peer.grad_scaler(precision)
    batch = {"input_ids": torch.randint(1000, 5000, (2, 8)), "token_type_ids": torch.zeros(2, 8, dtype=torch.long),
             "attention_mask": torch.ones(2, 8, dtype=torch.long)}
    before = model.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    loss = hf_peer.training_step(model, optimizer, scheduler, scaler, batch, torch.tensor([0, 1]),
                                 is_regression=False, precision=precision)
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    assert not torch.equal(model.bert.encoder.layer[0].attention.self.query.weight, before)
    assert scaler.is_enabled() == (precision == "float16")
    if precision == "float16":
        assert scaler.get_scale() == 2.0 ** 16  # torch's initial scale, kept: no overflow in this step
