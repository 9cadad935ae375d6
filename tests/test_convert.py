"""python -m bert_keras.convert: a checkpoint load_encoder reads, a SavedModel hub.KerasLayer loads."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

import bert_keras
from conftest import REPO
from tf1_writer import write_tf1_checkpoint


def run_convert(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "bert_keras.convert", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def sample(vocab_size=99):
    ids = np.array([[2, 17, 33, 3, 50, 3, 0, 0], [2, 60, 3, 0, 0, 0, 0, 0]], np.int32) % vocab_size
    return {"input_word_ids": ids, "input_mask": (ids > 0).astype(np.int32),
            "input_type_ids": np.array([[0, 0, 0, 0, 1, 1, 0, 0]] + [[0] * 8], np.int32)}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    source = str(tmp_path_factory.mktemp("tf1"))
    write_tf1_checkpoint(source)
    output = str(tmp_path_factory.mktemp("out") / "converted")
    result = run_convert(source, output, "--saved_model")
    assert result.returncode == 0, result.stderr
    assert "Wrote" in result.stdout
    return source, output


def test_converted_checkpoint_loads_with_identical_outputs(converted):
    source, output = converted
    assert sorted(os.listdir(output)) == ["bert_keras_config.json", "checkpoint", "encoder.data-00000-of-00001",
                                          "encoder.index", "saved_model", "vocab.txt"]
    a, b = bert_keras.load_encoder(source), bert_keras.load_encoder(output)
    assert a.config == b.config and a.lower_case == b.lower_case
    x = sample()
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_array_equal(a.encoder(x)[key], b.encoder(x)[key])


def test_saved_model_loads_in_hub_keras_layer(converted):
    source, output = converted
    layer = hub.KerasLayer(os.path.join(output, "saved_model"), trainable=True)
    x = sample()
    expected = bert_keras.load_encoder(source).encoder(x, training=False)
    served = layer(x)
    for key in ("sequence_output", "pooled_output"):  # float32 rounding: the loaded graph runs other kernels
        np.testing.assert_allclose(served[key], expected[key], rtol=1e-5, atol=1e-6)
    assert len(served["encoder_outputs"]) == 2
    assert len(layer.trainable_weights) == len(bert_keras.load_encoder(source).encoder.trainable_weights)
    loaded = tf.saved_model.load(os.path.join(output, "saved_model"))
    assert loaded.vocab_file.asset_path.numpy().decode().endswith("vocab.txt")
    assert bool(loaded.do_lower_case.numpy()) is True


def test_refuses_to_overwrite(converted, tmp_path):
    source, _ = converted
    (tmp_path / "keep.txt").write_text("mine")
    result = run_convert(source, str(tmp_path))
    assert result.returncode != 0
    assert f"{tmp_path}: exists and is not an empty folder" in result.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_bad_source_is_a_clear_error(tmp_path):
    result = run_convert(str(tmp_path), str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path}: holds no BERT checkpoint")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
