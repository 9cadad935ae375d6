"""benchmarks/: train.py's side built through training.* as train.py builds it, the peer on the very same
batches, FLOPs as the hand formula counts them, the table's medians, and no script importing train.py."""

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from tensorflow.python.framework import convert_to_constants

import bert_keras
import glue_tasks
from benchmarks import common, teacher_fit, training_speed
from conftest import GLUE, REPO
from training import run_folder
from training.config import RunConfig

BENCHMARKS = os.path.join(REPO, "benchmarks")
# A training_speed.py row, on either side: what --compare's table and the README read.
ROW_KEYS = {"framework", "task", "checkpoint", "policy", "padding", "bucket_width", "xla", "target_sparsity",
            "pruned_layers", "batch_size", "max_seq_length", "warmup_steps", "steps", "examples", "tokens",
            "padded_tokens", "padding_share", "seconds", "step_s", "examples_per_s", "tokens_per_s",
            "padded_tokens_per_s", "flops", "tflops_per_s", "matmul_peak_tflops_per_s", "flops_share_of_peak",
            "machine", "date"}


def run_script(script, *flags, timeout=600):
    result = subprocess.run([sys.executable, os.path.join("benchmarks", script), *flags], cwd=REPO,
                            capture_output=True, text=True, timeout=timeout,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr[-5000:]
    return result.stdout, json.loads(result.stdout.strip().splitlines()[-1])


def run_training_speed(minilm_dir, *flags):
    return run_script("training_speed.py", f"--init_checkpoint={minilm_dir}", "--task=rte", f"--glue_dir={GLUE}",
                      "--train_batch_size=8", "--max_seq_length=32", "--warmup_steps=2", "--steps=3", *flags)[1]


@pytest.fixture(scope="module")
def pruned_fixed_length(minilm_dir):
    """Pruned and padded to a fixed length: the row that differs most from train.py's defaults."""
    return run_training_speed(minilm_dir, "--mixed_precision=float32", "--fixed_length", "--target_sparsity=0.5",
                              "--pruning_frequency=1")


def minilm_forward_flops(output_range):
    """MiniLM-L6 (H 384, I 1536, 6 layers) on an [8, 32] batch, 2 classes; the last layer on `output_range`
    query tokens (k and v on all 32)."""
    def layer(queries):
        return 2 * 8 * (32 * 2 * 384 * 384 + queries * (2 * 384 * 384 + 2 * 384 * 1536)) + 4 * 8 * queries * 32 * 384
    return 5 * layer(32) + layer(output_range) + 2 * 8 * (384 * 384 + 384 * 2)


def test_no_benchmark_script_shadows_an_installed_module():
    """A script runs with benchmarks/ first on sys.path: one named like an installed package (transformers
    imports `kernels` when it finds it) would be imported in that package's place."""
    for name in sorted(n[:-3] for n in os.listdir(BENCHMARKS) if n.endswith(".py") and n != "__init__.py"):
        spec = importlib.util.find_spec(name)
        assert spec is None or os.path.dirname(os.path.abspath(spec.origin or "")) == BENCHMARKS, (name, spec)


def test_no_benchmark_imports_train_py():
    """train.py is a program: the benchmarks build their models through training.*, as train.py does."""
    scripts = sorted(name for name in os.listdir(BENCHMARKS) if name.endswith(".py"))
    assert {"common.py", "peer.py", "training_speed.py", "accuracy.py", "serving_speed.py", "kernel_speed.py"} <= set(
        scripts)
    for name in scripts:
        with open(os.path.join(BENCHMARKS, name)) as f:
            source = f.read()
        tree = ast.parse(source)
        modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not [m for m in modules if m == "train" or m.startswith("train.")], name
        # Nor in code handed to a child process (python -c "import train; ...").
        assert not re.search(r"\bimport train\b|\bfrom train import\b", source), name


@pytest.mark.slow  # ~75 s; the default run's budget is 15 minutes: the FLOP counts and kernels below run by default
def test_training_speed_times_train_pys_pruned_step(pruned_fixed_length):
    found = pruned_fixed_length
    assert set(found) == ROW_KEYS
    assert (found["framework"], found["policy"], found["padding"], found["bucket_width"]) == (
        "train.py", "float32", "fixed", None)
    # The RunConfig reached build_training_model: MiniLM-L6's 36 encoder kernels wrapped for pruning.
    assert found["target_sparsity"] == 0.5 and found["pruned_layers"] == 36
    assert found["steps"] == 3 and found["examples"] == 3 * 8  # the timer's steps: the 3 after 2 untimed
    assert found["padded_tokens"] == 3 * 8 * 32 >= found["tokens"]
    # 3 steps, 3x the forward; train.py's last layer on [CLS] alone.
    assert found["flops"] == 3 * 3 * minilm_forward_flops(1)
    assert 0 < found["flops_share_of_peak"] < 1.5  # a step cannot beat the machine's matmul peak by much


@pytest.mark.slow  # ~30 s; with train.py's side above (--runslow)
def test_training_speed_times_the_peer_on_the_same_batches(minilm_dir, pruned_fixed_length):
    """--framework transformers: the PyTorch peer on the batches train.py's step sees, with the same accounting."""
    ours = pruned_fixed_length  # pruning changes the step, not the batches
    peer = run_training_speed(minilm_dir, "--mixed_precision=float32", "--fixed_length", "--framework=transformers")
    assert set(peer) == ROW_KEYS
    assert (peer["framework"], peer["pruned_layers"]) == ("transformers", 0) and peer["machine"]["versions"]["torch"]
    for key in ("policy", "padding", "padding_share", "steps", "batch_size", "examples", "tokens", "padded_tokens"):
        assert peer[key] == ours[key], key  # the very same examples and tokens
    assert peer["flops"] == 3 * 3 * minilm_forward_flops(32)  # the peer's last layer on every token


def test_compare_alternates_the_rows_and_takes_medians_of_each_rounds_ratio():
    """--compare's table from rows run in order: each setting's rows back to back in a round, the peer's
    first; a row's ratio is the median of its rounds' ratios, each against the peer of its own round."""
    speeds = {  # (fixed, framework, sparsity): examples/s in rounds 1 and 2
        (False, "transformers", 0.0): [100.0, 50.0], (False, "train.py", 0.0): [150.0, 100.0],
        (False, "train.py", 0.5): [120.0, 90.0], (True, "transformers", 0.0): [10.0, 20.0],
        (True, "train.py", 0.0): [20.0, 20.0]}
    calls = []

    def fake_row(precision, fixed, framework, sparsity):
        calls.append((precision, fixed, framework, sparsity))
        done = sum(c[1:] == (fixed, framework, sparsity) for c in calls)
        return {"framework": framework, "policy": "float32", "padding": "fixed" if fixed else "bucket",
                "task": "SST-2", "max_seq_length": 128, "target_sparsity": sparsity,
                "examples_per_s": speeds[(fixed, framework, sparsity)][done - 1],
                "flops_share_of_peak": 0.4 + 0.1 * done, "matmul_peak_tflops_per_s": 0.35 + 0.01 * done}

    passes = training_speed.compare(fake_row, ["float32", "float32"], rounds=2, pruned_sparsity=0.5)
    one_round = [("float32", False, "transformers", 0.0), ("float32", False, "train.py", 0.0),
                 ("float32", False, "train.py", 0.5), ("float32", True, "transformers", 0.0),
                 ("float32", True, "train.py", 0.0)]
    assert calls == one_round * 2  # float32 twice is one policy, run once a round
    lines = training_speed.summarize(passes)
    expected = {  # row: (median train.py ex/s, median peer ex/s, median ratio), each round's ratio
        "float32, SST-2 buckets": ([125, 75, 1.75], [1.5, 2.0]),  # 1.75, not 125 / 75
        "float32, SST-2 buckets, 50% pruned": ([105, 75, 1.5], [1.2, 1.8]),
        "float32, fixed 128": ([20, 15, 1.5], [2.0, 1.0])}
    assert [line["row"] for line in lines] == list(expected)
    for line in lines:
        medians, ratios = expected[line["row"]]
        assert [line[key] for key in ("train_py_examples_per_s", "transformers_examples_per_s", "ratio")] == (
            pytest.approx(medians)) and line["ratios"] == pytest.approx(ratios), line["row"]
    assert (lines[0]["share_of_peak"], lines[0]["matmul_peak_gflops_per_s"]) == pytest.approx((0.55, 365))
    table = training_speed.markdown(lines)
    assert "| float32, fixed 128 | 20.0 | 15.0 | 1.50x | 55% of 365 GFLOP/s | 2.00, 1.00 |" in table
    assert training_speed.distinct_precisions(["float32", "bfloat16", "float32"]) == {
        "float32": "float32", "mixed_bfloat16": "bfloat16"}


@pytest.mark.parametrize("output_range", [1, None])
def test_training_flops_count_every_matmul_tensorflow_counts(minilm_dir, output_range):
    """The dense part of common.training_flops equals TensorFlow's own count of the forward graph's MatMuls:
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
    assert counted > 0 and common.training_flops(config, batch, seq, 2, output_range) == 3 * (counted + attention)


@pytest.mark.slow  # ~27 s in a process of its own; the default run's budget is 15 minutes
def test_kernels_compare_forms_that_compute_the_same_thing():
    """benchmarks/kernel_speed.py: TensorFlow's and torch's matmuls, attention's einsums and batched matmuls, GELU
    native and between casts each give the same result (what is timed is one computation two ways), and a
    step's sum counts each layer's dense matmuls: four hidden x hidden, one of each other shape."""
    _, found = run_script("kernel_speed.py", "--batch_size=2", "--seq_length=8", "--hidden=8", "--intermediate=32",
                          "--heads=2", "--layers=2", "--repeats=2", timeout=300)
    for dtype, tolerance in (("bfloat16", 2e-2), ("float32", 1e-5)):
        dense = found[dtype]["dense_matmuls"]
        assert len(dense["ms_per_matmul"]) == 9 and dense["max_relative_difference"] < tolerance
        counts = {name: 2 * (4 if name.startswith("8x8 ") else 1) for name in dense["ms_per_matmul"]}  # 2 layers
        rounding = 5e-5 * (sum(counts.values()) + 1)  # each figure is rounded to 4 decimals
        for side in ("tensorflow", "torch"):
            expected = sum(ms[side] * counts[name] for name, ms in dense["ms_per_matmul"].items())
            assert dense["ms_per_step"][side] == pytest.approx(expected, rel=0, abs=rounding)
        assert found[dtype]["attention"]["max_relative_difference"] < 2 * tolerance
    assert found["bfloat16"]["gelu"]["max_abs_difference"] < 2e-2 and "gelu" not in found["float32"]


def test_accuracy_reads_finished_runs_back_without_running_them(tmp_path):
    """benchmarks/accuracy.py resumes: finished runs of both sides are read back (here with a checkpoint that
    does not exist, so any run would fail), their dev metrics and train.py's pruned sparsity tabulated."""
    root = tmp_path / "rte" / "epochs3_seed0_float32"
    peer_dir, ours_dir = root / "transformers", root / "train.py_0.5"
    peer_dir.mkdir(parents=True)
    ours_dir.mkdir()
    (peer_dir / "eval_results.json").write_text(json.dumps(
        {"metrics": {"validation": {"accuracy": 0.5379}}, "global_step": 234}))
    RunConfig(task="rte", target_sparsity=0.5, seed=0, mixed_precision="float32").save(str(ours_dir))
    run_folder.write_results(str(ours_dir), {
        "eval_accuracy": 0.556, "eval_loss": 0.69, "eval_time_s": 3.0, "global_step": 246, "loss": 0.7,
        "sparsity": {"pruned": {"sparsity": 0.5000004}, "reported": {"sparsity": 0.23}},
        "footprint": {"parameters": 22713986, "saved_model_bytes": 92573611}})
    stdout, found = run_script("accuracy.py", "--init_checkpoint=/nonexistent", "--tasks=rte", "--sparsities=0.5",
                               f"--output_root={tmp_path}", timeout=300)
    assert [(r["runner"], r["sparsity"], r["metrics"], r["global_step"], r["wall_s"]) for r in found["rows"]] == [
        ("transformers (PyTorch)", 0.0, {"accuracy": 0.5379}, 234, 0),
        ("train.py (tf_keras)", 0.5, {"accuracy": 0.556}, 246, 0)]
    assert (found["rows"][1]["parameters"], found["rows"][1]["saved_model_bytes"]) == (22713986, 92573611)
    assert "| rte | 0 | train.py (tf_keras) | default | 50% | accuracy 0.5560 | 246 | read back |" in stdout


def test_the_accuracy_recipe_updates_the_masks_8_times_and_rewarms_for_each():
    from benchmarks import accuracy
    from training import model as task_model
    from training.optimization import StepPlan

    flags, distilled = accuracy.recipe_flags("recipe", 6, 0.5)
    settings = dict(flag[2:].split("=") for flag in flags)
    assert distilled and settings.pop("learning_rate_schedule") == "rewarm"
    config = RunConfig(task="mrpc", target_sparsity=0.8, **{k: float(v) for k, v in settings.items()})
    mrpc = StepPlan(steps_per_epoch=115, total_steps=690, epochs=6, warmup_steps=69)
    updates = task_model.mask_update_steps(config, mrpc)
    assert len(updates) == 8 and updates[0] == 69 and updates[-1] <= 0.7 * 690
    assert config.learning_rate == 5e-5 and config.initial_sparsity == 0.5
    assert accuracy.recipe_flags("no_teacher", 6, 0.5) == (flags, False)
    for ablation, setting in (("linear_lr", "learning_rate_schedule=linear"), ("initial_0", "initial_sparsity=0"),
                              ("global", "sparsity_ranking=global")):
        changed, distilled = accuracy.recipe_flags(ablation, 6, 0.5)
        assert distilled and f"--{setting}" in changed and len(set(changed) - set(flags)) == 1, ablation
    fisher, distilled = accuracy.recipe_flags("fisher", 6, 0.5)
    assert distilled and set(fisher) - set(flags) == {"--pruning_score=fisher"}
    assert accuracy.recipe_flags("fisher_no_teacher", 6, 0.5) == (fisher, False)
    for ablation in ("linear_lr", "initial_0", "global"):  # the same ablations of the Fisher recipe
        changed, distilled = accuracy.recipe_flags(f"fisher_{ablation}", 6, 0.5)
        assert distilled and set(changed) - set(fisher) == set(accuracy.recipe_flags(ablation, 6, 0.5)[0]) - set(flags)
    taylor, _ = accuracy.recipe_flags("taylor", 6, 0.5)
    changed, distilled = accuracy.recipe_flags("taylor_global", 6, 0.5)  # heads and neurons ranked across layers
    assert distilled and set(changed) - set(taylor) == {"--sparsity_ranking=global"}


@pytest.mark.slow
def test_serving_speed_serves_the_peers_probabilities(minilm_dir):
    """benchmarks/serving_speed.py: train.py's export and the pipeline hold the same weights, so their
    probabilities agree on every text."""
    _, found = run_script("serving_speed.py", f"--init_checkpoint={minilm_dir}", f"--glue_dir={GLUE}",
                          "--requests=3", "--warmup_requests=1", "--long_texts=8", "--structured_sparsities=0.5",
                          "--tflite", "--xla", timeout=900)
    assert {name: row["texts"] for name, row in found["rows"].items()} == {"sst2": 872, "long": 8}
    for row in found["rows"].values():
        assert row["max_abs_probability_difference"] < 1e-5
        assert row["structured_0.5"]["latency_speedup_over_dense"] > 0
        for xla in ("saved_model_xla", "structured_0.5_xla"):  # the same models, compiled
            assert row[xla]["max_abs_probability_difference_to_plain"] < 1e-5, row
        assert row["structured_0.5_xla"]["latency_speedup_over_dense_xla"] > 0
    sizes = found["sizes"]
    assert 0.5 < sizes["0.5"]["parameters"] / sizes["0"]["parameters"] < 0.9  # the embeddings stay
    assert sizes["0.5"]["saved_model_bytes"] < sizes["0"]["saved_model_bytes"]
    for model in ("0", "0.5"):
        lite = found["tflite"][model]
        assert lite["dynamic_range"]["bytes"] < 0.3 * lite["float"]["bytes"], lite
        assert all(lite[q]["latency_ms_median"] > 0 for q in ("float", "dynamic_range", "full_integer")), lite
        assert lite["tokenizer_latency_ms_median"] > 0, lite
        assert all(lite["long"][q]["latency_ms_median"] > 0 for q in ("float", "dynamic_range", "full_integer")), lite
    for quantization in ("float", "dynamic_range", "full_integer"):  # the pruned file against the dense one
        pruned, dense = found["tflite"]["0.5"], found["tflite"]["0"]
        assert pruned[quantization]["speedup_over_dense"] == pytest.approx(
            dense[quantization]["latency_ms_median"] / pruned[quantization]["latency_ms_median"], abs=0.01)
        assert pruned["long"][quantization]["speedup_over_dense"] > 0


@pytest.mark.slow  # ~3 min; the sliced encoder's saving, loading and export run by default (test_structured_pruning)
def test_serving_speed_times_an_encoder_with_layers_of_unequal_widths(minilm_dir, tmp_path):
    """--encoders: an SST-2 model on an encoder a structured run sliced, each layer its own shape."""
    import dataclasses

    import bert_keras
    from bert_keras import loading, slicing

    pretrained = bert_keras.load_encoder(minilm_dir)
    heads = {0: [0, 5], 1: [2], 2: [], 3: [1, 2, 3], 4: [4, 6], 5: [7]}  # layer 2 skips attention
    neurons = {i: list(range(0, 1536, 4 + i)) for i in range(6)}
    config, _, encoder = slicing.slice_classifier(bert_keras.build_classifier(pretrained.encoder, 2, 0.0),
                                                  pretrained.config, heads, neurons)
    folder = str(tmp_path / "encoder")
    loading.save_converted(dataclasses.replace(pretrained, encoder=encoder, config=config), folder)
    _, found = run_script("serving_speed.py", f"--init_checkpoint={minilm_dir}", f"--glue_dir={GLUE}",
                          "--requests=3", "--warmup_requests=1", "--long_texts=8", f"--encoders={folder}")
    assert found["encoders"] == {"encoder0": folder}
    assert found["sizes"]["encoder0"]["parameters"] == encoder.count_params() + 384 * 2 + 2  # and the SST-2 head
    for row in found["rows"].values():
        assert row["encoder0"]["latency_speedup_over_dense"] > 0 and row["encoder0"]["latency_ms_median"] > 0


def test_serving_models_take_turns_block_by_block():
    """serving_speed.interleaved: every model classifies every input, its outputs in input order, the
    models taking turns a block at a time, the first of each turn rotating."""
    from benchmarks import serving_speed

    calls = []

    def model(name):
        def classify(texts, batch_size):
            calls.append(name)
            return [f"{name}:{t}" for t in texts]
        return classify

    inputs = [[i] for i in range(7)]
    seconds, outputs = serving_speed.interleaved({"a": model("a"), "b": model("b")}, inputs, 1, 3)
    assert calls == list("aaabbb" + "bbbaaa" + "ab")
    assert outputs == {name: [[f"{name}:{i}"] for i in range(7)] for name in "ab"}
    assert [len(s) for s in seconds.values()] == [7, 7] and all(t >= 0 for s in seconds.values() for t in s)


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_peer_step_scales_the_loss_in_float16_only(minilm_dir, precision):
    """The peer's 16-bit steps (benchmarks/peer.py): float16 with dynamic loss scaling, as Keras'
    mixed_float16; bfloat16 without. Either way the step trains: finite loss, weights move."""
    import torch
    from benchmarks import peer

    torch.manual_seed(0)
    model = peer.load_model(minilm_dir, 2, is_regression=False)
    optimizer, scheduler = peer.make_optimizer(model, 1e-3, 0.01, warmup_steps=0, total_steps=10)
    scaler = peer.grad_scaler(precision)
    batch = {"input_ids": torch.randint(1000, 5000, (2, 8)), "token_type_ids": torch.zeros(2, 8, dtype=torch.long),
             "attention_mask": torch.ones(2, 8, dtype=torch.long)}
    before = model.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    loss = peer.training_step(model, optimizer, scheduler, scaler, batch, torch.tensor([0, 1]),
                              is_regression=False, precision=precision)
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    assert not torch.equal(model.bert.encoder.layer[0].attention.self.query.weight, before)
    assert scaler.is_enabled() == (precision == "float16")
    if precision == "float16":
        assert scaler.get_scale() == 2.0 ** 16  # torch's initial scale, kept: no overflow in this step


@pytest.mark.slow  # ~60 s: three conversions and their evaluations
def test_tflite_accuracy_holds_each_file_against_the_savedmodel(pruned_run, tmp_path):
    """benchmarks/tflite_accuracy.py on a finished run: the float file is the SavedModel (same labels, same
    metrics), the 8-bit ones a quarter of its size."""
    _, found = run_script("tflite_accuracy.py", f"--runs={pruned_run}", f"--output_root={tmp_path}", timeout=900)
    (row,) = found["rows"]
    assert row["task"] == "RTE" and set(row) >= {"float", "dynamic_range", "full_integer", "saved_model"}
    assert row["float"]["same_label"] == 1.0 and row["float"]["max_abs_logit_difference"] < 1e-4, row
    assert row["float"]["accuracy"] == row["saved_model"]["accuracy"]
    assert row["dynamic_range"]["bytes"] < 0.3 * row["float"]["bytes"]
    assert 0 <= row["full_integer"]["same_label"] <= 1


def test_teacher_fit_against_a_hand_computation():
    """benchmarks/teacher_fit.py's measures on three examples worked out by hand (classes) and on scores."""
    classes = glue_tasks.get_task("rte")
    teacher = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    student = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    found = teacher_fit.fit(classes, teacher, student, np.array([0, 1, 1]), temperature=2.0)

    def kl(t, s):  # T^2 KL(softmax(t / 2) || softmax(s / 2)) over two classes
        p, q = (np.exp(np.array(x) / 2) / np.exp(np.array(x) / 2).sum() for x in (t, s))
        return 4 * np.sum(p * np.log(p / q))
    assert found["same_label"] == pytest.approx(2 / 3)  # the third: both argmax 0 (ties take the first)
    assert found["teacher_accuracy"] == pytest.approx(2 / 3) and found["student_accuracy"] == pytest.approx(1 / 3)
    assert found["kl"] == pytest.approx((kl([2, 0], [1, 0]) + kl([0, 1], [1, 0]) + 0) / 3)
    assert found["teacher_label_shares"] == pytest.approx([2 / 3, 1 / 3]) and found["student_label_shares"] == [1, 0]
    # ROC AUC of the margins (teacher -2, 1, 0; student -1, -1, 0) against labels 0, 1, 1: of the two
    # (label 1, label 0) pairs the teacher orders both; the student one, and ties the other (a half).
    assert found["teacher_auc"] == 1.0 and found["student_auc"] == pytest.approx(0.75)
    scores = teacher_fit.fit(glue_tasks.get_task("stsb"), np.array([[1.0], [2.0], [4.0]]),
                             np.array([[1.0], [3.0], [4.0]]), None, temperature=2.0)
    assert scores["mean_squared_difference"] == pytest.approx(1 / 3)
    assert scores["pearson"] == pytest.approx(np.corrcoef([1, 2, 4], [1, 3, 4])[0, 1])


@pytest.mark.slow  # ~2 min: two models over RTE's training and dev splits
def test_teacher_fit_reads_each_example_of_a_distilled_run(distilled_run, pruned_run):
    """On a finished distilled run the student's and the teacher's dev accuracies are their runs' own
    (train.py's evaluation), so every example met its own outputs and label."""
    _, found = run_script("teacher_fit.py", f"--runs={distilled_run}", timeout=900)
    (row,) = found["rows"]
    assert row["task"] == "RTE" and row["teacher"] == pruned_run
    assert row["train"]["examples"] == 2490 and row["validation"]["examples"] == 277
    dev = row["validation"]
    assert dev["student_accuracy"] == pytest.approx(run_folder.read_results(distilled_run)["eval_accuracy"])
    assert dev["teacher_accuracy"] == pytest.approx(run_folder.read_results(pruned_run)["eval_accuracy"])
    assert 0 < dev["same_label"] <= 1 and dev["kl"] >= 0
