r"""Dev metrics of finished train.py runs converted to TensorFlow Lite, against their SavedModels.

  python benchmarks/tflite_accuracy.py --runs OUT/mrpc/dense,OUT/mrpc/structured_0.5 [--output_root /tmp/tflite]

Each run's SavedModel converted as `train.py --export_tflite` converts it (training/tflite.py: float,
dynamic range, full integer calibrated on the run's own training examples), each file evaluated on
the run's first dev split through training.evaluation.evaluate (the same batches and metrics as
train.py's), and compared with the SavedModel's `serve_token_ids` logits on the same batches: the
share of examples given the same label, and the largest logit difference. Prints one JSON line.
"""

import gzip
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root
from benchmarks import common  # noqa: E402  (first: TensorFlow's environment)

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401  (the SavedModel's WordPiece ops)

import bert_keras  # noqa: E402
from training import data, run_folder, tflite  # noqa: E402
from training.config import RunConfig  # noqa: E402
from training.evaluation import evaluate  # noqa: E402

FLAGS = flags.FLAGS


def run_row(run):
    config = RunConfig.load(run)
    task = data.task_of(config)
    pretrained = bert_keras.load_encoder(config.init_checkpoint)
    run_data = data.load_run_data(config, task, pretrained)
    split = task.dev_splits[0]
    batches, labels = run_data.dev_batches[split], run_data.dev_labels[split]
    saved_model_dir = run_folder.saved_model_dir(run)
    serve = tf.saved_model.load(saved_model_dir).signatures["serve_token_ids"]
    expected = np.concatenate([serve(**features)["logits"].numpy() for features, _ in batches])
    representative = tflite.representative_examples(run_data.train,
                                                    min(tflite.CALIBRATION_LENGTH, config.max_seq_length))
    paths = tflite.export(os.path.join(FLAGS.output_root, os.path.basename(os.path.normpath(run))), saved_model_dir,
                          tflite.QUANTIZATIONS, vocab_file=pretrained.vocab_file, lower_case=pretrained.lower_case,
                          max_seq_length=config.max_seq_length, task=task.glue_name,
                          text_fields=task.text_fields, label_names=task.labels, representative=representative)
    row = {"run": run, "task": task.glue_name,
           "saved_model": {k[len("eval_"):]: v for k, v in run_folder.read_results(run).items()
                           if k.startswith("eval_") and k not in ("eval_loss", "eval_time_s")}}
    for quantization, path in paths.items():
        model = tflite.TFLiteClassifier(path)
        logits = model.predict(batches)
        with open(path, "rb") as f:
            content = f.read()
        same = logits.argmax(-1) == expected.argmax(-1) if not task.is_regression else np.ones(len(logits), bool)
        row[quantization] = {**{k: v for k, v in evaluate(model, task, batches, labels).items() if k != "loss"},
                             "same_label": float(np.mean(same)),
                             "max_abs_logit_difference": float(np.abs(logits - expected).max()),
                             "bytes": len(content), "gzip_bytes": len(gzip.compress(content, 6, mtime=0))}
    return row


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    common.print_json({"rows": [run_row(run) for run in FLAGS.runs]})


if __name__ == "__main__":
    flags.DEFINE_list("runs", None, "Finished train.py run folders.", required=True)
    flags.DEFINE_string("output_root", "/tmp/tflite", "Where the .tflite files are written, a folder a run.")
    app.run(main)
