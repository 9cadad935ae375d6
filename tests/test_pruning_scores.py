"""pruning_schedules.scores: the Fisher score of single weights against central differences of the loss,
tfmot's masks ranking a given score instead of magnitudes (single weights and 1x4 blocks), the callback
scoring before each mask update, and the flags that refuse it where it does not apply."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

import bert_keras
import pruning_schedules
from pruning_schedules import scores
from conftest import REPO, short_run_flags, train_in_process
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


def test_fisher_diagonals_are_the_mean_squared_derivative(checkpoint):
    """Against central differences of the loss: dL/dw one batch at a time, squared and averaged; the score
    is w^2 (that + DAMPING x its kernel mean) / 2."""
    encoder, model, _ = pruned_classifier(checkpoint, constant(0.5), with_scores=False)
    batches = [(batch(seed=seed), LABELS) for seed in (0, 1)]
    diagonals = scores.fisher_diagonals(model, batches, model.loss)
    found = scores.fisher_scores(model, batches, model.loss)
    assert sorted(found) == sorted(diagonals) == sorted(pruning_schedules.select_layers(encoder))

    def loss(features):
        return float(model.loss(LABELS, model(features, training=False)))

    eps = 1e-2
    for name in ("layer_0_attention_query", "layer_1_intermediate", "layer_1_output"):
        kernel = encoder.get_layer(name).kernel
        w = kernel.numpy()
        np.testing.assert_allclose(found[name], w ** 2 * (diagonals[name] + scores.DAMPING * diagonals[name].mean())
                                   / 2, rtol=1e-6)
        for index in [np.unravel_index(np.argmax(diagonals[name]), w.shape), (3, 5)]:
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
            expected = np.mean(np.square(derivatives))
            assert expected > 1e-3 * diagonals[name].max(), (name, index)  # large enough to tell apart
            assert diagonals[name][index] == pytest.approx(expected, rel=2e-2), (name, index)


def test_a_student_that_starts_as_its_teacher_is_scored_on_the_task_loss(checkpoint):
    """Its distillation loss is zero, with no gradient: the score would be noise. build_training_model
    hands the callback the task's loss."""
    from training import losses
    from training.config import RunConfig
    from training.model import build_training_model
    from training.optimization import StepPlan
    import glue_tasks

    config = RunConfig(task="rte", output_dir="unused", init_checkpoint=checkpoint, target_sparsity=0.5,
                       pruning_score="fisher", teacher="a_teacher", pruning_frequency=4)
    trained = build_training_model(config, bert_keras.load_encoder(checkpoint), glue_tasks.get_task("rte"),
                                   StepPlan(10, 10, 1, 1), score_batches=[(batch(), LABELS)])
    assert trained.model.loss.name == "distillation"
    assert trained.pruning_callback.loss.name == "sparse_categorical_crossentropy"
    _, model, _ = pruned_classifier(checkpoint, constant(0.5), with_scores=False)
    teacher = np.asarray(model(batch(), training=False))
    model.compile(loss=losses.distillation_loss(glue_tasks.get_task("mnli"), 1.0, 2.0))
    with_teacher = np.concatenate([LABELS[:, None], teacher], axis=1).astype(np.float32)
    distilled = scores.fisher_diagonals(model, [(batch(), with_teacher)], model.loss)
    task = scores.fisher_diagonals(model, [(batch(), LABELS)], losses.task_loss(glue_tasks.get_task("mnli")))
    assert max(d.max() for d in distilled.values()) < 1e-12 < min(t.max() for t in task.values())


def test_fisher_scores_of_pruned_weights_are_zero(checkpoint):
    """A weight its mask prunes scores 0, even where the kernel still holds a value (the optimizer moved it
    after the last masking): the forward pass masks the kernel before the score reads it."""
    encoder, model, _ = pruned_classifier(checkpoint, constant(0.5), with_scores=False)
    mask = scores.find_wrappers(model)["layer_0_intermediate"].pruning_vars[0][1]
    mask.assign(np.ones(mask.shape) * (np.arange(mask.shape[1]) % 2))  # every other column pruned
    assert np.all(encoder.get_layer("layer_0_intermediate").kernel.numpy() != 0)
    found = scores.fisher_scores(model, [(batch(), LABELS)], model.loss)["layer_0_intermediate"]
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
    expected = scores.fisher_scores(model, batches, model.loss)  # SGD at 0: the weights do not move, only the masks
    by_magnitude = {name: np.abs(encoder.get_layer(name).kernel.numpy()) for name in variables}
    callback = scores.FisherPruningStep(constant(0.5, frequency=2), variables, batches, model.loss)
    model.fit(batch(), LABELS, batch_size=3, epochs=1, verbose=0, callbacks=[callback])
    wrappers = scores.find_wrappers(model)
    differ = 0
    for name, variable in variables.items():
        np.testing.assert_allclose(variable.numpy(), expected[name], rtol=1e-5, atol=1e-30)
        mask = wrappers[name].pruning_vars[0][1].numpy()
        assert expected[name][mask == 1].min() >= expected[name][mask == 0].max(), name
        differ += not np.array_equal(mask, by_magnitude[name] >= np.median(by_magnitude[name]))
    assert differ  # magnitude would have kept other weights: the masks tell which ranked them


def test_global_fisher_ranking_prunes_below_one_threshold_of_all_kernels(checkpoint):
    """sparsity_ranking global: the callback ranks every kernel's scores together before the update, and
    each kernel's GlobalShare schedule gives tfmot its share of the weights below that one threshold."""
    timing = constant(0.6, frequency=2)
    pretrained = bert_keras.load_encoder(checkpoint)
    names = pruning_schedules.select_layers(pretrained.encoder)
    shares = {name: tf.Variable(0.0, trainable=False) for name in names}
    _, model, variables = pruned_classifier(checkpoint, {n: scores.GlobalShare(timing, shares[n]) for n in names})
    batches = [(batch(seed=0), LABELS)]
    expected = scores.fisher_scores(model, batches, model.loss)
    model.fit(batch(), LABELS, batch_size=3, epochs=1, verbose=0,
              callbacks=[scores.FisherPruningStep(timing, variables, batches, model.loss, shares)])
    masks = {name: mask.numpy() for name, mask in ((n, w.pruning_vars[0][1]) for n, w in
                                                   scores.find_wrappers(model).items())}
    kept = np.concatenate([expected[n][masks[n] == 1] for n in names])
    pruned = np.concatenate([expected[n][masks[n] == 0] for n in names])
    assert kept.min() >= pruned.max()  # one threshold across the kernels
    assert pruned.size / (pruned.size + kept.size) == pytest.approx(0.6, abs=1e-3)
    sparsities = {n: 1 - masks[n].mean() for n in names}
    assert max(sparsities.values()) - min(sparsities.values()) > 0.1, sparsities  # each kernel its own share
    for name in names:
        assert shares[name].numpy() == pytest.approx(sparsities[name], abs=1 / masks[name].size), name


def test_fisher_flags_apply_to_single_weights_only():
    RunConfig(target_sparsity=0.5, pruning_score="fisher", block_size=(1, 4))
    for settings in ({}, {"pruning_structure": "heads_and_neurons"}, {"sparsity_m_by_n": (2, 4)}):
        sparsity = {} if not settings else {"target_sparsity": 0.5}
        with pytest.raises(ConfigError, match="pruning_score=fisher.*pruning_structure=weights"):
            RunConfig(pruning_score="fisher", **sparsity, **settings)
    with pytest.raises(ConfigError, match="pruning_score=taylor.*pruning_score=fisher"):
        RunConfig(target_sparsity=0.5, pruning_score="taylor")
    with pytest.raises(ConfigError, match="pruning_score=fisher with prune_word_embeddings"):
        RunConfig(target_sparsity=0.5, pruning_score="fisher", prune_word_embeddings=True)
    with pytest.raises(ConfigError, match="pruning_score=fisher: scores in eager steps, which a TPU"):
        RunConfig(target_sparsity=0.5, pruning_score="fisher", distribution_strategy="tpu", padding="fixed")


def test_a_mask_update_without_scores_fails(checkpoint):
    _, model, _ = pruned_classifier(checkpoint, constant(0.5))  # score variables left at zero
    with pytest.raises(tf.errors.InvalidArgumentError, match="no score set before this mask update"):
        model.fit(batch(), LABELS, batch_size=3, epochs=1, verbose=0,
                  callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    with pytest.raises(ValueError, match="needs score_batches"):
        scores.FisherPruningStep(constant(0.5), {}, None, None)


def test_scores_must_name_every_pruned_layer(checkpoint):
    pretrained = bert_keras.load_encoder(checkpoint)
    names = pruning_schedules.select_layers(pretrained.encoder)
    with pytest.raises(ValueError, match="scores: one a pruned layer expected"):
        pruning_schedules.prune_encoder(pretrained.encoder, names, constant(0.5), scores={names[0]: tf.Variable(0.0)})


@pytest.mark.slow  # ~45 s; the default run's budget is 15 minutes: the Taylor score's replica test
# (test_structured_pruning) takes the same cross-replica path
def test_fisher_masks_and_zeros_are_the_same_on_every_replica(tmp_path):
    """Under MirroredStrategy (two logical CPUs): the replicas' gradients added up give one device's Fisher
    scores (a batch of 5 split 3 and 2); the callback sets the scores in cross-replica context, tfmot's
    update ranks them, and every replica's kernel holds the same zeros."""
    write_tf1_checkpoint(str(tmp_path), config=dict(SMALL_CONFIG, intermediate_size=48))
    script = r"""
import json, os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import tensorflow_model_optimization as tfmot, tf_keras as keras
import bert_keras, glue_tasks, pruning_schedules
from pruning_schedules import scores
from training import losses

def classifier(schedule):
    pretrained = bert_keras.load_encoder(sys.argv[1])
    names = pruning_schedules.select_layers(pretrained.encoder)
    variables = {n: tf.Variable(tf.zeros(pretrained.encoder.get_layer(n).weights[0].shape), trainable=False)
                 for n in names}
    encoder = pruning_schedules.prune_encoder(pretrained.encoder, names, schedule, scores=variables)
    model = bert_keras.build_classifier(encoder, 2, 0.0)
    model.compile(keras.optimizers.Adam(1e-2), losses.task_loss(glue_tasks.get_task("rte")))
    return pretrained.encoder, model, variables

schedule = tfmot.sparsity.keras.PolynomialDecay(0.25, 0.5, begin_step=1, end_step=3, frequency=1)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    encoder, model, variables = classifier(schedule)
rng = np.random.default_rng(0)
x = {"input_word_ids": rng.integers(5, 99, (6, 7)).astype(np.int32), "input_mask": np.ones((6, 7), np.int32),
     "input_type_ids": np.zeros((6, 7), np.int32)}
five = tf.data.Dataset.from_tensors(({k: v[:5] for k, v in x.items()}, np.arange(5) % 2))
mirrored_scores = scores.fisher_scores(model, five, model.loss)
_, single, _ = classifier(schedule)  # the same model on one device
single.set_weights(model.get_weights())
single_scores = scores.fisher_scores(single, five, single.loss)
score_error = max(float(np.abs(mirrored_scores[n] - single_scores[n]).max() / single_scores[n].max())
                  for n in single_scores)
scored = tf.data.Dataset.from_tensors((x, np.arange(6) % 2))  # split between the replicas as training's
callback = scores.FisherPruningStep(schedule, variables, scored, model.loss)
model.fit(x, np.arange(6) % 2, batch_size=6, epochs=4, verbose=0, callbacks=[callback])
same, zeros, sparsity = True, True, []
for name, wrapper in scores.find_wrappers(model).items():
    masks = [m.numpy() for m in strategy.experimental_local_results(wrapper.pruning_vars[0][1])]
    kernels = [k.numpy() for k in strategy.experimental_local_results(encoder.get_layer(name).kernel)]
    same &= all(np.array_equal(masks[0], m) for m in masks) and len(kernels) == 2
    zeros &= all(np.all(k[masks[0] == 0] == 0) for k in kernels)
    sparsity.append(float(1 - masks[0].mean()))
print(json.dumps({"same": bool(same), "zeros": bool(zeros), "score_error": score_error,
                  "sparsity": [min(sparsity), max(sparsity)]}))
"""
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                            timeout=300, cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr[-5000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["score_error"] < 1e-4, found  # a per-replica mean loss instead is off by about 2x
    assert found["same"] and found["zeros"], found
    assert found["sparsity"][0] == pytest.approx(0.5, abs=0.01) and found["sparsity"][1] == pytest.approx(0.5, abs=0.01)


@pytest.mark.slow  # ~100 s; the default run's budget is 15 minutes: the --distill pipeline test runs fisher
def test_train_py_prunes_by_fisher(minilm_dir, tmp_path):
    """Two steps of train.py on RTE, half of each kernel pruned at the first (on the pretrained weights):
    the zeros are not the smallest weights, as they would be by magnitude, and the run records its score."""
    run = str(tmp_path / "run")
    train_in_process(short_run_flags(minilm_dir, run, "--target_sparsity=0.5", "--pruning_score=fisher",
                                     "--max_steps=2", "--pruning_begin_step=1", "--pruning_end_step=2",
                                     "--pruning_frequency=1", "--initial_sparsity=0.5"))
    assert json.load(open(os.path.join(run, "train_config.json")))["pruning_score"] == "fisher"
    pretrained = bert_keras.load_encoder(minilm_dir)
    exported = {v.name: v.numpy() for v in tf.saved_model.load(os.path.join(run, "saved_model")).classifier_weights}
    for name in ("layer_0_attention_query", "layer_5_output"):
        kernel = exported[f"{name}/kernel:0"]
        assert np.mean(kernel == 0) == pytest.approx(0.5, abs=1e-3), name
        smallest = np.abs(pretrained.encoder.get_layer(name).kernel.numpy()) < np.median(
            np.abs(pretrained.encoder.get_layer(name).kernel.numpy()))
        overlap = np.mean(smallest[kernel == 0])  # 1.0 by magnitude
        assert 0.5 < overlap < 0.95, (name, overlap)
