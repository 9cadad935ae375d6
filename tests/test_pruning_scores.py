"""pruning_schedules.scores: the Fisher score of single weights against central differences of the loss,
tfmot's masks ranking a given score instead of magnitudes (single weights and 1x4 blocks), the callback
scoring before each mask update, and the flags that refuse it where it does not apply."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

import bert_keras
import pruning_schedules
from pruning_schedules import scores
from test_encoder import batch
from tf1_writer import SMALL_CONFIG, write_tf1_checkpoint
from training.config import ConfigError, RunConfig

LABELS = np.array([0, 1, 2])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    write_tf1_checkpoint(str(folder), config=dict(SMALL_CONFIG, intermediate_size=48))  # 48: 1x4 blocks tile it
    return str(folder)


def pruned_classifier(checkpoint, schedule, with_scores=True, **kwargs):
    """(encoder, a compiled classifier over its pruned copy, {layer name: score variable} or None)."""
    pretrained = bert_keras.load_encoder(checkpoint)
    names = pruning_schedules.select_layers(pretrained.encoder)
    variables = {name: tf.Variable(tf.zeros(pretrained.encoder.get_layer(name).weights[0].shape), trainable=False)
                 for name in names} if with_scores else None
    encoder = pruning_schedules.prune_encoder(pretrained.encoder, names, schedule, scores=variables, **kwargs)
    keras.utils.set_random_seed(0)  # the head's initial weights
    model = bert_keras.build_classifier(encoder, 3, 0.0)
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return pretrained.encoder, model, variables


def constant(sparsity, frequency=100):
    return tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=1, frequency=frequency)


def test_fisher_scores_are_w2_times_the_mean_squared_derivative(checkpoint):
    """Against central differences of the loss: dL/dw one batch at a time, squared and averaged."""
    encoder, model, _ = pruned_classifier(checkpoint, constant(0.5), with_scores=False)
    batches = [(batch(seed=seed), LABELS) for seed in (0, 1)]
    found = scores.fisher_scores(model, batches)
    assert sorted(found) == sorted(pruning_schedules.select_layers(encoder))

    def loss(features):
        return float(model.loss(LABELS, model(features, training=False)))

    eps = 1e-2
    for name in ("layer_0_attention_query", "layer_1_intermediate", "layer_1_output"):
        kernel = encoder.get_layer(name).kernel
        w = kernel.numpy()
        assert found[name].shape == w.shape and np.all(found[name] >= 0)
        for index in [np.unravel_index(np.argmax(found[name]), w.shape), (3, 5)]:
            derivatives = []
            for features, _ in batches:
                step = np.zeros_like(w)
                step[index] = eps
                kernel.assign(w + step)
                up = loss(features)
                kernel.assign(w - step)
                down = loss(features)
                kernel.assign(w)
                derivatives.append((up - down) / (2 * eps))
            expected = w[index] ** 2 * (np.mean(np.square(derivatives)) + scores.DAMPING) / 2
            assert expected > 1e-12, (name, index)
            assert found[name][index] == pytest.approx(expected, rel=2e-2), (name, index)


def test_fisher_scores_of_pruned_weights_are_zero(checkpoint):
    encoder, model, _ = pruned_classifier(checkpoint, constant(0.5), with_scores=False)
    kernel = encoder.get_layer("layer_0_intermediate").kernel
    kernel.assign(kernel * (np.arange(kernel.shape[1]) % 2))  # every other column zero
    found = scores.fisher_scores(model, [(batch(), LABELS)])["layer_0_intermediate"]
    assert np.all(found[:, ::2] == 0) and np.all(found[:, 1::2] > 0)


def magnitude_and_score_masks(model, encoder, variables, sparsity, block=(1, 1)):
    """Sets each score to minus the weights' magnitudes (the opposite of tfmot's order, by block), trains
    one step (a mask update), and returns {name: (mask, the kernel before)}."""
    before = {name: encoder.get_layer(name).kernel.numpy() for name in variables}
    for name, variable in variables.items():
        variable.assign(np.max(np.abs(before[name])) - np.abs(before[name]) + 1.0)  # small weights score high
    model.fit(batch(), LABELS, batch_size=3, epochs=1, verbose=0,
              callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    wrappers = scores.find_wrappers(model)
    return {name: (wrappers[name].pruning_vars[0][1].numpy(), before[name]) for name in variables}


def test_masks_rank_the_given_scores_not_the_magnitudes(checkpoint):
    encoder, model, variables = pruned_classifier(checkpoint, constant(0.75))
    for name, (mask, kernel) in magnitude_and_score_masks(model, encoder, variables, 0.75).items():
        assert mask.mean() == pytest.approx(0.25, abs=1 / mask.size), name
        # the smallest weights kept, the largest gone: tfmot alone would keep exactly the opposite
        assert np.abs(kernel[mask == 1]).max() <= np.abs(kernel[mask == 0]).min(), name
        np.testing.assert_array_equal(encoder.get_layer(name).kernel.numpy(), kernel * mask)  # honest zeros


def test_block_masks_rank_the_blocks_mean_score(checkpoint):
    encoder, model, variables = pruned_classifier(checkpoint, constant(0.5), block_size=(1, 4))
    for name, (mask, kernel) in magnitude_and_score_masks(model, encoder, variables, 0.5, (1, 4)).items():
        blocks = mask.reshape(mask.shape[0], -1, 4)
        assert np.all(blocks == blocks[..., :1]), name  # whole 1x4 blocks
        assert blocks[..., 0].mean() == pytest.approx(0.5, abs=1 / blocks[..., 0].size), name
        block_magnitude = np.abs(kernel).reshape(blocks.shape).mean(axis=-1)
        assert block_magnitude[blocks[..., 0] == 1].max() <= block_magnitude[blocks[..., 0] == 0].min(), name


def test_callback_sets_fisher_scores_before_each_mask_update(checkpoint):
    encoder, model, variables = pruned_classifier(checkpoint, constant(0.5, frequency=2))
    batches = [(batch(seed=0), LABELS)]
    expected = scores.fisher_scores(model, batches)  # SGD at 0: the weights do not move, only the masks
    by_magnitude = {name: np.abs(encoder.get_layer(name).kernel.numpy()) for name in variables}
    callback = scores.FisherPruningStep(constant(0.5, frequency=2), variables, batches)
    model.fit(batch(), LABELS, batch_size=3, epochs=1, verbose=0, callbacks=[callback])
    wrappers = scores.find_wrappers(model)
    differ = 0
    for name, variable in variables.items():
        np.testing.assert_allclose(variable.numpy(), expected[name], rtol=1e-5, atol=1e-30)
        mask = wrappers[name].pruning_vars[0][1].numpy()
        assert expected[name][mask == 1].min() >= expected[name][mask == 0].max(), name
        differ += not np.array_equal(mask, by_magnitude[name] >= np.median(by_magnitude[name]))
    assert differ  # magnitude would have kept other weights: the masks tell which ranked them


def test_fisher_flags_apply_to_single_weights_only():
    RunConfig(target_sparsity=0.5, pruning_score="fisher", block_size=(1, 4))
    for settings in ({}, {"pruning_structure": "heads_and_neurons"}, {"sparsity_m_by_n": (2, 4)}):
        sparsity = {} if not settings else {"target_sparsity": 0.5}
        with pytest.raises(ConfigError, match="pruning_score=fisher.*pruning_structure=weights"):
            RunConfig(pruning_score="fisher", **sparsity, **settings)
    with pytest.raises(ConfigError, match="pruning_score=taylor.*pruning_score=fisher"):
        RunConfig(target_sparsity=0.5, pruning_score="taylor")


def test_scores_must_name_every_pruned_layer(checkpoint):
    pretrained = bert_keras.load_encoder(checkpoint)
    names = pruning_schedules.select_layers(pretrained.encoder)
    with pytest.raises(ValueError, match="scores: one a pruned layer expected"):
        pruning_schedules.prune_encoder(pretrained.encoder, names, constant(0.5), scores={names[0]: tf.Variable(0.0)})
