"""Your own data: CSV, TSV and JSON Lines files trained, evaluated, exported and predicted, as GLUE is."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import GLUE, REPO, train_in_process
from glue_tasks import MalformedFileError, user_data


def glue_rows(path, columns, count):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [{k: row[k] for k in columns} for row in rows[:count]]


def write(path, rows):
    """rows (dicts) as CSV, TSV or JSON Lines by the file's extension."""
    if path.endswith(".jsonl"):
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
        return
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t" if path.endswith(".tsv") else ",")
        writer.writeheader()
        writer.writerows(rows)


def test_the_three_formats_read_alike(tmp_path):
    rows = [{"text": 'He said "hi", then, left.', "sentiment": "positive"},
            {"text": "Tabs\tand, commas", "sentiment": "negative"}, {"text": "ünïcode", "sentiment": "positive"}]
    task = user_data.user_task("mine", {}, ("text",), "sentiment", ("negative", "positive"))
    assert task.metrics == ("accuracy", "f1") and task.num_outputs == 2 and user_data.is_user_task(task)
    for name in ("a.csv", "a.tsv", "a.jsonl"):
        write(str(tmp_path / name), rows)
        examples = list(user_data.load_file(task, str(tmp_path / name)).as_numpy_iterator())
        assert [e["text"].decode() for e in examples] == [r["text"] for r in rows], name
        assert [int(e["label"]) for e in examples] == [1, 0, 1] and [int(e["idx"]) for e in examples] == [0, 1, 2]
        assert user_data.labels_in(str(tmp_path / name), "sentiment") == ("negative", "positive")
    three = user_data.user_task("mine", {}, ("a", "b"), labels=("x", "y", "z"))
    assert three.metrics == ("accuracy", "matthews_corrcoef")
    assert user_data.user_task("s", {}, ("a",), regression=True).metrics == ("pearson", "spearman")


@pytest.mark.parametrize("rows, kwargs, message", [
    ([{"sentence": "a", "sentiment": "positive"}], {}, r"a.csv:2: no column 'text'; it has 'sentence', 'sentiment'"),
    ([{"text": "a", "sentiment": "great"}], {}, r"a.csv:2: label 'great' is not one of negative, positive"),
    ([{"text": "a", "sentiment": "high"}], {"regression": True}, r"a.csv:2: score 'high' is not a number"),
])
def test_bad_rows_are_named_by_file_and_line(tmp_path, rows, kwargs, message):
    write(str(tmp_path / "a.csv"), rows)
    labels = None if kwargs else ("negative", "positive")
    task = user_data.user_task("mine", {}, ("text",), "sentiment", labels, **kwargs)
    with pytest.raises(MalformedFileError, match=message):
        user_data.load_file(task, str(tmp_path / "a.csv"))
    with pytest.raises(MalformedFileError, match=r"a.xlsx: expected a .csv, .tsv or .jsonl file"):
        user_data.read_rows(str(tmp_path / "a.xlsx"))
    with pytest.raises(ValueError, match=r"text column 'my text'"):
        user_data.user_task("mine", {}, ("my text",), labels=("a", "b"))


@pytest.mark.slow  # ~140 s; the default run's budget is 15 minutes: the readers' tests above run by default,
# and train.py, evaluate.py and the export on GLUE's files
def test_a_csv_task_trained_evaluated_exported_and_predicted(minilm_dir, tmp_path):
    """Real SST-2 sentences with labels renamed, as a user's CSV; real STS-B pairs as JSON Lines scores."""
    import bert_keras

    names = {"0": "negative", "1": "positive"}
    for split, file, count in (("train", "train.tsv", 96), ("dev", "dev.tsv", 64)):
        write(str(tmp_path / f"reviews_{split}.csv"), [{"text": r["sentence"], "sentiment": names[r["label"]]}
                                                       for r in glue_rows(os.path.join(GLUE, "SST-2", file),
                                                                          ("sentence", "label"), count)])
    run = str(tmp_path / "run")
    common = [f"--init_checkpoint={minilm_dir}", "--train_batch_size=16", "--max_seq_length=32",
              "--mixed_precision=float32", "--log_steps=4"]
    train_in_process([f"--train_file={tmp_path}/reviews_train.csv", f"--validation_file={tmp_path}/reviews_dev.csv",
                      "--text_columns=text", "--label_column=sentiment", f"--output_dir={run}", "--max_steps=4",
                      "--target_sparsity=0.5", "--pruning_begin_step=0", "--pruning_end_step=4",
                      "--pruning_frequency=2", *common])
    trained = json.load(open(os.path.join(run, "eval_results.json")))
    assert trained["task"] == "reviews_train" and {"eval_accuracy", "eval_f1", "eval_loss"} <= set(trained)
    assert abs(trained["sparsity"]["pruned"]["sparsity"] - 0.5) < 0.005

    def evaluate(*args):
        result = subprocess.run([sys.executable, "evaluate.py", f"--model={run}/saved_model", *args], cwd=REPO,
                                capture_output=True, text=True, timeout=600,
                                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        assert result.returncode == 0, result.stderr[-3000:]

    evaluate(f"--validation_file={tmp_path}/reviews_dev.csv", "--label_column=sentiment",
             f"--output_dir={tmp_path}/evaluated")
    evaluated = json.load(open(tmp_path / "evaluated" / "eval_results.json"))
    assert evaluated["eval_accuracy"] == trained["eval_accuracy"] and evaluated["eval_f1"] == trained["eval_f1"]

    texts = ["a wonderful , moving film", "dull and far too long", "it is a movie"]
    write(str(tmp_path / "new.jsonl"), [{"text": t} for t in texts])
    evaluate(f"--predict_file={tmp_path}/new.jsonl", f"--output_dir={tmp_path}/predicted")
    with open(tmp_path / "predicted" / "predictions_new.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert list(rows[0]) == ["index", "label", "probability_negative", "probability_positive"]
    classifier = bert_keras.TextClassifier(os.path.join(run, "saved_model"))
    assert classifier.text_fields == ("text",) and classifier.labels == ("negative", "positive")
    direct = classifier(texts)
    assert [r["label"] for r in rows] == direct["label"]
    np.testing.assert_allclose([[float(r["probability_negative"]), float(r["probability_positive"])] for r in rows],
                               direct["probabilities"], atol=1e-6)

    pairs = glue_rows(os.path.join(GLUE, "STS-B", "train.tsv"), ("sentence1", "sentence2", "score"), 48)
    write(str(tmp_path / "similar.jsonl"), pairs)
    train_in_process([f"--train_file={tmp_path}/similar.jsonl", f"--validation_file={tmp_path}/similar.jsonl",
                      "--text_columns=sentence1,sentence2", "--label_column=score", "--regression",
                      f"--output_dir={tmp_path}/scores", "--max_steps=2", *common])
    scored = json.load(open(tmp_path / "scores" / "eval_results.json"))
    assert {"eval_pearson", "eval_spearman", "eval_loss"} <= set(scored)
    regressor = bert_keras.TextClassifier(str(tmp_path / "scores" / "saved_model"))
    assert regressor.labels is None and regressor(["A man plays."], ["A man plays music."])["score"].shape == (1,)
