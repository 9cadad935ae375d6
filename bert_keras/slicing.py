"""A structurally pruned classifier made physically smaller: the heads and neurons kept, the rest sliced out.

Head h of a layer owns columns [h * head_size, (h + 1) * head_size) of its query, key and value
kernels and biases, and the same rows of its attention-output kernel; neuron j owns column j of the
intermediate kernel and bias and row j of the output kernel. Dropping them gives the same outputs as
zeroing them (up to float rounding) when the dropped groups were zero: what a structured pruning run's
masks leave (pruning_schedules.structured). The smaller config records each layer's shapes
(BertConfig.layer_num_attention_heads / layer_intermediate_sizes), so `build_encoder` and `load_encoder`
rebuild it.
"""

import dataclasses

import numpy as np
import tf_keras as keras

from bert_keras.classifier import build_classifier
from bert_keras.encoder import build_encoder


def leaf_layers(model):
    """{name: layer} of `model` and of the models nested in it, wrappers (pruning masks) unwrapped."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Wrapper):
            layer = layer.layer
        if isinstance(layer, keras.Model):
            found.update(leaf_layers(layer))
        else:
            found[layer.name] = layer
    return found


def sliced_config(config, heads, neurons):
    """`config` keeping `heads[i]` heads and `neurons[i]` neurons of layer i (lists of indices; a layer
    missing from a dict keeps all of them)."""
    layers = range(config.num_hidden_layers)
    return dataclasses.replace(
        config, layer_num_attention_heads=tuple(len(heads[i]) if i in heads else config.heads(i) for i in layers),
        layer_intermediate_sizes=tuple(len(neurons[i]) if i in neurons else config.intermediate(i) for i in layers))


def _slice_layer(name, weights, config, heads, neurons):
    """The weights of encoder layer `name` keeping the given heads and neurons."""
    parts = name.split("_", 2)
    if len(parts) < 3 or parts[0] != "layer" or not parts[1].isdigit():
        return weights
    i, kind = int(parts[1]), parts[2]
    d = config.head_size
    columns = np.concatenate([np.arange(h * d, (h + 1) * d) for h in heads.get(i, range(config.heads(i)))] +
                             [np.zeros(0, int)])
    kept = np.asarray(list(neurons.get(i, range(config.intermediate(i)))), int)
    if kind in ("attention_query", "attention_key", "attention_value"):
        kernel, bias = weights
        return [kernel[:, columns], bias[columns]]
    if kind == "attention_output" and len(weights) == 2:
        kernel, bias = weights
        return [kernel[columns, :], bias] if len(columns) else [bias]
    if kind == "intermediate":
        kernel, bias = weights
        return [kernel[:, kept], bias[kept]]
    if kind == "output" and len(weights) == 2:
        kernel, bias = weights
        return [kernel[kept, :], bias] if len(kept) else [bias]
    return weights


def slice_classifier(classifier, config, heads, neurons):
    """(the smaller config, a float32 classifier of it, its encoder) holding `classifier`'s weights but
    for the dropped heads and neurons.

    Args:
      classifier: keras.Model. A task model from `build_classifier`, its kernels wrapped or not (the
        weights are read through the wrappers; those of the dropped groups are never read).
      config: BertConfig of its encoder.
      heads, neurons: {layer index: indices of the heads / neurons to keep}; a layer not named keeps all.
    """
    for what, kept, count in (("heads", heads, config.heads), ("neurons", neurons, config.intermediate)):
        for i, indices in kept.items():
            if not 0 <= i < config.num_hidden_layers or any(not 0 <= j < count(i) for j in indices) or \
                    len(set(indices)) != len(indices):
                raise ValueError(f"{what}[{i}]={list(indices)}: expected distinct indices below {count(i)} of a "
                                 f"layer below {config.num_hidden_layers}")
    heads = {i: sorted(v) for i, v in heads.items()}
    neurons = {i: sorted(v) for i, v in neurons.items()}
    small = sliced_config(config, heads, neurons)
    source = leaf_layers(classifier)
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        encoder = build_encoder(small)
        model = build_classifier(encoder, source["classifier"].units, 0.0, classifier.name)  # shares its layers
    finally:
        keras.mixed_precision.set_global_policy(policy)
    for name, layer in leaf_layers(model).items():
        if layer.weights:
            layer.set_weights(_slice_layer(name, source[name].get_weights(), config, heads, neurons))
    return small, model, encoder
