"""train.py end to end: short runs with the real MiniLM weights on the real GLUE files of ../shared."""

import json
import re
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import GLUE, PRUNED, REPO, short_run_flags, train_in_process


def train_subprocess(args, env=None, **kwargs):
    env = env or dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "train.py", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def variables_of(saved_model_dir):
    loaded = tf.saved_model.load(saved_model_dir)
    return {v.name: v.numpy() for v in loaded.classifier_weights}


def test_pruned_run_exports_50_percent_sparse_kernels(pruned_run):
    variables = variables_of(os.path.join(pruned_run, "saved_model"))
    for name in PRUNED:
        assert abs(np.mean(variables[name] == 0) - 0.5) < 0.005, name
    assert np.mean(variables["pooler/kernel:0"] == 0) < 0.01  # not pruned by default
    assert np.mean(variables["classifier/kernel:0"] == 0) < 0.01  # the head never is
    report = json.load(open(os.path.join(pruned_run, "sparsity.json")))
    assert abs(report["totals"]["pruned"]["sparsity"] - 0.5) < 0.005


def test_eval_results_in_the_seeds_format(pruned_run):
    results = json.load(open(os.path.join(pruned_run, "eval_results.json")))
    assert results["global_step"] == 12 and results["task"] == "RTE"
    assert 0 <= results["eval_accuracy"] <= 1 and np.isfinite(results["eval_loss"])
    # pruned_run trains in the test process: its "start" is train.py's import, earlier than this run's steps.
    assert 0 < results["time_to_first_step_s"] < results["wall_time_s"]
    assert results["train_time_s"] + results["eval_time_s"] < results["wall_time_s"]
    text = open(os.path.join(pruned_run, "eval_results.txt")).read().splitlines()
    assert f"eval_accuracy = {results['eval_accuracy']}" in text
    assert "global_step = 12" in text
    assert any(line.startswith("train_time: ") and line.endswith(" min") for line in text)
    assert any(line.startswith("eval_time: ") for line in text)


def test_tensorboard_holds_loss_learning_rate_metrics_and_sparsity(pruned_run):
    scalars = {}  # (folder, tag) -> [(step, value)]
    for root, _, files in os.walk(os.path.join(pruned_run, "tensorboard")):
        for name in files:
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                for value in event.summary.value:
                    if value.metadata.plugin_data.plugin_name != "scalars":
                        continue  # e.g. the model's config, as text
                    number = tf.make_ndarray(value.tensor)
                    scalars.setdefault((os.path.basename(root), value.tag), []).append((event.step, float(number)))
    tags = {folder: {tag for f, tag in scalars if f == folder} for folder, _ in scalars}
    assert {"batch_loss", "batch_learning_rate", "epoch_loss"} <= tags["train"]
    assert {"epoch_accuracy", "epoch_loss"} <= tags["validation"]
    sparsity = {tag: max(points)[1] for (folder, tag), points in scalars.items() if tag.endswith("/sparsity")}
    assert len(sparsity) == len(PRUNED), sorted(tags["metrics"])
    assert all(abs(value - 0.5) < 0.005 for value in sparsity.values()), sparsity  # the final step's


def test_same_folder_other_configuration_is_refused(pruned_run, minilm_dir):
    with pytest.raises(SystemExit, match=r"holds a finished run"):
        train_in_process(short_run_flags(minilm_dir, pruned_run, "--max_steps=24"))


def test_bad_inputs_fail_before_training(minilm_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit, match=r"--output_dir .*file/run: cannot write there"):
        train_in_process(short_run_flags(minilm_dir, str(blocker / "run"), "--max_steps=2"))
    with pytest.raises(SystemExit, match=r"no_such_checkpoint' is neither a folder"):
        train_in_process(short_run_flags("no_such_checkpoint", str(tmp_path / "a"), "--max_steps=2"))
    with pytest.raises(SystemExit, match=r"RTE/train.tsv: no such file"):
        train_in_process(short_run_flags(minilm_dir, str(tmp_path / "b"), "--max_steps=2", f"--glue_dir={tmp_path}"))
    assert not os.path.exists(tmp_path / "b" / "backup")


# ~100 s each, so --runslow. The default run trains under mixed_float16 in the non-finite test below,
# and test_serving checks float32_copy (the export's dtype) under both mixed policies.
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_trains_and_exports_float32(minilm_dir, tmp_path, precision):
    output_dir = str(tmp_path / precision)
    train_in_process(short_run_flags(minilm_dir, output_dir, "--max_steps=6", precision=precision))
    results = json.load(open(os.path.join(output_dir, "eval_results.json")))
    assert results["policy"] == f"mixed_{precision}" and np.isfinite(results["eval_loss"])
    assert all(v.dtype == np.float32 for name, v in variables_of(os.path.join(output_dir, "saved_model")).items()
               if "kernel" in name)


def test_non_finite_loss_stops_with_a_message_and_keeps_the_last_good_state(minilm_dir, tmp_path, monkeypatch):
    """Under mixed_float16, where Keras' loss scaling skips steps with non-finite gradients: a NaN
    learning rate makes the weights NaN with finite gradients, and the run must still stop."""
    from training import optimization

    real = optimization.WarmupLinearDecay.__call__
    monkeypatch.setattr(optimization.WarmupLinearDecay, "__call__",
                        lambda self, step: tf.where(step >= 4, np.nan, real(self, step)))
    output_dir = str(tmp_path / "nan")
    with pytest.raises(SystemExit, match=r"training loss became nan.*last good state is in .*/backup"):
        train_in_process(short_run_flags(minilm_dir, output_dir, "--max_steps=12", "--save_checkpoints_steps=2",
                                         precision="float16"))
    reader = tf.train.load_checkpoint(os.path.join(output_dir, "backup", "chief"))
    kernels = [n for n in reader.get_variable_to_shape_map() if "kernel" in n and "OPTIMIZER" not in n]
    assert kernels and all(np.isfinite(reader.get_tensor(n)).all() for n in kernels)
    assert not os.path.exists(os.path.join(output_dir, "saved_model"))


def test_default_sources_fail_fast_offline_naming_the_offline_flags(tmp_path):
    """No network here: the default BERT-Base download fails in seconds, and says what to do."""
    start = time.time()
    process = train_subprocess(["--task=sst2", f"--output_dir={tmp_path / 'run'}"])
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 1
    assert time.time() - start < 60
    last = output.strip().splitlines()
    assert any("cannot reach the host" in line for line in last), output
    assert "--init_checkpoint FOLDER" in output and "--glue_dir FOLDER" in output


def test_token_id_signature_agrees_with_the_text_signature(pruned_run, minilm_dir):
    import bert_keras

    texts = [tf.constant(["A cat sat on the mat.", "It rains."]), tf.constant(["A cat sat.", "The sun shines."])]
    model = tf.saved_model.load(os.path.join(pruned_run, "saved_model"))
    by_text = model.signatures["serving_default"](sentence1=texts[0], sentence2=texts[1])
    ids = bert_keras.BertPreprocessor(os.path.join(minilm_dir, "vocab.txt"), True, 64)(texts)
    by_ids = model.signatures["serve_token_ids"](**ids)
    np.testing.assert_allclose(by_ids["probabilities"], by_text["probabilities"], atol=1e-6)
    assert by_text["label"].numpy().tolist() == [[b"entailment", b"not_entailment"][i] for i in by_ids["label_id"]]


@pytest.mark.parametrize("setting, enabled", [(None, True), ("0", False)])
def test_train_py_turns_oneDNN_on_unless_the_user_chose(setting, enabled):
    """train.py sets TF_ENABLE_ONEDNN_OPTS before TensorFlow's import (later is too late), and only where unset."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    script = ("import train\nfrom tensorflow.python.util import _pywrap_util_port\n"
              "print(_pywrap_util_port.IsMklEnabled())")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env=dict(env, TF_CPP_MIN_LOG_LEVEL="3"), cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(enabled)


def tensorboard_points(log_dir):
    """(folder, tag) -> [(step, value)] of every scalar, and the set of (tag, plugin) of everything."""
    points, tags = {}, set()
    for root, _, files in os.walk(log_dir):
        for name in files:
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                for value in event.summary.value:
                    tags.add((value.tag, value.metadata.plugin_data.plugin_name))
                    if value.metadata.plugin_data.plugin_name == "scalars":
                        points.setdefault((os.path.relpath(root, log_dir), value.tag), []).append(
                            (event.step, float(tf.make_ndarray(value.tensor))))
    return points, tags


@pytest.mark.slow  # ~125 s (its bfloat16 is emulated on CPUs without avx512_bf16); the default run's budget is
# 15 minutes: a run's results, TensorBoard and sparsity are tested on pruned_run above (its console only here)
def test_a_new_users_run_from_a_failed_start_to_the_summary(minilm_dir, tmp_path):
    """The path of issue 23 in one run: a failed start leaves nothing that refuses the corrected one;
    a bfloat16 run of 8 steps of a 318-step epoch, default --log_steps (50: the epoch ends off the
    logging grid), shows a progress bar to 8, ends with a summary, keeps no backup/, logs every pruned
    layer's final sparsity, validation at the global step and its hyper-parameters to TensorBoard,
    and reports the metrics of its float32 export, which evaluate.py finds again."""
    output_dir = str(tmp_path / "run")
    failed = train_subprocess(["--task=rte", f"--glue_dir={tmp_path}", f"--init_checkpoint={minilm_dir}",
                               f"--output_dir={output_dir}", "--max_steps=8"])
    assert failed.communicate(timeout=300)[0] and failed.returncode == 1
    assert not os.path.exists(output_dir)

    args = [f for f in short_run_flags(minilm_dir, output_dir, "--target_sparsity=0.5", "--max_steps=8",
                                       "--pruning_begin_step=0", "--pruning_end_step=8", "--pruning_frequency=4",
                                       "--max_seq_length=32", precision="bfloat16") if not f.startswith("--log_steps")]
    process = train_subprocess(args, env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    output = process.communicate(timeout=900)[0]
    assert process.returncode == 0, output[-5000:]
    screen = output.replace("\r", "\n")
    assert "8/8 [" in screen and "/318 [" not in screen
    assert re.search(r"^RTE dev \(8 steps, .* min training\): accuracy \d\.\d{4}, loss \d\.\d{4}$", screen, re.M)
    assert f"tensorboard --logdir {output_dir}" in screen and "saved_model (" in screen
    assert re.search(r"^sparsity: 50\.0% of the pruned kernels", screen, re.M)
    assert not [line for line in screen.splitlines() if re.match(r"[IWE]\d{4} ", line)]  # no C++ or absl logs
    assert sorted(os.listdir(output_dir)) == ["eval_results.json", "eval_results.txt", "saved_model",
                                              "sparsity.json", "sparsity.txt", "tensorboard", "train_config.json"]

    points, tags = tensorboard_points(os.path.join(output_dir, "tensorboard"))
    sparsity = {tag: points[key] for key in points for tag in [key[1]] if tag.endswith("/sparsity")}
    assert len(sparsity) == len(PRUNED)
    assert all(max(p)[0] == 8 and abs(max(p)[1] - 0.5) < 0.005 for p in sparsity.values()), sparsity
    assert [step for step, _ in points[("validation", "epoch_accuracy")]] == [8]
    assert ("_hparams_/session_start_info", "hparams") in tags and ("run_config", "text") in tags

    trained = json.load(open(os.path.join(output_dir, "eval_results.json")))
    assert trained["policy"] == "mixed_bfloat16"
    evaluated_dir = str(tmp_path / "evaluated")
    result = subprocess.run([sys.executable, "evaluate.py", "--task=rte", f"--model={output_dir}",
                             f"--glue_dir={GLUE}", f"--output_dir={evaluated_dir}"], cwd=REPO, capture_output=True,
                            text=True, timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = json.load(open(os.path.join(evaluated_dir, "eval_results.json")))
    assert evaluated["eval_accuracy"] == trained["eval_accuracy"]
    assert evaluated["eval_loss"] == pytest.approx(trained["eval_loss"], rel=1e-5)
