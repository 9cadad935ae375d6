"""bert_keras.slicing: a classifier with heads and neurons sliced out computes what the full one computes
with those heads and neurons zeroed; the smaller config validates, serialises and reloads."""

import json

import numpy as np
import pytest
import tf_keras as keras

import bert_keras
from bert_keras import slicing
from bert_keras.weight_map import weight_map
from test_encoder import batch
from tf1_writer import write_tf1_checkpoint

# Layer 0 keeps two of its four heads and no feed-forward; layer 1 loses its attention and keeps four neurons.
HEADS = {0: [3, 1], 1: []}
NEURONS = {0: [], 1: [2, 5, 7, 30]}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    write_tf1_checkpoint(str(folder))
    return bert_keras.load_encoder(str(folder))


def zeroed_classifier(pretrained, heads, neurons):
    """A full classifier with every dropped head's and neuron's weights zeroed (what structured masks leave),
    on its own copy of the encoder."""
    pretrained = bert_keras.load_encoder(pretrained.source)
    config = pretrained.config
    model = bert_keras.build_classifier(pretrained.encoder, 3, 0.0)
    rng = np.random.default_rng(1)
    head = model.get_layer("classifier")
    head.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in head.get_weights()])
    d = config.head_size
    for i in range(config.num_hidden_layers):
        dropped = [h for h in range(config.num_attention_heads) if h not in heads.get(i, range(99))]
        columns = [c for h in dropped for c in range(h * d, (h + 1) * d)]
        for kind in ("attention_query", "attention_key", "attention_value"):
            layer = pretrained.encoder.get_layer(f"layer_{i}_{kind}")
            kernel, bias = layer.get_weights()
            kernel[:, columns], bias[columns] = 0, 0
            layer.set_weights([kernel, bias])
        layer = pretrained.encoder.get_layer(f"layer_{i}_attention_output")
        kernel, bias = layer.get_weights()
        kernel[columns, :] = 0
        layer.set_weights([kernel, bias])
        gone = [j for j in range(config.intermediate_size) if j not in neurons.get(i, range(999))]
        layer = pretrained.encoder.get_layer(f"layer_{i}_intermediate")
        kernel, bias = layer.get_weights()
        kernel[:, gone], bias[gone] = 0, 0
        layer.set_weights([kernel, bias])
        layer = pretrained.encoder.get_layer(f"layer_{i}_output")
        kernel, bias = layer.get_weights()
        kernel[gone, :] = 0
        layer.set_weights([kernel, bias])
    return model, pretrained.encoder


def test_sliced_classifier_computes_the_zeroed_one(pretrained):
    full, zeroed_encoder = zeroed_classifier(pretrained, HEADS, NEURONS)
    small, model, encoder = slicing.slice_classifier(full, pretrained.config, HEADS, NEURONS)
    features = batch()
    np.testing.assert_allclose(model(features), full(features), atol=1e-5)
    expected = zeroed_encoder(features)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(encoder(features)[key], expected[key], atol=1e-5)
    # The zeroed groups carry the difference: unzeroed, the full model computes something else.
    intact = bert_keras.build_classifier(pretrained.encoder, 3, 0.0)
    intact.get_layer("classifier").set_weights(full.get_layer("classifier").get_weights())
    assert np.abs(intact(features) - full(features)).max() > 1e-3
    assert small.layer_num_attention_heads == (2, 0) and small.layer_intermediate_sizes == (0, 4)
    assert encoder.get_layer("layer_0_attention_query").kernel.shape == (32, 2 * 8)
    assert [w.shape for w in encoder.get_layer("layer_0_output").weights] == [(32,)]  # the bias alone
    assert [w.shape for w in encoder.get_layer("layer_1_attention_output").weights] == [(32,)]
    assert model.count_params() < full.count_params()


def test_kept_heads_are_sliced_in_their_order(pretrained):
    """Head 1's columns come before head 3's whatever order the indices are given in."""
    full = bert_keras.build_classifier(pretrained.encoder, 3, 0.0)
    _, model, _ = slicing.slice_classifier(full, pretrained.config, HEADS, NEURONS)
    kernel = pretrained.encoder.get_layer("layer_0_attention_value").kernel.numpy()
    sliced = slicing.leaf_layers(model)["layer_0_attention_value"].kernel.numpy()
    np.testing.assert_array_equal(sliced, np.concatenate([kernel[:, 8:16], kernel[:, 24:32]], axis=1))


def test_sliced_encoder_saves_and_reloads(pretrained, tmp_path):
    full = bert_keras.build_classifier(pretrained.encoder, 3, 0.0)
    small, _, encoder = slicing.slice_classifier(full, pretrained.config, HEADS, NEURONS)
    bert_keras.save_converted(bert_keras.PretrainedEncoder(encoder, small, pretrained.vocab_file,
                                                           pretrained.lower_case, "sliced"), str(tmp_path))
    loaded = bert_keras.load_encoder(str(tmp_path))
    assert loaded.config == small
    features = batch()
    np.testing.assert_array_equal(loaded.encoder(features)["sequence_output"], encoder(features)["sequence_output"])


def test_weight_map_and_kernel_names_follow_the_sliced_shapes(pretrained):
    small = slicing.sliced_config(pretrained.config, HEADS, NEURONS)
    encoder = bert_keras.build_encoder(small)
    for layer_name, names in weight_map(small):
        assert len(names) == len(encoder.get_layer(layer_name).weights), layer_name
    assert bert_keras.kernel_layer_names(small) == [
        "layer_0_attention_query", "layer_0_attention_key", "layer_0_attention_value", "layer_0_attention_output",
        "layer_1_intermediate", "layer_1_output", "pooler"]


def test_config_round_trips_through_json(pretrained):
    small = slicing.sliced_config(pretrained.config, HEADS, NEURONS)
    again = bert_keras.BertConfig.from_dict(json.loads(json.dumps(small.to_dict())))
    assert again == small and again.heads(1) == 0 and again.intermediate(1) == 4


@pytest.mark.parametrize("field, value, message", [
    ("layer_num_attention_heads", (4,), "expected 2 integers"),
    ("layer_num_attention_heads", (4, 5), "each 0 to 4"),
    ("layer_intermediate_sizes", (37, -1), ">= 0"),
    ("layer_intermediate_sizes", (True, 3), "expected 2 integers"),
    ("layer_intermediate_sizes", "37,37", "expected 2 integers"),
])
def test_config_rejects_bad_per_layer_shapes(pretrained, field, value, message):
    values = {**pretrained.config.to_dict(), field: value}
    with pytest.raises(bert_keras.ConfigError, match=f"{field}=.*{message}"):
        bert_keras.BertConfig(**values)


@pytest.mark.parametrize("heads, neurons", [({0: [4]}, {}), ({2: [0]}, {}), ({0: [1, 1]}, {}), ({}, {1: [37]})])
def test_slicing_rejects_bad_indices(pretrained, heads, neurons):
    full = bert_keras.build_classifier(pretrained.encoder, 3, 0.0)
    with pytest.raises(ValueError, match="expected distinct indices"):
        slicing.slice_classifier(full, pretrained.config, heads, neurons)


def test_bias_only_serialises():
    layer = bert_keras.layers.BiasOnly(5, name="b")
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(again, bert_keras.layers.BiasOnly) and again.units == 5
