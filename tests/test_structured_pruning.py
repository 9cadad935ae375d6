"""pruning_schedules.structured: group scores and masks on a tiny encoder with known weights, honest zeros
while training, tfmot's schedule timing, mixed precision; then a short train.py run on the real MiniLM,
exported sliced: smaller, equal to the masked model, its encoder loadable, evaluate.py reading it."""

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
import glue_tasks
from bert_keras import slicing
from conftest import GLUE, REPO, computed_once, short_run_flags, train_in_process
from pruning_schedules import scores, structured
from test_encoder import batch
from test_serving import saved_functions
from test_train import tensorboard_points
from tf1_writer import write_tf1_checkpoint
from training import data, export, run_folder, tflite
from training.config import ConfigError, RunConfig

HEAD_KERNELS = ("attention_query", "attention_key", "attention_value")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    write_tf1_checkpoint(str(folder))  # hidden 32, 2 layers of 4 heads of 8, intermediate 37
    return str(folder)


def masked_classifier(checkpoint):
    pretrained = bert_keras.load_encoder(checkpoint)
    encoder, names = structured.wrap_encoder(pretrained.encoder, pretrained.config)
    keras.utils.set_random_seed(0)  # the head's initial weights: the same scores in every run
    model = bert_keras.build_classifier(encoder, 3, 0.0)
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return pretrained, model, names


def head_norms(encoder, i, heads=4, d=8):
    """Each head's L2 norm, one head at a time: its query, key, value columns and biases, its output rows."""
    norms = []
    for h in range(heads):
        cols = slice(h * d, (h + 1) * d)
        total = 0.0
        for kind in HEAD_KERNELS:
            kernel, bias = encoder.get_layer(f"layer_{i}_{kind}").get_weights()
            total += np.sum(kernel[:, cols] ** 2) + np.sum(bias[cols] ** 2)
        total += np.sum(encoder.get_layer(f"layer_{i}_attention_output").get_weights()[0][cols, :] ** 2)
        norms.append(np.sqrt(total))
    return np.array(norms)


def neuron_norms(encoder, i):
    kernel, bias = encoder.get_layer(f"layer_{i}_intermediate").get_weights()
    rows = encoder.get_layer(f"layer_{i}_output").get_weights()[0]
    return np.sqrt(np.sum(kernel ** 2, axis=0) + bias ** 2 + np.sum(rows ** 2, axis=1))


def test_wraps_the_six_kernels_of_every_layer(checkpoint):
    _, model, names = masked_classifier(checkpoint)
    assert names == [f"layer_{i}_{kind}" for i in range(2) for kind in bert_keras.encoder.LAYER_KERNELS]
    wrappers = structured.masked_layers(model)
    assert sorted(wrappers) == sorted(names)
    assert {(w.groups, w.axis) for n, w in wrappers.items() if "attention" in n} == {(4, 1), (4, 0)}
    assert {(w.groups, w.axis) for n, w in wrappers.items() if "attention" not in n} == {(37, 1), (37, 0)}


def test_scores_are_each_groups_norm(checkpoint):
    pretrained, model, _ = masked_classifier(checkpoint)
    by_layer = structured._by_layer(structured.masked_layers(model))
    for i in range(2):
        np.testing.assert_allclose(structured.group_scores(by_layer[i]["heads"]), head_norms(pretrained.encoder, i),
                                   rtol=1e-5)
        np.testing.assert_allclose(structured.group_scores(by_layer[i]["neurons"]),
                                   neuron_norms(pretrained.encoder, i), rtol=1e-5)


def test_per_layer_masks_keep_the_largest_groups_and_zero_the_rest(checkpoint):
    pretrained, model, _ = masked_classifier(checkpoint)
    expected_heads = {i: sorted(np.argsort(-head_norms(pretrained.encoder, i))[:2]) for i in range(2)}
    # 4 heads keep 2; 37 neurons keep 37 - round(18.5) = 19 (Python rounds half to even)
    expected_neurons = {i: sorted(np.argsort(-neuron_norms(pretrained.encoder, i))[:19]) for i in range(2)}
    kept = structured.update_masks(model, 0.5)
    heads, neurons = structured.kept_groups(model)
    assert heads == expected_heads and neurons == expected_neurons
    assert kept == {"heads": 0.5, "neurons": pytest.approx(19 / 37)}
    model(batch())  # a forward pass writes weights * mask
    for i in range(2):
        gone = [h for h in range(4) if h not in heads[i]]
        for kind in HEAD_KERNELS:
            kernel, bias = pretrained.encoder.get_layer(f"layer_{i}_{kind}").get_weights()
            for h in range(4):
                assert np.all(kernel[:, h * 8:(h + 1) * 8] == 0) == (h in gone)
                assert np.all(bias[h * 8:(h + 1) * 8] == 0) == (h in gone)
        output = pretrained.encoder.get_layer(f"layer_{i}_output").get_weights()[0]
        assert [j for j in range(37) if np.all(output[j] == 0)] == [j for j in range(37) if j not in neurons[i]]


def test_global_ranking_can_empty_a_layer_which_slicing_then_skips(checkpoint):
    pretrained, model, _ = masked_classifier(checkpoint)
    for kind in HEAD_KERNELS + ("attention_output",):  # layer 1's heads all weaker than layer 0's
        layer = pretrained.encoder.get_layer(f"layer_1_{kind}")
        layer.set_weights([w * 0.01 for w in layer.get_weights()])
    structured.update_masks(model, 0.5, "global")
    heads, neurons = structured.kept_groups(model)
    assert heads == {0: [0, 1, 2, 3], 1: []}
    assert sum(map(len, neurons.values())) == 74 - 37
    features = batch()
    masked = model(features)
    small, sliced, encoder = slicing.slice_classifier(model, pretrained.config, heads, neurons)
    assert small.layer_num_attention_heads == (4, 0)
    assert "layer_1_attention" not in [layer.name for layer in encoder.layers]
    np.testing.assert_allclose(sliced(features), masked, atol=1e-5)


def test_pruned_groups_stay_zero_through_training_and_stay_pruned(checkpoint):
    pretrained, model, _ = masked_classifier(checkpoint)
    structured.update_masks(model, 0.5)
    first, _ = structured.kept_groups(model)
    x, y = batch(), np.array([0, 1, 2])
    model.fit(x, y, epochs=3, verbose=0)
    model(x)
    query = pretrained.encoder.get_layer("layer_0_attention_query").kernel.numpy()
    gone = [h for h in range(4) if h not in first[0]]
    assert all(np.all(query[:, h * 8:(h + 1) * 8] == 0) for h in gone)
    # Their zeros score lowest, but a pruned group is out of the ranking whatever its score.
    layer = pretrained.encoder.get_layer("layer_0_attention_value")
    kernel, bias = layer.get_weights()
    kernel[:, gone[0] * 8:(gone[0] + 1) * 8] = 100.0
    layer.set_weights([kernel, bias])
    structured.update_masks(model, 0.75)
    heads, _ = structured.kept_groups(model)
    assert len(heads[0]) == 1 and set(heads[0]) <= set(first[0])


def scale_group(encoder, i, kind, j, factor):
    """Multiplies group j's weights (a head's four kernels' parts and biases, or a neuron's) by factor."""
    parts = (HEAD_KERNELS + ("attention_output",)) if kind == "heads" else ("intermediate", "output")
    width = 8 if kind == "heads" else 1
    cut = slice(j * width, (j + 1) * width)
    for part in parts:
        layer = encoder.get_layer(f"layer_{i}_{part}")
        kernel, bias = layer.get_weights()
        if part in ("attention_output", "output"):
            kernel[cut, :] *= factor
        else:
            kernel[:, cut] *= factor
            bias[cut] *= factor
        layer.set_weights([kernel, bias])


def test_taylor_scores_are_the_loss_derivative_by_each_groups_mask(checkpoint):
    """Against central differences: dL/dm is the loss' change as the group's weights scale by 1 +- eps."""
    pretrained, model, _ = masked_classifier(checkpoint)
    structured.update_masks(model, 0.25)  # one head of four pruned in each layer: it scores 0
    model(batch())
    rng = np.random.default_rng(1)
    batches = [(batch(seed=seed), rng.integers(0, 3, 3)) for seed in (0, 1)]
    scores = structured.taylor_scores(model, batches, model.loss)
    heads, neurons = structured.kept_groups(model)

    def loss(features, labels):
        return float(model.loss(labels, model(features, training=False)))

    eps = 1e-2
    for i, kind, j in [(0, "heads", heads[0][0]), (1, "heads", heads[1][1]), (0, "neurons", neurons[0][3]),
                       (1, "neurons", neurons[1][-1])]:
        derivatives = []
        for features, labels in batches:
            scale_group(pretrained.encoder, i, kind, j, 1 + eps)
            up = loss(features, labels)
            scale_group(pretrained.encoder, i, kind, j, (1 - eps) / (1 + eps))
            down = loss(features, labels)
            scale_group(pretrained.encoder, i, kind, j, 1 / (1 - eps))
            derivatives.append((up - down) / (2 * eps))
        expected = np.mean(np.abs(derivatives))
        assert expected > 1e-6, (i, kind, j)
        assert scores[i][kind][j] == pytest.approx(expected, rel=2e-2, abs=1e-7), (i, kind, j)
    assert all(scores[i]["heads"][h] == 0 for i in range(2) for h in range(4) if h not in heads[i])
    assert all(scores[i]["neurons"][j] == 0 for i in range(2) for j in range(37) if j not in neurons[i])


@pytest.mark.parametrize("first_scale", [scores.LOSS_SCALE, 2.0 ** 40])  # 2^40 overflows: halved to fit
def test_taylor_scores_under_mixed_float16_are_the_float32_ones(checkpoint, monkeypatch, first_scale):
    """The loss scaled (2^15, halved on overflow) and unscaled: the float16 backward pass gives the float32
    scores up to float16's precision."""
    monkeypatch.setattr(scores, "LOSS_SCALE", first_scale)
    batches = [(batch(seed=0), np.array([0, 1, 2]))]
    _, model, _ = masked_classifier(checkpoint)
    expected = structured.taylor_scores(model, batches, model.loss)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        _, model, _ = masked_classifier(checkpoint)
        model.compile(keras.mixed_precision.LossScaleOptimizer(keras.optimizers.Adam(1e-2)),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        found = structured.taylor_scores(model, batches, model.loss)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for i in range(2):
        for kind in ("heads", "neurons"):
            assert np.all(np.isfinite(found[i][kind]))
            np.testing.assert_allclose(found[i][kind], expected[i][kind], rtol=0.05,
                                       atol=0.01 * expected[i][kind].max())


def test_update_masks_ranks_by_given_scores(checkpoint):
    _, model, _ = masked_classifier(checkpoint)
    neurons = {i: np.arange(37, dtype=float) for i in range(2)}
    scores = {0: {"heads": np.array([4.0, 1.0, 3.0, 2.0]), "neurons": neurons[0]},
              1: {"heads": np.array([10.0, 20.0, 35.0, 40.0]), "neurons": neurons[1]}}
    structured.update_masks(model, 0.5, scores=scores)
    heads, kept_neurons = structured.kept_groups(model)
    assert heads == {0: [0, 2], 1: [2, 3]} and kept_neurons[0] == list(range(18, 37))
    # global: each layer's scores divided by their norm first, so layer 1's larger scale does not win
    # (unscaled, layer 1's four heads would all outrank layer 0's)
    _, model, _ = masked_classifier(checkpoint)
    structured.update_masks(model, 0.5, "global", scores)
    heads, _ = structured.kept_groups(model)
    assert heads == {0: [0, 2], 1: [2, 3]}


def test_callback_scores_by_taylor_on_its_batches(checkpoint):
    _, model, _ = masked_classifier(checkpoint)
    batches = [(batch(seed=0), np.array([0, 1, 2]))]
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=1, frequency=100)
    callback = structured.StructuredPruning(schedule, score="taylor", score_batches=batches, score_loss=model.loss)
    expected = structured.taylor_scores(model, batches, model.loss)
    taylor = {i: sorted(np.argsort(-expected[i]["heads"], kind="stable")[:2]) for i in range(2)}
    by_layer = structured._by_layer(structured.masked_layers(model))
    norms = {i: sorted(np.argsort(-structured.group_scores(by_layer[i]["heads"]), kind="stable")[:2])
             for i in range(2)}
    assert taylor != norms  # so that the masks below tell which score ranked them
    model.fit(batch(), np.array([0, 1, 2]), batch_size=3, epochs=1, verbose=0, callbacks=[callback])
    heads, _ = structured.kept_groups(model)
    assert heads == taylor
    with pytest.raises(ValueError, match="score=taylor needs score_batches"):
        structured.StructuredPruning(schedule, score="taylor")


def test_callback_updates_on_tfmots_steps(checkpoint):
    _, model, _ = masked_classifier(checkpoint)
    schedule = tfmot.sparsity.keras.PolynomialDecay(0.25, 0.75, begin_step=1, end_step=5, frequency=2)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(logs["heads_kept"])

    model.fit(batch(), np.array([0, 1, 2]), batch_size=3, epochs=6, verbose=0,
              callbacks=[structured.StructuredPruning(schedule), Record()])
    # Steps 1, 3, 5 update the masks to the schedule's sparsity there: 25%, then cubic to 75%.
    expected = []
    for step in range(1, 7):
        should, sparsity = schedule(tf.constant(step, tf.int64))
        if bool(should):
            keep = 4 - int(round(float(sparsity) * 4))
        expected.append(2 * keep)
    assert seen == expected and seen[0] == 6 and seen[-1] == 2


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_masks_under_mixed_precision(checkpoint, policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        pretrained, model, _ = masked_classifier(checkpoint)
        structured.update_masks(model, 0.5)
        model.fit(batch(), np.array([0, 1, 2]), epochs=2, verbose=0)
        model(batch())
    finally:
        keras.mixed_precision.set_global_policy("float32")
    layer = pretrained.encoder.get_layer("layer_0_intermediate")
    assert layer.kernel.dtype == tf.float32
    heads, neurons = structured.kept_groups(model)
    kernel = layer.kernel.numpy()
    assert [j for j in range(37) if np.all(kernel[:, j] == 0)] == [j for j in range(37) if j not in neurons[0]]


def test_an_already_sliced_encoder_is_refused(checkpoint):
    pretrained = bert_keras.load_encoder(checkpoint)
    small = slicing.sliced_config(pretrained.config, {0: [0]}, {})
    with pytest.raises(ValueError, match="already structurally pruned"):
        structured.wrap_encoder(bert_keras.build_encoder(small), small)


def test_config_refuses_taylor_without_structure():
    with pytest.raises(ConfigError, match="pruning_score=taylor.*heads_and_neurons"):
        RunConfig(target_sparsity=0.5, pruning_score="taylor")


@pytest.mark.parametrize("setting", [dict(block_size=(1, 4)), dict(sparsity_m_by_n=(2, 4)), dict(prune_pooler=True),
                                     dict(prune_layers=("pooler",))])
def test_config_refuses_weight_only_settings(setting):
    name = next(iter(setting))
    with pytest.raises(ConfigError, match=f"heads_and_neurons.*{name}"):
        RunConfig(target_sparsity=0.5, pruning_structure="heads_and_neurons", **setting)


# --- A short train.py run on the real MiniLM and RTE ---

STRUCTURED_RUN = ["--target_sparsity=0.5", "--pruning_structure=heads_and_neurons", "--pruning_score=taylor",
                  "--max_steps=8", "--pruning_begin_step=0", "--pruning_end_step=4", "--pruning_frequency=2",
                  "--save_checkpoints_steps=4", "--seed=3", "--keep_checkpoints",
                  "--export_tflite=float,dynamic_range,full_integer", "--export_xla"]


@pytest.fixture(scope="module")
def structured_run(minilm_dir, tmp_path_factory):
    folder = computed_once(tmp_path_factory, "structured", lambda folder: train_in_process(
        short_run_flags(minilm_dir, os.path.join(folder, "run"), *STRUCTURED_RUN)))
    return os.path.join(folder, "run")


def test_run_exports_a_sliced_model_equal_to_the_masked_one(structured_run):
    config = RunConfig.load(structured_run)
    task = data.task_of(config)
    masked, _, pretrained = export.restore_latest(structured_run, config, task)
    served = tf.saved_model.load(run_folder.saved_model_dir(structured_run))
    rng = np.random.default_rng(0)
    mask = (np.arange(40)[None] < np.array([40, 25, 9, 31])[:, None]).astype(np.int32)
    features = {"input_word_ids": (rng.integers(1000, 30000, mask.shape) * mask).astype(np.int32),
                "input_mask": mask, "input_type_ids": np.zeros_like(mask)}
    expected = masked(features, training=False).numpy()
    found = served.signatures["serve_token_ids"](**{k: tf.constant(v) for k, v in features.items()})["logits"]
    assert np.abs(found.numpy() - expected).max() < 1e-5
    # --export_xla: the sliced classifier runs compiled by XLA (the TFLite files are made from this export).
    assert any(f.attr["_XlaMustCompile"].b for f in saved_functions(run_folder.saved_model_dir(structured_run)))
    dense = bert_keras.load_encoder(config.init_checkpoint).encoder.count_params()
    sliced = sum(int(np.prod(v.shape)) for v in served.classifier_weights)
    assert sliced < 0.8 * dense  # half of the heads' and neurons' weights, more than half the encoder's


def test_run_writes_the_structure_and_a_loadable_encoder(structured_run):
    report = json.load(open(os.path.join(structured_run, "sparsity.json")))
    assert [(e["heads"], e["neurons"]) for e in report["layers"]] == [(6, 768)] * 6
    assert report["totals"]["pruned"]["sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert "heads kept" in open(os.path.join(structured_run, "sparsity.txt")).read()
    loaded = bert_keras.load_encoder(run_folder.encoder_dir(structured_run))
    assert loaded.config.layer_num_attention_heads == (6,) * 6
    assert loaded.config.layer_intermediate_sizes == (768,) * 6
    served = {v.name: v.numpy() for v in tf.saved_model.load(
        run_folder.saved_model_dir(structured_run)).classifier_weights}
    for weight in loaded.encoder.weights:
        np.testing.assert_array_equal(weight.numpy(), served[weight.name])
    results = json.load(open(os.path.join(structured_run, "eval_results.json")))
    assert results["footprint"]["parameters"] == sum(served[name].size for name in served)
    points, _ = tensorboard_points(run_folder.tensorboard_dir(structured_run))
    assert points[("train", "batch_heads_kept")][-1] == (8, 36.0)
    assert points[("train", "batch_neurons_kept")][-1] == (8, 6 * 768.0)


def test_backups_hold_the_masks(structured_run):
    _, checkpoint = run_folder.latest_checkpoint(structured_run)
    names = [name for name, _ in tf.train.list_variables(checkpoint)]
    assert sum("group_mask" in name for name in names) == 36, names[:20]


@pytest.mark.slow  # ~75 s; the default run's budget is 15 minutes, and restore_latest is tested above
def test_evaluate_py_exports_the_latest_checkpoint_sliced(structured_run):
    result = subprocess.run([sys.executable, "evaluate.py", "--task=rte", f"--model={structured_run}",
                             f"--glue_dir={GLUE}"],
                            capture_output=True, text=True, timeout=600, cwd=REPO,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    step, _ = run_folder.latest_checkpoint(structured_run)
    encoder = bert_keras.load_encoder(os.path.join(structured_run, f"eval_step_{step}", "encoder"))
    assert encoder.config.layer_num_attention_heads == (6,) * 6


def test_masks_and_zeros_are_the_same_on_every_replica(tmp_path):
    """Under MirroredStrategy (two logical CPUs): taylor scores from the replicas' gradients added up
    equal one device's (a batch of 5 split 3 and 2); the callback sets the masks in cross-replica
    context, and each replica's forward pass writes weights * mask into its own copy."""
    write_tf1_checkpoint(str(tmp_path))
    script = r"""
import json, os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import tensorflow_model_optimization as tfmot, tf_keras as keras
import bert_keras, glue_tasks
from pruning_schedules import scores, structured
from training import losses

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    pretrained = bert_keras.load_encoder(sys.argv[1])
    encoder, _ = structured.wrap_encoder(pretrained.encoder, pretrained.config)
    model = bert_keras.build_classifier(encoder, 2, 0.0)
    model.compile(keras.optimizers.Adam(1e-2), losses.task_loss(glue_tasks.get_task("rte")))
rng = np.random.default_rng(0)
x = {"input_word_ids": rng.integers(5, 99, (6, 7)).astype(np.int32), "input_mask": np.ones((6, 7), np.int32),
     "input_type_ids": np.zeros((6, 7), np.int32)}
five = tf.data.Dataset.from_tensors(({k: v[:5] for k, v in x.items()}, np.arange(5) % 2))
mirrored_scores = structured.taylor_scores(model, five, model.loss)
alone = bert_keras.load_encoder(sys.argv[1])  # the same model on one device
single = bert_keras.build_classifier(structured.wrap_encoder(alone.encoder, alone.config)[0], 2, 0.0)
single.compile(keras.optimizers.Adam(1e-2), losses.task_loss(glue_tasks.get_task("rte")))
single.set_weights(model.get_weights())
single_scores = structured.taylor_scores(single, five, single.loss)
# float sums in another order: each layer's error against its largest score (a score summed from
# cancelling terms may be small, and its own relative error large)
score_error = max(float(np.abs(mirrored_scores[i][k] - single_scores[i][k]).max() / single_scores[i][k].max())
                  for i in single_scores for k in ("heads", "neurons"))
schedule = tfmot.sparsity.keras.PolynomialDecay(0.25, 0.5, begin_step=1, end_step=3, frequency=1)
scored = tf.data.Dataset.from_tensors((x, np.arange(6) % 2))  # split between the replicas as training's
pruning = structured.StructuredPruning(schedule, score="taylor", score_batches=scored, score_loss=model.loss)
model.fit(x, np.arange(6) % 2, batch_size=6, epochs=4, verbose=0, callbacks=[pruning])
wrappers = structured.masked_layers(model)
masks = [[m.numpy() for m in strategy.experimental_local_results(w.mask)] for w in wrappers.values()]
query = strategy.experimental_local_results(pretrained.encoder.get_layer("layer_0_attention_query").kernel)
heads, _ = structured.kept_groups(model)
gone = [h for h in range(4) if h not in heads[0]]
print(json.dumps({"same": all(np.array_equal(r[0], m) for r in masks for m in r), "replicas": len(query),
                  "score_error": score_error,
                  "kept": {str(i): len(v) for i, v in heads.items()},
                  "zero": [bool(np.all(q.numpy()[:, h * 8:(h + 1) * 8] == 0)) for q in query for h in gone]}))
"""
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                            timeout=300, cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr[-5000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["same"] and found["replicas"] == 2 and found["kept"] == {"0": 2, "1": 2}, found
    assert found["score_error"] < 1e-4, found  # a mean per replica instead gives ~0.6
    assert found["zero"] and all(found["zero"]), found


def test_tflite_models_serve_the_savedmodels_logits_on_real_dev_sentences(structured_run):
    directory = os.path.join(structured_run, tflite.TFLITE_DIR)
    settings = json.load(open(os.path.join(directory, tflite.SETTINGS_FILE)))
    assert settings["label_names"] == ["entailment", "not_entailment"] and settings["max_seq_length"] == 64
    preprocessor = bert_keras.BertPreprocessor(os.path.join(directory, "vocab.txt"), settings["lower_case"],
                                               settings["max_seq_length"])
    dev = glue_tasks.read_split(glue_tasks.get_task("rte"), "validation", GLUE)
    served = tf.saved_model.load(run_folder.saved_model_dir(structured_run)).signatures["serve_token_ids"]
    models = {q: tflite.TFLiteClassifier(os.path.join(directory, f"{q}.tflite")) for q in tflite.QUANTIZATIONS}
    worst = 0.0
    for i in range(0, 64, 16):  # 64 real pairs, 16 at a time, padded to the batch's longest
        features = preprocessor.pad(preprocessor.pack_ragged([tf.constant(list(dev["sentence1"][i:i + 16])),
                                                              tf.constant(list(dev["sentence2"][i:i + 16]))]))
        expected = served(**features)["logits"].numpy()
        worst = max(worst, float(np.abs(models["float"](features) - expected).max()))
        for q in ("dynamic_range", "full_integer"):
            assert np.abs(models[q](features) - expected).max() < 0.1, q  # close, not equal: 8-bit
    assert worst < 1e-4
    # Raw text through tokenizer.tflite (the first 64 pairs: FastBertTokenizer splits them as BERT does)
    pairs = [list(dev["sentence1"][:64]), list(dev["sentence2"][:64])]
    found = tflite.TFLiteTextClassifier(os.path.join(directory, "float.tflite"))(*pairs)
    expected = bert_keras.TextClassifier(run_folder.saved_model_dir(structured_run))(*pairs)
    np.testing.assert_allclose(found["probabilities"], expected["probabilities"], atol=1e-4)
    assert found["label"] == expected["label"] and settings["text_fields"] == ["sentence1", "sentence2"]
    sizes = {q: os.path.getsize(os.path.join(directory, f"{q}.tflite")) for q in tflite.QUANTIZATIONS}
    assert sizes["dynamic_range"] < 0.3 * sizes["float"] and sizes["full_integer"] < 0.3 * sizes["float"]
    integer = models["full_integer"].interpreter.get_tensor_details()
    assert sum(t["dtype"] == np.int8 for t in integer) > len(integer) / 2  # activations too, not the weights alone
    results = json.load(open(os.path.join(structured_run, "eval_results.json")))["tflite"]
    assert set(results) == set(tflite.QUANTIZATIONS) and all("eval_accuracy" in r for r in results.values())
    assert results["float"]["eval_accuracy"] == json.load(open(os.path.join(structured_run, "eval_results.json")))[
        "eval_accuracy"]


def test_evaluate_py_evaluates_a_tflite_file_on_raw_text(structured_run):
    model = os.path.join(structured_run, tflite.TFLITE_DIR, "dynamic_range.tflite")
    result = subprocess.run([sys.executable, "evaluate.py", "--task=rte", f"--model={model}", f"--glue_dir={GLUE}"],
                            capture_output=True, text=True, timeout=600, cwd=REPO,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    output = os.path.join(structured_run, tflite.TFLITE_DIR, "eval_dynamic_range")
    found = json.load(open(os.path.join(output, "eval_results.json")))
    assert found["footprint"]["tflite_bytes"] == os.path.getsize(model)
    # train.py's figure came from BertPreprocessor's ids in length buckets; here tokenizer.tflite's ids,
    # batches of 64 (dynamic range quantises each batch's activations on the fly): at most 2 of 277 apart.
    trained = json.load(open(os.path.join(structured_run, "eval_results.json")))["tflite"]["dynamic_range"]
    assert abs(found["eval_accuracy"] - trained["eval_accuracy"]) <= 2 / 277 + 1e-9, (found, trained)
    assert len(open(os.path.join(output, "predictions_validation.tsv")).read().splitlines()) == 278


def test_tflite_flag_is_checked():
    with pytest.raises(ConfigError, match="export_tflite=int4: expected one or more of float"):
        RunConfig(export_tflite=("int4",))
