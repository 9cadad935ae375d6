"""TensorFlow Lite exports of a trained task model: token ids in, logits out, float or 8-bit.

The SavedModel's raw-text signature tokenises with tensorflow-text's WordPiece ops on ragged
tensors, which TensorFlow Lite's builtin op set does not have. So a .tflite file here takes what the
SavedModel's `serve_token_ids` signature takes (`input_word_ids`, `input_mask`, `input_type_ids`:
int32 [batch, seq], any batch and length) and returns its `logits` float32 [batch, outputs],
converted from that signature of the exported SavedModel; the run's
vocab.txt lies beside it, with `tflite.json` saying how to make the ids (lower_case, max_seq_length,
the labels): bert_keras.BertPreprocessor does it, as train.py does.

Quantisations (tf.lite.TFLiteConverter, builtin ops only):
- float: float32 weights and activations.
- dynamic_range: int8 weights, activations float (quantised on the fly inside the matmuls).
- full_integer: int8 weights and activations, their ranges calibrated on a sample of the task's
  training examples cut to one length (the calibrator runs the model at one shape), without padding
  (`representative_examples`); the inputs and outputs keep their types.
"""

import json
import os

import numpy as np
import tensorflow as tf

from bert_keras.encoder import INPUT_NAMES
from training.config import TFLITE_QUANTIZATIONS as QUANTIZATIONS

REPRESENTATIVE_EXAMPLES = 100  # training examples the full_integer calibration runs
CALIBRATION_LENGTH = 32  # their tokens: one length (the calibrator runs one shape), no padding
TFLITE_DIR, SETTINGS_FILE = "tflite", "tflite.json"


def convert(module, quantization, representative=()):
    """The .tflite bytes of the logits of an export's `serve_token_ids` signature (bert_keras.serving).

    module: the export, as tf.saved_model.load gives it.
    representative: feature dicts of NumPy [1, seq] arrays, for full_integer.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization={quantization!r}: expected one of {', '.join(QUANTIZATIONS)}")
    spec = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in INPUT_NAMES}
    function = tf.function(lambda features: {"logits": module.serve_token_ids(features)["logits"]})
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function(spec)], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "float":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "full_integer":
        if not representative:
            raise ValueError("quantization=full_integer: needs representative examples to calibrate on")
        converter.representative_dataset = lambda: iter(representative)
    return converter.convert()


def representative_examples(examples, length=CALIBRATION_LENGTH, count=REPRESENTATIVE_EXAMPLES):
    """`count` tokenised training examples (glue_tasks.inputs.tokenize's) of at least `length` tokens, cut
    to `length`: real tokens only. Padding would put attention's -10000 mask into the calibrated range
    of the scores, and 8 bits spread over that range leave the real scores no resolution."""
    found = []
    for example in examples.as_numpy_iterator():
        if len(example["input_word_ids"]) >= length:
            found.append({name: example[name][None, :length].astype(np.int32) for name in INPUT_NAMES})
            if len(found) == count:
                break
    if not found:
        raise ValueError(f"no training example has {length} tokens to calibrate full_integer on")
    return found


class TFLiteClassifier:
    """A .tflite task model with a Keras-like `predict` (training.evaluation.evaluate calls it)."""

    def __init__(self, path):
        self.interpreter = tf.lite.Interpreter(model_path=path)
        self.runner = self.interpreter.get_signature_runner()

    def __call__(self, features):
        return self.runner(**{name: np.asarray(features[name], np.int32) for name in INPUT_NAMES})["logits"]

    def predict(self, batches, verbose=0):
        return np.concatenate([self(features) for features, _ in batches.as_numpy_iterator()])


def export(directory, saved_model_dir, quantizations, *, vocab_file, lower_case, max_seq_length, label_names,
           representative=()):
    """Writes `{quantization}.tflite` of the export at `saved_model_dir` for each quantisation asked, vocab.txt
    and tflite.json into `directory`; returns {quantization: path}."""
    os.makedirs(directory, exist_ok=True)
    paths, module = {}, tf.saved_model.load(saved_model_dir)
    for quantization in quantizations:
        paths[quantization] = os.path.join(directory, f"{quantization}.tflite")
        with open(paths[quantization], "wb") as f:
            f.write(convert(module, quantization, representative))
    with open(vocab_file, "rb") as src, open(os.path.join(directory, "vocab.txt"), "wb") as dst:
        dst.write(src.read())
    settings = {"inputs": list(INPUT_NAMES), "output": "logits", "lower_case": lower_case,
                "max_seq_length": max_seq_length, "label_names": list(label_names or []),
                "files": {q: os.path.basename(p) for q, p in paths.items()}}
    with open(os.path.join(directory, SETTINGS_FILE), "w") as f:
        json.dump(settings, f, indent=2)
    return paths
