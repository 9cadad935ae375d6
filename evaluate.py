r"""Evaluates a fine-tuned model on GLUE, writes the GLUE server's files, and summarises runs into tables.

  python evaluate.py --task rte --model out/rte/saved_model --glue_dir ../shared/glue            # dev metrics
  python evaluate.py --task rte --model out/rte --split test --glue_dir ../shared/glue         # RTE.tsv
  python evaluate.py --task mnli --model out/mnli/saved_model --split test                     # MNLI-m/-mm, AX
  python evaluate.py --task rte --model out/rte/tflite/dynamic_range.tflite --glue_dir ../shared/glue
  python evaluate.py --summarize out/                                   # results.md over every run in out/

`--model` is a SavedModel that train.py exported, or a train.py output folder. A folder is read at
its latest checkpoint (`backup/`, finished or not): the model is rebuilt from its RunConfig
(`train_config.json`), restored, and exported to `OUTPUT_DIR/eval_step_<N>/saved_model`. Either way the predictions come
from the SavedModel's raw-text signature, the very thing that is served. `--model` may also be one
of the .tflite files of `train.py --export_tflite` (OUTPUT_DIR/tflite/dynamic_range.tflite, ...):
the texts then go through tokenizer.tflite beside it (training.tflite), and results go to
OUTPUT_DIR/tflite/eval_<quantisation>/.

Validation writes `eval_results.txt` (the seed's format) and `.json` (metrics, loss, the model's
footprint: parameters, zeros per matrix, SavedModel bytes plain and gzip-compressed) and one
`predictions_<split>.tsv` per split; test writes the GLUE server's files (`RTE.tsv`, ...; an MNLI
model also writes `AX.tsv`, the diagnostic set). They go into `--output_dir`, by default the
SavedModel's folder (or `eval_step_<N>/`).
"""

import dataclasses
import gzip
import json
import os
import sys
import time
from typing import Callable, Optional

# TensorFlow's C++ logging (CUDA probing on a machine without GPUs, ...) off unless the user sets it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

import bert_keras  # noqa: E402  (first: it sets TensorFlow's environment, Keras 2 and oneDNN, before TF loads)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401 (the WordPiece ops a SavedModel's preprocessor runs)

import glue_tasks  # noqa: E402
from glue_tasks import user_data  # noqa: E402
from training import data, export, run_folder, summary, tflite  # noqa: E402
from training.config import ConfigError, RunConfig  # noqa: E402

flags.DEFINE_string("task", None, f"GLUE task ({', '.join(glue_tasks.TASK_NAMES)}); ax takes an MNLI model.")
flags.DEFINE_string("model", None, "A SavedModel exported by train.py, a train.py output folder "
                    "(its latest checkpoint), or a .tflite file of train.py --export_tflite.")
flags.DEFINE_enum("split", "validation", ["validation", "test"],
                  "validation: GLUE's metrics (MNLI: matched and mismatched); test: the GLUE server's files.")
flags.DEFINE_string("output_dir", None, "Where results go (default: the SavedModel's folder).")
flags.DEFINE_integer("eval_batch_size", 64, "Examples per batch.")
flags.DEFINE_string("data_dir", None, "tensorflow-datasets data folder (default ~/tensorflow_datasets).")
flags.DEFINE_string("tfds_manual_dir", None, "GLUE's own download files, for an offline tfds build.")
flags.DEFINE_string("glue_dir", None, "Read GLUE's original files from this folder instead of tfds.")
flags.DEFINE_string("validation_file", None, "Your own labelled file (.csv, .tsv or .jsonl, with the model's "
                    "text columns and --label_column): its metrics, for a model trained with --train_file.")
flags.DEFINE_string("predict_file", None, "A file of texts (.csv, .tsv or .jsonl with the model's text columns): "
                    "write each row's prediction, for any model (no --task needed).")
flags.DEFINE_string("label_column", "label", "The label column of --validation_file.")
flags.DEFINE_string("summarize", None, "A folder of train.py runs: write results.md (and results.json, "
                    "sparsity_vs_metric.png) there.")
FLAGS = flags.FLAGS

WRITTEN_BY = "evaluate.py"  # marks the eval_results.json this script may replace


class EvaluationError(Exception):
    """Input evaluate.py cannot work with; its message says what and where."""


# --- Finding the model ---

def resolve_model(path, task):
    """(SavedModel folder or .tflite file, default output folder, training step or None) for --model.

    A training folder's latest checkpoint is exported first. A SavedModel's step is the one train.py
    recorded beside it, when it is the `saved_model/` of a finished run.
    """
    if path.endswith(".tflite") and os.path.isfile(path):
        return path, os.path.join(os.path.dirname(path), f"eval_{os.path.basename(path)[:-len('.tflite')]}"), None
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        run_dir = os.path.dirname(os.path.abspath(path))
        step = None
        if os.path.basename(os.path.abspath(path)) == "saved_model" and run_folder.is_finished(run_dir):
            step = run_folder.read_results(run_dir).get("global_step")
        return path, path, step
    if run_folder.is_run(path):
        if run_folder.latest_checkpoint(path)[1] is None and run_folder.is_finished(path):
            return resolve_model(run_folder.saved_model_dir(path), task)  # its backups are gone: the export
        return export_latest_checkpoint(path, task)
    raise EvaluationError(f"--model {path}: no model there; expected a SavedModel folder (saved_model.pb), a "
                          f"train.py output folder (train_config.json and backup/) or a .tflite file of "
                          f"train.py --export_tflite")


def export_latest_checkpoint(run_dir, task):
    """Rebuilds the run's model from its RunConfig, restores its latest backup, exports it."""
    config = RunConfig.load(run_dir)
    trained_task = data.task_of(config)
    check_task(trained_task.glue_name, task, f"{run_dir}/train_config.json")
    step, _ = run_folder.latest_checkpoint(run_dir)
    output_dir = os.path.join(run_dir, f"eval_step_{step}")
    saved_model_dir = os.path.join(output_dir, "saved_model")
    if step and os.path.isfile(os.path.join(saved_model_dir, "saved_model.pb")):
        return saved_model_dir, output_dir, step  # exported by an earlier evaluation of this same step
    model, step, pretrained = export.restore_latest(run_dir, config, trained_task)
    export.export(saved_model_dir, model, pretrained, trained_task, config.max_seq_length,
                  encoder_dir=os.path.join(output_dir, run_folder.ENCODER), xla=config.export_xla)
    return saved_model_dir, output_dir, step


def check_task(model_task, task, where):
    """An MNLI model serves MNLI and AX; any other model only its own task (None: any task)."""
    if task is None:
        return
    expected = "MNLI" if task.glue_name == "AX" else task.glue_name
    if model_task != expected:
        raise EvaluationError(f"{where}: a model trained for {model_task}, not {expected}; "
                              f"pass --task {glue_tasks.get_task(model_task).tfds_name}")


@dataclasses.dataclass
class LoadedModel:
    """What evaluation needs of a SavedModel or a .tflite file, whichever --model is."""
    task: str  # the GLUE name it was trained for
    text_fields: tuple
    labels: Optional[tuple]  # None for regression
    serve: Callable  # {text field: tf.string [batch]} -> the raw-text signature's outputs, NumPy; labels as bytes
    footprint: Callable  # () -> its footprint for eval_results.json


def load_model(path, task):
    """The SavedModel (or .tflite file) at `path`, checked against `task` (None: any task)."""
    if path.endswith(".tflite"):
        try:
            lite = tflite.TFLiteTextClassifier(path)
        except KeyError as e:
            raise EvaluationError(f"--model {path}: its {tflite.SETTINGS_FILE} has no {e} (written by an older "
                                  "train.py: export it again)") from None
        except json.JSONDecodeError as e:
            raise EvaluationError(f"--model {path}: its {tflite.SETTINGS_FILE} is not JSON ({e})") from None

        def serve_lite(texts):
            outputs = lite(*[texts[field].numpy() for field in lite.text_fields])
            if "label" in outputs:
                outputs["label"] = np.array([label.encode() for label in outputs["label"]], dtype=object)
            return outputs

        def lite_footprint():
            with open(path, "rb") as f:
                content = f.read()
            return {"tflite_bytes": len(content), "tflite_gzip_bytes": len(gzip.compress(content, 6, mtime=0))}

        model = LoadedModel(lite.task, lite.text_fields, lite.labels, serve_lite, lite_footprint)
    else:
        module = tf.saved_model.load(path)
        if not all(hasattr(module, name) for name in ("task", "label_names", "text_fields")):
            raise EvaluationError(f"--model {path}: a SavedModel that train.py did not export (it records "
                                  "no task, label_names and text_fields)")
        serve = module.signatures["serving_default"]
        model = LoadedModel(module.task.numpy().decode(), tuple(f.decode() for f in module.text_fields.numpy()),
                            tuple(label.decode() for label in module.label_names.numpy()) or None,
                            lambda texts: {k: v.numpy() for k, v in serve(**texts).items()},
                            lambda: export.footprint(path, module.classifier_weights))
    check_task(model.task, task, path)
    if task is not None and (model.labels or ()) != (task.labels or ()):
        raise EvaluationError(f"{path}: labels {model.labels or ()}, but {task.glue_name} has {task.labels}")
    return model


# --- Predicting ---

def model_task(model, files):
    """The TaskSpec of a loaded export for the user's files (split -> file): its own text columns and labels."""
    return user_data.user_task(model.task, files, model.text_fields, FLAGS.label_column, model.labels,
                               regression=model.labels is None)


def load_examples(task, split):
    """A split of a GLUE task (the data flags as train.py's), or the user's file."""
    if user_data.is_user_task(task):
        return user_data.load_file(task, task.files[split], labelled=split != "predict")
    return glue_tasks.load(task, split, data_dir=FLAGS.data_dir, manual_dir=FLAGS.tfds_manual_dir,
                           glue_dir=FLAGS.glue_dir)


def predict(model, task, split):
    """Runs the raw-text signature over a whole split: (outputs as NumPy, labels, idx), in file order."""
    examples = load_examples(task, split)
    outputs, labels, idx = [], [], []
    for batch in examples.batch(FLAGS.eval_batch_size).prefetch(tf.data.AUTOTUNE):
        outputs.append(model.serve({field: batch[field] for field in task.text_fields}))
        labels.append(batch["label"].numpy())
        idx.append(batch["idx"].numpy())
    outputs = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
    return outputs, np.concatenate(labels), np.concatenate(idx)


def evaluate_split(model, task, split):
    """GLUE's metrics and the mean loss over a labelled split, with the predictions in GLUE's strings."""
    outputs, labels, idx = predict(model, task, split)
    if np.all(labels == -1):  # tfds's test splits
        raise EvaluationError(f"{task.glue_name} {split}: no labels (GLUE keeps them private); use --split test "
                              "to write the GLUE server's file")
    if task.is_regression:
        predictions = outputs["score"]
        loss = float(np.mean((predictions.astype(np.float64) - labels) ** 2))
        shown = [f"{p:.3f}" for p in predictions]
    else:
        predictions = outputs["label_id"].astype(np.int64)
        logits = outputs["logits"].astype(np.float64)
        log_probabilities = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        loss = float(-np.mean(log_probabilities[np.arange(len(labels)), labels]))
        shown = [label.decode() for label in outputs["label"]]
    metrics = task.compute_metrics(labels, predictions)
    return {**metrics, "loss": loss}, idx, shown


def evaluation_splits(task):
    """The dev split(s) of --split validation, and for --split test the (task, split) pairs to predict."""
    if FLAGS.split == "validation":
        splits = task.dev_splits
        if not splits:
            raise EvaluationError(f"--task {task.tfds_name} --split validation: {task.glue_name} has no labelled "
                                  f"split (GLUE keeps its labels private); use --split test")
        return [(task, s) for s in splits]
    pairs = [(task, s) for s in task.test_splits]
    if task.glue_name == "MNLI":
        ax = glue_tasks.get_task("ax")
        pairs += [(ax, s) for s in ax.test_splits]  # GLUE's diagnostic, predicted with the MNLI model
    return pairs


def check_output_dir(output_dir):
    """Refuses a folder whose eval_results.json another program wrote (train.py's, say)."""
    if os.path.exists(os.path.join(output_dir, run_folder.RESULTS_FILE)):
        if run_folder.read_results(output_dir).get("written_by") != WRITTEN_BY:
            raise EvaluationError(f"--output_dir {output_dir}: holds an eval_results.json that evaluate.py did "
                                  "not write; choose another --output_dir")
    os.makedirs(output_dir, exist_ok=True)


def predict_file(model_path, path):
    """--predict_file: each row's label (or score) and probabilities, in a TSV beside the model."""
    served, default_output, _ = resolve_model(model_path, None)
    model = load_model(served, None)
    task = model_task(model, {"predict": path})
    outputs, _, idx = predict(model, task, "predict")
    output_dir = FLAGS.output_dir or default_output
    os.makedirs(output_dir, exist_ok=True)
    written = os.path.join(output_dir, f"predictions_{os.path.splitext(os.path.basename(path))[0]}.tsv")
    with open(written, "w", encoding="utf-8", newline="\n") as f:
        if task.is_regression:
            f.write("index\tscore\n")
            f.writelines(f"{i}\t{score:.6f}\n" for i, score in zip(idx, outputs["score"]))
        else:
            f.write("\t".join(["index", "label", *(f"probability_{label}" for label in task.labels)]) + "\n")
            f.writelines("\t".join([str(i), label.decode(), *(f"{p:.6f}" for p in probabilities)]) + "\n"
                         for i, label, probabilities in zip(idx, outputs["label"], outputs["probabilities"]))
    print(f"wrote {written}")


def evaluate(task, model_path):
    """Metrics (--split validation) or the GLUE server's files (test); task None: --validation_file."""
    served, default_output, step = resolve_model(model_path, task)
    model = load_model(served, task)
    if task is None:
        task = model_task(model, {"validation": FLAGS.validation_file})
    output_dir = FLAGS.output_dir or default_output
    check_output_dir(output_dir)
    start = time.time()
    written = []
    if FLAGS.split == "test":
        for split_task, split in evaluation_splits(task):
            outputs, _, idx = predict(model, split_task, split)
            predictions = outputs["score"] if split_task.is_regression else outputs["label_id"].astype(np.int64)
            written.append(glue_tasks.write_submission(split_task, predictions, idx, output_dir, split))
        print("\n".join(f"wrote {path}" for path in written))
        return
    results = {"written_by": WRITTEN_BY, "model": os.path.abspath(served), "task": task.glue_name,
               "global_step": step}
    for _, split in evaluation_splits(task):
        metrics, idx, shown = evaluate_split(model, task, split)
        results.update({glue_tasks.metric_prefix(split) + k: v for k, v in metrics.items()})
        path = os.path.join(output_dir, f"predictions_{split}.tsv")
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write("index\tprediction\n")
            f.writelines(f"{i}\t{p}\n" for i, p in zip(idx, shown))
    results["eval_time_s"] = time.time() - start
    results["footprint"] = model.footprint()
    run_folder.write_results(output_dir, results)
    print("\n".join(f"{k} = {v}" for k, v in sorted(results.items()) if k.startswith("eval_") and k != "eval_time_s"))
    print(f"wrote {output_dir}/eval_results.txt, .json")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        if FLAGS.summarize:
            for path in summary.summarize(FLAGS.summarize):
                print(f"wrote {path}")
            return
        if not FLAGS.model:
            raise app.UsageError("--model is required (or --summarize FOLDER)")
        if FLAGS.predict_file:
            predict_file(FLAGS.model, FLAGS.predict_file)
        elif FLAGS.validation_file:
            evaluate(None, FLAGS.model)
        elif not FLAGS.task:
            raise app.UsageError("--task is required (or --validation_file or --predict_file)")
        else:
            evaluate(glue_tasks.get_task(FLAGS.task), FLAGS.model)
    except glue_tasks.DownloadUnavailableError as e:
        sys.exit(f"error: {e}\nOffline, pass --glue_dir FOLDER (GLUE's original files) or --tfds_manual_dir FOLDER.")
    except (EvaluationError, ConfigError, run_folder.RunFolderError, bert_keras.CheckpointError, glue_tasks.MalformedFileError, FileNotFoundError,
            ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    app.run(main)
