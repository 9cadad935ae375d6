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

Raw text: `tokenizer.tflite` turns the task's text fields (string [batch], named as the SavedModel's
raw-text signature names them) into those token ids, padded to the batch's longest, with
tensorflow-text's FastBertTokenizer (two custom ops, FastBertNormalize and FastWordpieceTokenize,
which an interpreter gets from tensorflow_text.tflite_registrar; all else builtin). Its normalisation
is Unicode NFKD with case folding where BERT's (bert_keras.BertPreprocessor, the SavedModel's) is
lower-casing with NFD, so a few texts tokenise differently: µ, ß, ″, a final ς, C1 control bytes, a
word of 51 to 100 characters outside ASCII (over FastBertTokenizer's 100 bytes: [UNK]) (on
GLUE's dev sentences: none of CoLA's, SST-2's or WNLI's, 1 in 816 of MRPC's, 1 in 554 of RTE's, 22 in
10,926 of QNLI's). `TFLiteTextClassifier` chains the two files.
"""

import json
import os

import numpy as np
import tensorflow as tf

from bert_keras.encoder import INPUT_NAMES
from bert_keras.preprocessing import read_vocab, truncated_pair_lengths
from training.config import TFLITE_QUANTIZATIONS as QUANTIZATIONS

REPRESENTATIVE_EXAMPLES = 100  # training examples the full_integer calibration runs
CALIBRATION_LENGTH = 32  # their tokens: one length (the calibrator runs one shape), no padding
TFLITE_DIR, SETTINGS_FILE, TOKENIZER_FILE = "tflite", "tflite.json", "tokenizer.tflite"


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


class _Tokenizer(tf.Module):
    """Text fields to BERT's inputs as BertPreprocessor packs them (`[CLS] A [SEP] B [SEP]`, a pair
    truncated by Google's _truncate_seq_pair, an empty B left out), in dense ops TFLite has."""

    def __init__(self, vocab_file, lower_case, max_seq_length, text_fields):
        super().__init__()
        import tensorflow_text as tf_text

        ids = read_vocab(vocab_file)
        self.cls, self.sep, self.pad = ids["[CLS]"], ids["[SEP]"], ids["[PAD]"]
        self.max_seq_length = max_seq_length
        self.tokenizer = tf_text.FastBertTokenizer(sorted(ids, key=ids.get), lower_case_nfd_strip_accents=lower_case,
                                                   token_out_type=tf.int32, unknown_token="[UNK]")
        specs = [tf.TensorSpec([None], tf.string, name=field) for field in text_fields]
        self.tokenize = tf.function(self._tokenize, input_signature=specs)

    def _segment(self, text):
        """(token ids flat with [PAD] last, each row's start, each row's length) of one text field."""
        pieces = self.tokenizer.tokenize(text)  # ragged (batch, (tokens))
        starts = tf.cast(pieces.row_splits, tf.int32)
        return tf.concat([pieces.flat_values, [self.pad]], 0), starts[:-1], starts[1:] - starts[:-1]

    def _tokenize(self, *texts):
        a, a_start, a_length = self._segment(texts[0])
        if len(texts) == 2:
            b, b_start, b_length = self._segment(texts[1])
            kept_a, kept_b = truncated_pair_lengths(a_length, b_length, self.max_seq_length - 3)
            kept_a = tf.where(b_length > 0, kept_a, tf.minimum(a_length, self.max_seq_length - 2))
        else:
            b, b_start, kept_b = a, a_start, tf.zeros_like(a_length)
            kept_a = tf.minimum(a_length, self.max_seq_length - 2)
        kept_a, kept_b = kept_a[:, None], kept_b[:, None]  # (batch, 1)
        total = kept_a + 2 + tf.where(kept_b > 0, kept_b + 1, 0)
        j = tf.range(tf.reduce_max(total))[None, :]  # (1, seq): the position
        in_a, in_b = (j >= 1) & (j <= kept_a), (j >= kept_a + 2) & (j < kept_a + 2 + kept_b)
        from_a = tf.gather(a, tf.where(in_a, a_start[:, None] + j - 1, tf.size(a) - 1))
        from_b = tf.gather(b, tf.where(in_b, b_start[:, None] + j - kept_a - 2, tf.size(b) - 1))
        sep = (j == kept_a + 1) | ((kept_b > 0) & (j == total - 1))
        word_ids = tf.where(j == 0, self.cls, tf.where(sep, self.sep, tf.where(in_a, from_a, from_b)))
        return {"input_word_ids": word_ids, "input_mask": tf.cast(j < total, tf.int32),
                "input_type_ids": tf.cast((j >= kept_a + 2) & (j < total), tf.int32)}


def convert_tokenizer(vocab_file, lower_case, max_seq_length, text_fields):
    """The .tflite bytes of a tokenizer: `text_fields` string [batch] in, the three token-id inputs out."""
    module = _Tokenizer(vocab_file, lower_case, max_seq_length, text_fields)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.tokenize.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True  # tensorflow-text's, registered by tflite_registrar.SELECT_TFTEXT_OPS
    return converter.convert()


def text_interpreter(path):
    """A TFLite interpreter that has tensorflow-text's custom ops (for tokenizer.tflite)."""
    import tensorflow_text as tf_text
    from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

    return InterpreterWithCustomOps(model_path=path, custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS)


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


class TFLiteTextClassifier:
    """A .tflite task model with tokenizer.tflite beside it, called as bert_keras.TextClassifier: one list
    of texts a text field in; `label`, `label_id`, `probabilities`, `logits` (or `score`) out."""

    def __init__(self, path):
        directory = os.path.dirname(os.path.abspath(path))
        settings_file, tokenizer_file = os.path.join(directory, SETTINGS_FILE), os.path.join(directory, TOKENIZER_FILE)
        for needed in (path, settings_file, tokenizer_file):
            if not os.path.isfile(needed):
                raise FileNotFoundError(f"{needed}: no such file; train.py --export_tflite writes the model, "
                                        f"{SETTINGS_FILE} and {TOKENIZER_FILE} side by side")
        with open(settings_file) as f:
            settings = json.load(f)
        self.task, self.text_fields = settings["task"], tuple(settings["text_fields"])
        self.labels = tuple(settings["label_names"]) or None
        self.classifier = TFLiteClassifier(path)
        self.tokenizer = text_interpreter(tokenizer_file).get_signature_runner()

    def tokenize(self, *texts):
        """The token-id features of the texts (one list a text field), padded to the longest."""
        if len(texts) != len(self.text_fields):
            raise ValueError(f"{self.task} takes {len(self.text_fields)} list(s) of texts "
                             f"({', '.join(self.text_fields)}), got {len(texts)}")
        return self.tokenizer(**{field: np.array([t.encode("utf-8") if isinstance(t, str) else bytes(t)
                                                  for t in values], dtype=object)
                                 for field, values in zip(self.text_fields, texts)})

    def __call__(self, *texts):
        logits = self.classifier(self.tokenize(*texts))
        if self.labels is None:
            return {"score": logits[:, 0]}
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        label_id = logits.argmax(axis=1).astype(np.int32)
        return {"probabilities": shifted / shifted.sum(axis=1, keepdims=True), "logits": logits,
                "label_id": label_id, "label": [self.labels[i] for i in label_id]}


def export(directory, saved_model_dir, quantizations, *, vocab_file, lower_case, max_seq_length, task, text_fields,
           label_names, representative=()):
    """Writes `{quantization}.tflite` of the export at `saved_model_dir` for each quantisation asked,
    tokenizer.tflite, vocab.txt and tflite.json into `directory`; returns {quantization: path}."""
    os.makedirs(directory, exist_ok=True)
    paths, module = {}, tf.saved_model.load(saved_model_dir)
    for quantization in quantizations:
        paths[quantization] = os.path.join(directory, f"{quantization}.tflite")
        with open(paths[quantization], "wb") as f:
            f.write(convert(module, quantization, representative))
    with open(os.path.join(directory, TOKENIZER_FILE), "wb") as f:
        f.write(convert_tokenizer(vocab_file, lower_case, max_seq_length, text_fields))
    with open(vocab_file, "rb") as src, open(os.path.join(directory, "vocab.txt"), "wb") as dst:
        dst.write(src.read())
    settings = {"task": task, "text_fields": list(text_fields), "inputs": list(INPUT_NAMES), "output": "logits",
                "lower_case": lower_case, "max_seq_length": max_seq_length, "label_names": list(label_names or []),
                "files": {q: os.path.basename(p) for q, p in paths.items()}, "tokenizer": TOKENIZER_FILE}
    with open(os.path.join(directory, SETTINGS_FILE), "w") as f:
        json.dump(settings, f, indent=2)
    return paths
