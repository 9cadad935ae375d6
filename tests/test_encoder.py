"""The encoder's interface, serialisation, masking and mixed precision."""

import json

import numpy as np
import pytest
import tf_keras as keras

import bert_keras
from tf1_writer import write_tf1_checkpoint


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    write_tf1_checkpoint(str(folder))
    return bert_keras.load_encoder(str(folder))


def batch(seq=7, lengths=(7, 5, 3), seed=0):
    rng = np.random.default_rng(seed)
    mask = (np.arange(seq)[None] < np.array(lengths)[:, None]).astype(np.int32)
    return {"input_word_ids": (rng.integers(5, 99, mask.shape) * mask).astype(np.int32),
            "input_mask": mask,
            "input_type_ids": (np.arange(seq)[None] >= 2).astype(np.int32) * mask}


def test_tf_hub_interface(pretrained):
    encoder = pretrained.encoder
    assert sorted(encoder.input) == sorted(bert_keras.INPUT_NAMES)
    assert all(t.dtype == "int32" and t.shape.as_list() == [None, None] for t in encoder.input.values())
    out = encoder(batch())
    assert out["sequence_output"].shape == (3, 7, 32)
    assert out["pooled_output"].shape == (3, 32)
    assert [t.shape for t in out["encoder_outputs"]] == [(3, 7, 32)] * 2
    np.testing.assert_array_equal(out["encoder_outputs"][-1], out["sequence_output"])


def test_padding_does_not_change_real_tokens(pretrained):
    short = batch(seq=5, lengths=(5, 5, 3))
    padded = {k: np.pad(v, [(0, 0), (0, 4)]) for k, v in short.items()}
    a = pretrained.encoder(short, training=False)["sequence_output"].numpy()
    b = pretrained.encoder(padded, training=False)["sequence_output"].numpy()[:, :5]
    real = short["input_mask"].astype(bool)
    assert np.abs(a - b)[real].max() < 1e-5


def test_dropout_only_in_training(pretrained):
    x = batch()
    a, b = (pretrained.encoder(x, training=False)["pooled_output"] for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(pretrained.encoder(x, training=True)["pooled_output"], a)


def test_get_config_round_trip(pretrained):
    config = pretrained.encoder.get_config()
    clone = keras.Model.from_config(config)
    assert json.dumps(clone.get_config(), sort_keys=True, default=str) == json.dumps(config, sort_keys=True, default=str)
    clone.set_weights(pretrained.encoder.get_weights())
    x = batch()
    np.testing.assert_array_equal(clone(x)["sequence_output"], pretrained.encoder(x)["sequence_output"])
    assert len(pretrained.encoder.trainable_weights) == 5 + 16 * 2 + 2
    assert not pretrained.encoder.non_trainable_weights


@pytest.fixture
def policy():
    yield keras.mixed_precision.set_global_policy
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name, tolerance", [("mixed_float16", 2e-2), ("mixed_bfloat16", 1e-1)])
def test_mixed_precision(pretrained, policy, name, tolerance):
    policy(name)
    encoder = bert_keras.build_encoder(pretrained.config)
    encoder.set_weights(pretrained.encoder.get_weights())
    for layer in encoder.layers:
        if isinstance(layer, keras.layers.LayerNormalization):
            assert layer.compute_dtype == "float32", layer.name
    x = batch()
    out = encoder(x, training=False)
    assert out["sequence_output"].dtype == "float32"  # LayerNorm's output
    ref = pretrained.encoder(x, training=False)["sequence_output"].numpy()
    assert np.isfinite(out["sequence_output"]).all()
    assert np.abs(out["sequence_output"].numpy() - ref).max() < tolerance

    # One training step under the policy: finite loss and gradients for every weight.
    import tensorflow as tf
    optimizer = keras.mixed_precision.LossScaleOptimizer(keras.optimizers.Adam(1e-3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.cast(encoder(x, training=True)["pooled_output"], tf.float32) ** 2)
        scaled = optimizer.get_scaled_loss(loss)
    grads = optimizer.get_unscaled_gradients(tape.gradient(scaled, encoder.trainable_weights))
    assert all(g is not None and np.isfinite(tf.convert_to_tensor(g)).all() for g in grads)


def test_output_range_computes_the_first_tokens_of_the_last_layer_only(pretrained):
    """with_output_range: the same layers and weights; the last layer's queries, residuals and
    feed-forward for the first tokens only, its keys and values over every token."""
    x = batch(seq=7, lengths=(7, 5, 3))
    full = pretrained.encoder(x, training=False)
    for count in (1, 2):
        view = bert_keras.with_output_range(pretrained.encoder, count)
        assert [w.ref() for w in view.weights] == [w.ref() for w in pretrained.encoder.weights]  # shared
        out = view(x, training=False)
        assert out["sequence_output"].shape == (3, count, 32)
        np.testing.assert_allclose(out["sequence_output"], full["sequence_output"][:, :count], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out["pooled_output"], full["pooled_output"], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(out["encoder_outputs"][0], full["encoder_outputs"][0])  # earlier layers whole
    built = bert_keras.build_encoder(pretrained.config, output_range=1)
    built.set_weights(pretrained.encoder.get_weights())  # same weights in the same order
    np.testing.assert_allclose(built(x, training=False)["pooled_output"], full["pooled_output"], rtol=1e-5, atol=1e-6)
    # The classifier reads [CLS] through such a view, and every encoder weight still gets a gradient.
    import tensorflow as tf
    model = bert_keras.build_classifier(pretrained.encoder, 2, 0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=True) ** 2)
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None for g in grads) and len(grads) == len(pretrained.encoder.weights) + 2
