"""Google's TF1 checkpoints: parity with an independent NumPy BERT, and every error path."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import bert_keras
from numpy_bert import bert_forward
from tf1_writer import SMALL_CONFIG, google_variable_shapes, random_values, write_tf1_checkpoint


def encoder_inputs(vocab_size, type_vocab_size, batch=3, seq=7, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array([seq, seq - 2, 3])[:batch]
    mask = (np.arange(seq)[None] < lengths[:, None]).astype(np.int32)
    return {
        "input_word_ids": (rng.integers(5, vocab_size, (batch, seq)) * mask).astype(np.int32),
        "input_mask": mask,
        "input_type_ids": (rng.integers(0, type_vocab_size, (batch, seq)) * mask).astype(np.int32),
    }


def assert_matches_numpy(pretrained, checkpoint_prefix, inputs):
    reader = tf.train.load_checkpoint(checkpoint_prefix)
    weights = {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}
    c = pretrained.config
    seq, pooled, layers = bert_forward(weights, c.num_hidden_layers, c.num_attention_heads,
                                       inputs["input_word_ids"], inputs["input_mask"], inputs["input_type_ids"])
    out = pretrained.encoder(inputs, training=False)
    errors = {"sequence": np.abs(out["sequence_output"].numpy() - seq).max(),
              "pooled": np.abs(out["pooled_output"].numpy() - pooled).max(),
              "layers": max(np.abs(o.numpy() - r).max() for o, r in zip(out["encoder_outputs"], layers, strict=True))}
    print(f"{checkpoint_prefix}: max abs error vs float64 NumPy: " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    assert len(out["encoder_outputs"]) == c.num_hidden_layers
    assert max(errors.values()) < 1e-5


def test_shared_checkpoint_matches_numpy_reference(tf1_test_checkpoint):
    pretrained = bert_keras.load_encoder(tf1_test_checkpoint)
    assert pretrained.config.hidden_act == "gelu_approximate"  # Google's "gelu" is the tanh form
    assert pretrained.lower_case is True
    assert pretrained.vocab_file == os.path.join(tf1_test_checkpoint, "vocab.txt")
    inputs = encoder_inputs(15, 2, seq=9)
    assert_matches_numpy(pretrained, os.path.join(tf1_test_checkpoint, "bert_model.ckpt"), inputs)


def test_shared_checkpoint_pinned_outputs(tf1_test_checkpoint):
    """Pins the first values, so any change in conversion or maths shows up here."""
    encoder = bert_keras.load_encoder(tf1_test_checkpoint).encoder
    ids = np.array([[2, 5, 6, 7, 8, 3, 0]], np.int32)  # [CLS] all work and no [SEP] [PAD]
    out = encoder({"input_word_ids": ids, "input_mask": (ids > 0).astype(np.int32),
                   "input_type_ids": np.zeros_like(ids)}, training=False)
    np.testing.assert_allclose(out["sequence_output"].numpy()[0, 0], PINNED_FIRST_TOKEN, atol=1e-5)
    np.testing.assert_allclose(out["pooled_output"].numpy()[0], PINNED_POOLED, atol=1e-5)


# From tests/numpy_bert.py in float64 on the same input.
PINNED_FIRST_TOKEN = [-0.76604165, 1.71976821, -0.45623783, -0.49747802]
PINNED_POOLED = [-0.00631486, -0.02021385, -0.0262494, -0.04207047]


def test_written_checkpoint_matches_numpy_reference(tmp_path):
    values = write_tf1_checkpoint(str(tmp_path))
    assert all(np.abs(v).min() > 0 or v.ndim > 1 for k, v in values.items() if "bias" in k or "beta" in k)
    pretrained = bert_keras.load_encoder(str(tmp_path))
    assert pretrained.config.hidden_size == 32 and pretrained.config.intermediate_size == 37
    assert_matches_numpy(pretrained, str(tmp_path / "bert_model.ckpt"), encoder_inputs(99, 3))


def test_every_encoder_weight_has_one_source(tmp_path):
    write_tf1_checkpoint(str(tmp_path))
    pretrained = bert_keras.load_encoder(str(tmp_path))
    table = bert_keras.weight_map.weight_map(pretrained.config)
    names = [n for _, ns in table for n in ns]
    assert len(names) == len(set(names)) == len(pretrained.encoder.weights)
    assert {"bert/" + n for n in names} == set(google_variable_shapes(SMALL_CONFIG))


def test_skips_training_state_but_nothing_else(tmp_path):
    write_tf1_checkpoint(str(tmp_path), with_training_state=True)
    tensors = bert_keras.loading.read_tf1_checkpoint(str(tmp_path / "bert_model.ckpt"))
    assert set(tensors) == set(google_variable_shapes(SMALL_CONFIG))


def rewrite(tmp_path, edit):
    """A checkpoint whose variables `edit` changed (add, drop, reshape)."""
    values = random_values(google_variable_shapes(SMALL_CONFIG), 0)
    edit(values)
    write_tf1_checkpoint(str(tmp_path), values=values)
    return str(tmp_path)


def test_missing_variable_is_an_error_naming_it(tmp_path):
    folder = rewrite(tmp_path, lambda v: v.pop("bert/encoder/layer_1/output/dense/kernel"))
    with pytest.raises(bert_keras.CheckpointError, match=r"missing \(1\):\n  bert/encoder/layer_1/output/dense/kernel \[37, 32\]"):
        bert_keras.load_encoder(folder)


def test_unexpected_variable_is_an_error_naming_it(tmp_path):
    def add(v):
        v["output_weights"] = np.zeros([2, 32], np.float32)  # run_classifier's head
    with pytest.raises(bert_keras.CheckpointError, match=r"unexpected \(1\):\n  output_weights \[2, 32\]"):
        bert_keras.load_encoder(rewrite(tmp_path, add))


def test_wrong_shape_is_an_error_naming_both_shapes(tmp_path):
    def reshape(v):
        v["bert/encoder/layer_0/intermediate/dense/kernel"] = np.zeros([32, 40], np.float32)
    with pytest.raises(bert_keras.CheckpointError,
                       match=r"layer_0/intermediate/dense/kernel: \[32, 40\] in the checkpoint, \[32, 37\] in the config"):
        bert_keras.load_encoder(rewrite(tmp_path, reshape))


def test_config_that_does_not_match_the_checkpoint(tmp_path):
    write_tf1_checkpoint(str(tmp_path))
    config = dict(SMALL_CONFIG, num_hidden_layers=3)
    (tmp_path / "bert_config.json").write_text(json.dumps(config))
    with pytest.raises(bert_keras.CheckpointError, match=r"bert_config.json\): the checkpoint does not match") as e:
        bert_keras.load_encoder(str(tmp_path))
    assert "bert/encoder/layer_2/attention/self/query/kernel [32, 32]" in str(e.value)


@pytest.mark.parametrize("broken, match", [
    ("bert_model.ckpt.index", r"bert_model.ckpt.index: no such file"),
    ("vocab.txt", r"vocab.txt: no such file"),
    ("bert_config.json", r"holds no BERT checkpoint"),
])
def test_missing_file_is_named(tmp_path, broken, match):
    write_tf1_checkpoint(str(tmp_path))
    os.remove(tmp_path / broken)
    with pytest.raises(bert_keras.CheckpointError, match=match):
        bert_keras.load_encoder(str(tmp_path))


def test_corrupt_data_file_is_named(tmp_path):
    write_tf1_checkpoint(str(tmp_path))
    data = tmp_path / "bert_model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(bert_keras.CheckpointError, match=r"bert_model.ckpt.data-00000-of-00001"):
        bert_keras.load_encoder(str(tmp_path))


def test_corrupt_index_file_is_named(tmp_path):
    write_tf1_checkpoint(str(tmp_path))
    (tmp_path / "bert_model.ckpt.index").write_bytes(b"not a checkpoint index")
    with pytest.raises(bert_keras.CheckpointError, match=r"bert_model.ckpt: cannot read"):
        bert_keras.load_encoder(str(tmp_path))


def test_bad_config_is_named(tmp_path):
    write_tf1_checkpoint(str(tmp_path))
    (tmp_path / "bert_config.json").write_text("{not json")
    with pytest.raises(bert_keras.CheckpointError, match=r"bert_config.json: not a readable JSON"):
        bert_keras.load_encoder(str(tmp_path))


def test_vocab_larger_than_config_is_an_error(tmp_path):
    write_tf1_checkpoint(str(tmp_path))
    with open(tmp_path / "vocab.txt", "a") as f:
        f.write("extra\n")
    with pytest.raises(bert_keras.CheckpointError, match=r"vocab.txt: 100 tokens, but .*bert_config.json says vocab_size=99"):
        bert_keras.load_encoder(str(tmp_path))


def test_unknown_source_lists_the_known_names():
    with pytest.raises(bert_keras.CheckpointError, match=r"neither a folder nor .*uncased_L-12_H-768_A-12"):
        bert_keras.load_encoder("no_such_model")


def test_cased_vocab_means_no_lower_casing(tmp_path):
    write_tf1_checkpoint(str(tmp_path))
    vocab = (tmp_path / "vocab.txt").read_text().replace("tok7\n", "The\n")
    (tmp_path / "vocab.txt").write_text(vocab)
    assert bert_keras.load_encoder(str(tmp_path)).lower_case is False
    assert bert_keras.load_encoder(str(tmp_path), lower_case=True).lower_case is True


def test_a_vocab_of_another_size_than_the_checkpoint_is_an_error_naming_both(minilm_dir, tmp_path):
    """A vocab.txt cut to 2,000 of MiniLM's 30,522 lines would make most words [UNK]."""
    for name in os.listdir(minilm_dir):
        if name != "vocab.txt":
            os.symlink(os.path.join(minilm_dir, name), tmp_path / name)
    lines = open(os.path.join(minilm_dir, "vocab.txt"), encoding="utf-8").read().splitlines()
    (tmp_path / "vocab.txt").write_text("\n".join(lines[:2000]) + "\n", encoding="utf-8")
    with pytest.raises(bert_keras.CheckpointError, match=r"vocab.txt: 2000 tokens, but .*config.json says "
                                                         r"vocab_size=30522"):
        bert_keras.load_encoder(str(tmp_path))
