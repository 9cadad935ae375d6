"""training.tflite's tokenizer.tflite (tensorflow-text's FastBertTokenizer in TensorFlow Lite): the same
token ids as bert_keras.BertPreprocessor on real GLUE dev sentences, single and paired, truncated or
not, except where FastBertTokenizer's normalisation (NFKD, case folding) differs from BERT's."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

import bert_keras
import glue_tasks
from conftest import GLUE, PRUNED
from training import tflite


def tokenizer_runner(tmp_path, vocab_file, max_seq_length, text_fields):
    path = os.path.join(tmp_path, "tokenizer.tflite")
    with open(path, "wb") as f:
        f.write(tflite.convert_tokenizer(vocab_file, True, max_seq_length, text_fields))
    return tflite.text_interpreter(path).get_signature_runner()


def fast_tokenization_differs(vocab_file, texts):
    """Which texts FastBertTokenizer splits otherwise than BertPreprocessor (before any packing)."""
    vocab = [line.rstrip("\n") for line in open(vocab_file, encoding="utf-8")]
    fast = tf_text.FastBertTokenizer(vocab, lower_case_nfd_strip_accents=True, token_out_type=tf.int32)
    ours = bert_keras.BertPreprocessor(vocab_file, True).tokenize(tf.constant(texts)).to_list()
    return np.array([a != b for a, b in zip(ours, fast.tokenize(tf.constant(texts)).to_list())])


@pytest.mark.parametrize("task_name,max_seq_length", [("rte", 24), ("rte", 128), ("sst2", 16), ("sst2", 128)])
def test_tokenizer_tflite_packs_as_bert_preprocessor(minilm_dir, tmp_path, task_name, max_seq_length):
    vocab_file = os.path.join(minilm_dir, "vocab.txt")
    task = glue_tasks.get_task(task_name)
    dev = glue_tasks.read_split(task, "validation", GLUE)
    texts = [list(dev[field]) for field in task.text_fields]
    runner = tokenizer_runner(tmp_path, vocab_file, max_seq_length, task.text_fields)
    preprocessor = bert_keras.BertPreprocessor(vocab_file, True, max_seq_length)
    differs = np.zeros(len(texts[0]), bool)
    for field in texts:
        differs |= fast_tokenization_differs(vocab_file, field)
    mismatched = []
    for start in range(0, len(texts[0]), 64):
        chunk = [field[start:start + 64] for field in texts]
        found = runner(**{name: np.array([t.encode() for t in field], dtype=object)
                          for name, field in zip(task.text_fields, chunk)})
        expected = preprocessor.pad(preprocessor.pack_ragged([tf.constant(field) for field in chunk]))
        assert found["input_word_ids"].shape == tuple(expected["input_word_ids"].shape)  # the batch's longest
        for i in range(len(chunk[0])):
            if any(not np.array_equal(found[name][i], expected[name][i].numpy()) for name in expected):
                mismatched.append(start + i)
    # The packing is exact: only texts that FastBertTokenizer splits otherwise may differ (if truncation
    # keeps the difference).
    assert set(mismatched) <= set(np.flatnonzero(differs)), mismatched
    assert len(mismatched) <= {"rte": 1, "sst2": 0}[task_name]


def test_tokenizer_tflite_on_edge_cases(minilm_dir, tmp_path):
    vocab_file = os.path.join(minilm_dir, "vocab.txt")
    runner = tokenizer_runner(tmp_path, vocab_file, 8, ("sentence1", "sentence2"))
    preprocessor = bert_keras.BertPreprocessor(vocab_file, True, 8)
    a = ["", "one", "one two three four five six", "a b", ""]
    b = ["", "", "x", "one two three four five six seven", "word"]
    found = runner(sentence1=np.array([t.encode() for t in a], dtype=object),
                   sentence2=np.array([t.encode() for t in b], dtype=object))
    expected = preprocessor.pad(preprocessor.pack_ragged([tf.constant(a), tf.constant(b)]))
    for name in expected:
        np.testing.assert_array_equal(found[name], expected[name].numpy(), err_msg=name)


def test_a_tflite_file_without_its_tokenizer_and_settings_is_named(tmp_path):
    model = tmp_path / "dynamic_range.tflite"
    model.write_bytes(b"not read")
    with pytest.raises(FileNotFoundError, match=r"tflite\.json: no such file; train.py --export_tflite writes"):
        tflite.TFLiteTextClassifier(str(model))


def test_dynamic_range_keeps_an_unstructured_models_zeros(pruned_run):
    """Dynamic range quantises each kernel symmetrically (0.0 -> int8 0), so a weight pruned to zero stays
    zero in the .tflite file, with no sparsity-preserving quantisation step. Each pruned kernel's zeros
    must lie among the zeros of one int8 weight tensor."""
    module = tf.saved_model.load(os.path.join(pruned_run, "saved_model"))
    kernels = {v.name: v.numpy() for v in module.classifier_weights if v.name in PRUNED}
    interpreter = tf.lite.Interpreter(model_content=tflite.convert(module, "dynamic_range"))
    int8 = []
    for detail in interpreter.get_tensor_details():
        if detail["dtype"] == np.int8 and len(detail["shape"]) >= 2:
            try:
                int8.append(interpreter.get_tensor(detail["index"]) == 0)
            except ValueError:  # an activation tensor, not allocated
                pass
    assert len(kernels) == len(PRUNED) and len(int8) >= len(PRUNED)
    for name, kernel in kernels.items():
        zeros = kernel == 0
        assert abs(zeros.mean() - 0.5) < 0.005, name
        # A Dense kernel is [in, out]; TFLite's FULLY_CONNECTED weights are [out, in].
        kept = [q for q in int8 if q.shape == zeros.T.shape and np.all(q[zeros.T])]
        assert kept, f"{name}: no int8 tensor keeps its {zeros.sum()} zeros"
