"""evaluate.py: metrics from a SavedModel or a training checkpoint, GLUE server files, errors, summaries.

evaluate.py runs as a subprocess, as users run it (its flags and train.py's share names).
"""

import csv
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import GLUE, PRUNED, REPO


def evaluate(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "evaluate.py", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="module")
def saved_model_eval(pruned_run, tmp_path_factory):
    """evaluate.py on the run's SavedModel, its results in a folder of their own."""
    output_dir = str(tmp_path_factory.mktemp("eval") / "saved_model_eval")
    result = evaluate("--task=rte", f"--model={pruned_run}/saved_model", f"--glue_dir={GLUE}",
                      f"--output_dir={output_dir}")
    assert result.returncode == 0, result.stderr
    return output_dir


def test_validation_metrics_of_the_saved_model_equal_train_results(pruned_run, saved_model_eval):
    trained = json.load(open(os.path.join(pruned_run, "eval_results.json")))
    evaluated = json.load(open(os.path.join(saved_model_eval, "eval_results.json")))
    assert evaluated["eval_accuracy"] == trained["eval_accuracy"]
    assert evaluated["eval_loss"] == pytest.approx(trained["eval_loss"], abs=1e-4)
    assert evaluated["global_step"] == 12 and evaluated["task"] == "RTE"
    text = open(os.path.join(saved_model_eval, "eval_results.txt")).read().splitlines()
    assert f"eval_accuracy = {evaluated['eval_accuracy']}" in text and "global_step = 12" in text
    rows = read_tsv(os.path.join(saved_model_eval, "predictions_validation.tsv"))
    assert rows[0] == ["index", "prediction"] and len(rows) == 1 + 277
    gold = [row[3] for row in read_tsv(os.path.join(GLUE, "RTE", "dev.tsv"))[1:]]
    assert np.mean([p == g for (_, p), g in zip(rows[1:], gold)]) == evaluated["eval_accuracy"]


def test_footprint_counts_zeros_and_sizes(pruned_run, saved_model_eval):
    footprint = json.load(open(os.path.join(saved_model_eval, "eval_results.json")))["footprint"]
    matrices = {m["name"] + ":0": m for m in footprint["matrices"]}
    assert all(abs(matrices[name]["sparsity"] - 0.5) < 0.005 for name in PRUNED)
    assert matrices["pooler/kernel:0"]["sparsity"] < 0.01
    # MiniLM-L6: 22.7M encoder parameters and the RTE head (384 x 2 + 2).
    assert footprint["parameters"] == 22_713_216 + 770
    assert footprint["nonzero"] == footprint["parameters"] - footprint["zeros"]
    on_disk = sum(os.path.getsize(os.path.join(root, name))
                  for root, _, names in os.walk(os.path.join(pruned_run, "saved_model")) for name in names)
    assert footprint["saved_model_bytes"] == on_disk  # nothing but TensorFlow's files there
    assert footprint["saved_model_gzip_bytes"] < 0.9 * footprint["saved_model_bytes"]
    # train.py measured the same export when it wrote it.
    trained = json.load(open(os.path.join(pruned_run, "eval_results.json")))["footprint"]
    assert {k: v for k, v in trained.items() if k != "matrices"} == {k: v for k, v in footprint.items()
                                                                      if k != "matrices"}


def test_a_fresh_process_serving_raw_text_gets_the_same_predictions(pruned_run, saved_model_eval):
    """Only TensorFlow and tensorflow_text's ops imported: the SavedModel serves raw text on its own."""
    script = f"""
import json, sys
import tensorflow as tf, tensorflow_text  # noqa: F401 (registers the WordPiece ops)
rows = [l.rstrip("\\n").split("\\t") for l in open({os.path.join(GLUE, "RTE", "dev.tsv")!r}, encoding="utf-8")][1:]
model = tf.saved_model.load({os.path.join(pruned_run, "saved_model")!r})
out = model.signatures["serving_default"](sentence1=tf.constant([r[1] for r in rows]),
                                          sentence2=tf.constant([r[2] for r in rows]))
print(json.dumps({{"labels": [l.decode() for l in out["label"].numpy()], "task": model.task.numpy().decode(),
                  "dtype": out["probabilities"].dtype.name,
                  "project": [m for m in sys.modules if m.split(".")[0] in ("bert_keras", "glue_tasks", "train",
                                                                            "evaluate")]}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), cwd="/")
    assert result.returncode == 0, result.stderr
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["project"] == [] and served["task"] == "RTE" and served["dtype"] == "float32"
    # The labels evaluate.py wrote, and so train.py's eval_accuracy (test_validation_metrics_... above).
    evaluated = [row[1] for row in read_tsv(os.path.join(saved_model_eval, "predictions_validation.tsv"))[1:]]
    assert served["labels"] == evaluated


@pytest.mark.slow  # ~45 s; the default run's budget is 15 minutes: evaluating a SavedModel runs by default
def test_a_training_folder_is_evaluated_at_its_latest_checkpoint(pruned_run, tmp_path):
    run = str(tmp_path / "run")
    shutil.copytree(pruned_run, run)
    result = evaluate("--task=rte", f"--model={run}", f"--glue_dir={GLUE}")
    assert result.returncode == 0, result.stderr
    evaluated = json.load(open(os.path.join(run, "eval_step_12", "eval_results.json")))
    trained = json.load(open(os.path.join(run, "eval_results.json")))
    assert evaluated["global_step"] == 12
    assert evaluated["eval_accuracy"] == trained["eval_accuracy"]  # the backup holds the final weights
    matrices = {m["name"] + ":0": m["sparsity"] for m in evaluated["footprint"]["matrices"]}
    assert all(abs(matrices[name] - 0.5) < 0.005 for name in PRUNED)


@pytest.mark.slow  # ~95 s (3,000 examples); the default run's budget is 15 minutes: AX's test split below
# takes the same evaluate.py path (--split=test, the server's file) in a third of the time
def test_test_split_writes_the_glue_server_file(pruned_run, tmp_path):
    result = evaluate("--task=rte", f"--model={pruned_run}/saved_model", f"--glue_dir={GLUE}", "--split=test",
                      f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    rows = read_tsv(tmp_path / "RTE.tsv")
    assert rows[0] == ["index", "prediction"] and [int(r[0]) for r in rows[1:]] == list(range(3000))
    assert {r[1] for r in rows[1:]} <= {"entailment", "not_entailment"}


@pytest.fixture(scope="module")
def mnli_model(minilm_dir, tmp_path_factory):
    """An MNLI-shaped export (MiniLM and an untrained 3-way head): what AX is predicted with."""
    import bert_keras
    import glue_tasks
    from bert_keras.serving import export_text_classifier

    task = glue_tasks.get_task("mnli")
    pretrained = bert_keras.load_encoder(minilm_dir)
    path = str(tmp_path_factory.mktemp("mnli") / "saved_model")
    export_text_classifier(path, bert_keras.build_classifier(pretrained.encoder, 3, 0.0),
                           bert_keras.BertPreprocessor(pretrained.vocab_file, pretrained.lower_case, 64),
                           task="MNLI", text_fields=task.text_fields, label_names=task.labels)
    return path


def test_ax_is_predicted_with_an_mnli_model(mnli_model, tmp_path):
    result = evaluate("--task=ax", f"--model={mnli_model}", f"--glue_dir={GLUE}", "--split=test",
                      f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    rows = read_tsv(tmp_path / "AX.tsv")
    assert len(rows) == 1 + 1104 and {r[1] for r in rows[1:]} <= {"entailment", "neutral", "contradiction"}


def test_errors_name_the_problem_and_exit_non_zero(pruned_run, mnli_model, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--task=rte", f"--model={empty}"], r"no model there; expected a SavedModel folder"),
        (["--task=mrpc", f"--model={pruned_run}/saved_model"], r"a model trained for RTE, not MRPC; pass --task rte"),
        (["--task=rte", f"--model={mnli_model}"], r"a model trained for MNLI, not RTE"),
        (["--task=ax", f"--model={mnli_model}"], r"AX has no labelled split .*use --split test"),
        (["--task=rte", f"--model={pruned_run}/saved_model", f"--output_dir={pruned_run}"],
         r"holds an eval_results.json that evaluate.py did not write"),
    ]
    before = open(os.path.join(pruned_run, "eval_results.json")).read()
    # The first case as users meet it (exit status 1, the message last on stderr); then the others'
    # sys.exit messages from evaluate.main in one process, which saves a TensorFlow start-up a case.
    result = evaluate(*cases[0][0], f"--glue_dir={GLUE}")
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and re.search(cases[0][1], last), result.stderr[-3000:]
    script = """
import json, sys
import evaluate
exits = []
for args in json.loads(sys.argv[1]):
    evaluate.FLAGS.unparse_flags()
    evaluate.FLAGS(["evaluate.py", *args])
    try:
        evaluate.main(["evaluate.py"])
        exits.append(None)
    except SystemExit as e:
        exits.append(e.code)
print(json.dumps(exits))
"""
    runs = json.dumps([[*args, f"--glue_dir={GLUE}"] for args, _ in cases[1:]])
    result = subprocess.run([sys.executable, "-c", script, runs], cwd=REPO, capture_output=True, text=True,
                            timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-5000:]
    exits = json.loads(result.stdout.strip().splitlines()[-1])
    for (args, message), code in zip(cases[1:], exits, strict=True):
        assert isinstance(code, str), (args, code)  # sys.exit with a message: exit status 1
        last = code.strip().splitlines()[-1]
        assert last.startswith("error: ") and re.search(message, last), (args, last)
    assert open(os.path.join(pruned_run, "eval_results.json")).read() == before


def make_runs(pruned_run, root, specs):
    """Copies of a real run's results, as train.py writes them, with the given task, rate, sparsity, metric."""
    from training.config import RunConfig

    real = json.load(open(os.path.join(pruned_run, "eval_results.json")))
    real_config = RunConfig.load(pruned_run)
    for folder, task, learning_rate, sparsity, metrics, gzip_bytes in specs:
        path = os.path.join(root, folder)
        os.makedirs(path)
        dataclasses.replace(real_config, task=task, learning_rate=learning_rate, target_sparsity=sparsity,
                            output_dir=path).save(path)
        results = {k: v for k, v in real.items() if not k.startswith("eval_") or k == "eval_time_s"}
        results.update({f"eval_{k}": v for k, v in metrics.items()},
                       footprint=dict(real["footprint"], saved_model_gzip_bytes=gzip_bytes,
                                      nonzero=int(real["footprint"]["parameters"] * (1 - sparsity))))
        with open(os.path.join(path, "eval_results.json"), "w") as f:
            json.dump(results, f)


def test_summary_tables_best_runs_and_pruning_gains(pruned_run, tmp_path):
    from training import summary as run_summary

    make_runs(pruned_run, tmp_path, [
        ("rte/lr_2e-05", "rte", 2e-5, 0.0, {"accuracy": 0.60, "loss": 0.7}, 80e6),
        ("rte/lr_3e-05", "rte", 3e-5, 0.0, {"accuracy": 0.65, "loss": 0.6}, 80e6),
        ("rte_s50/lr_3e-05", "rte", 3e-5, 0.5, {"accuracy": 0.62, "loss": 0.6}, 50e6),
        ("rte_s80/lr_3e-05", "rte", 3e-5, 0.8, {"accuracy": 0.55, "loss": 0.7}, 30e6),
        ("mrpc/lr_2e-05", "mrpc", 2e-5, 0.0, {"f1": 0.85, "accuracy": 0.78, "loss": 0.5}, 80e6),
    ])
    os.makedirs(tmp_path / "unfinished")
    shutil.copy(tmp_path / "rte/lr_2e-05/train_config.json", tmp_path / "unfinished")
    result = evaluate(f"--summarize={tmp_path}")
    assert result.returncode == 0, result.stderr
    markdown = open(tmp_path / "results.md").read()
    # Best per task and sparsity: RTE dense at 3e-5 (65.0 beside the paper's 66.4), MRPC by F1.
    assert "| RTE | acc | 66.4 | 65.0 | 0% | 3e-05 |" in markdown
    assert "| RTE | acc | 66.4 | 55.0 | 80% | 3e-05 |" in markdown
    assert "| MRPC | F1 | 88.9 | 85.0 | 0% | 2e-05 |" in markdown
    assert markdown.count("| RTE | ") == 3 + 4 + 4  # best (3 sparsities), every run, pruning gains
    assert "Unfinished runs (no eval_results.json): `unfinished`." in markdown
    summary = json.load(open(tmp_path / "results.json"))
    pruned = next(r for r in summary["runs"] if r["folder"] == "rte_s50/lr_3e-05")["pruning"]
    assert pruned["dense_folder"] == "rte/lr_3e-05" and pruned["gzip_vs_dense"] == pytest.approx(50 / 80)
    assert pruned["metric_change"] == pytest.approx(-0.03)
    assert "-3.0" in markdown and "(0.62x)" in markdown
    assert open(tmp_path / "sparsity_vs_metric.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    # One sparsity: no sparsity column, no plot.
    only_dense = tmp_path / "dense"
    make_runs(pruned_run, only_dense, [("a", "rte", 2e-5, 0.0, {"accuracy": 0.6, "loss": 0.7}, 80e6)])
    written = run_summary.summarize(str(only_dense))
    assert not any(p.endswith(".png") for p in written)
    assert "| RTE | acc | 66.4 | 60.0 | 2e-05 |" in open(only_dense / "results.md").read()


def test_summary_of_a_folder_without_finished_runs_fails(tmp_path):
    result = evaluate(f"--summarize={tmp_path}")
    assert result.returncode == 1 and "no finished train.py run" in result.stderr


def test_mnli_is_evaluated_on_matched_and_mismatched(mnli_model, tmp_path):
    """Both dev splits, as eval_* and eval_mm_*: real sentence pairs (AX's) in MNLI's layout, labels assigned."""
    pairs = read_tsv(os.path.join(GLUE, "diagnostic", "diagnostic.tsv"))[1:81]
    labels = ("entailment", "neutral", "contradiction")
    os.makedirs(tmp_path / "glue" / "MNLI")
    for name, rows in (("dev_matched.tsv", pairs[:40]), ("dev_mismatched.tsv", pairs[40:])):
        with open(tmp_path / "glue" / "MNLI" / name, "w", encoding="utf-8") as f:
            f.write("index\tsentence1\tsentence2\tgold_label\n")
            f.writelines(f"{i}\t{a}\t{b}\t{labels[i * 7 % 3]}\n" for i, (_, a, b) in enumerate(rows))
    result = evaluate("--task=mnli", f"--model={mnli_model}", f"--glue_dir={tmp_path / 'glue'}",
                      f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr
    evaluated = json.load(open(tmp_path / "out" / "eval_results.json"))
    for split, prefix in (("validation_matched", "eval_"), ("validation_mismatched", "eval_mm_")):
        predicted = [row[1] for row in read_tsv(tmp_path / "out" / f"predictions_{split}.tsv")[1:]]
        gold = [labels[i * 7 % 3] for i in range(40)]
        assert evaluated[prefix + "accuracy"] == np.mean([p == g for p, g in zip(predicted, gold)])
        assert np.isfinite(evaluated[prefix + "loss"])
