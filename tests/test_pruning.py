"""tfmot prunes the encoder weight by weight, both ways its documentation shows."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

import bert_keras
from tf1_writer import SMALL_CONFIG, write_tf1_checkpoint

sparsity = tfmot.sparsity.keras
# tfmot exports no name for its wrapper class; this is where prune_low_magnitude gets it.
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    write_tf1_checkpoint(str(folder), config=dict(SMALL_CONFIG, intermediate_size=48))
    return str(folder)


@pytest.fixture
def pretrained(checkpoint):
    """A fresh encoder per test: pruning wrappers share (and zero) the wrapped layers' weights."""
    return bert_keras.load_encoder(checkpoint)


def inputs(batch=4, seq=6, seed=0):
    rng = np.random.default_rng(seed)
    return {"input_word_ids": rng.integers(5, 99, (batch, seq)).astype(np.int32),
            "input_mask": np.ones((batch, seq), np.int32),
            "input_type_ids": np.zeros((batch, seq), np.int32)}


def classifier(encoder):
    """The encoder nested in a small task model, as train.py will use it."""
    features = {n: keras.Input((None,), dtype="int32", name=n) for n in bert_keras.INPUT_NAMES}
    logits = keras.layers.Dense(2, name="head")(encoder(features)["pooled_output"])
    model = keras.Model(features, logits)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def fit_steps(model, steps=3):
    x = inputs(batch=8)
    y = np.arange(8) % 2
    model.fit(x, y, batch_size=4, epochs=1, steps_per_epoch=2, verbose=0,
              callbacks=[sparsity.UpdatePruningStep()])
    if steps > 2:
        model.fit(x, y, batch_size=4, epochs=1, steps_per_epoch=steps - 2, verbose=0,
                  callbacks=[sparsity.UpdatePruningStep()])


def wrap_chosen(encoder, names, **params):
    """tfmot's documented way to choose layers: clone_model with a clone_function."""
    def clone_function(layer):
        return sparsity.prune_low_magnitude(layer, **params) if layer.name in names else layer
    return keras.models.clone_model(encoder, clone_function=clone_function)


def zero_fraction(kernel):
    return float(np.mean(np.asarray(kernel) == 0))


def test_kernel_layers_are_every_dense_with_checkpoint_shapes(pretrained):
    c = pretrained.config
    names = bert_keras.kernel_layer_names(c)
    dense = [l.name for l in pretrained.encoder.layers if isinstance(l, keras.layers.Dense)]
    assert sorted(dense) == sorted(names)
    shapes = {n: tuple(pretrained.encoder.get_layer(n).kernel.shape) for n in names}
    assert shapes["layer_0_attention_query"] == (c.hidden_size, c.hidden_size)
    assert shapes["layer_1_intermediate"] == (c.hidden_size, c.intermediate_size)
    assert shapes["layer_1_output"] == (c.intermediate_size, c.hidden_size)
    assert shapes["pooler"] == (c.hidden_size, c.hidden_size)


def test_clone_function_wraps_every_kernel_and_reaches_50_percent(pretrained):
    names = bert_keras.kernel_layer_names(pretrained.config)
    pruned = wrap_chosen(pretrained.encoder, names,
                         pruning_schedule=sparsity.ConstantSparsity(0.5, begin_step=0, frequency=1))
    wrappers = {l.layer.name: l for l in pruned.layers if isinstance(l, PruneLowMagnitude)}
    assert set(wrappers) == set(names)
    # Wrapped but not yet pruned: outputs equal the encoder's (all-ones masks).
    x = inputs()
    np.testing.assert_allclose(pruned(x)["sequence_output"], pretrained.encoder(x)["sequence_output"], atol=1e-6)

    model = classifier(pruned)  # the encoder is a nested Model: UpdatePruningStep must reach it
    fit_steps(model)
    for name, wrapper in wrappers.items():
        assert zero_fraction(wrapper.layer.kernel) == pytest.approx(0.5, abs=1e-3), name

    stripped = sparsity.strip_pruning(pruned)
    assert not any(isinstance(l, PruneLowMagnitude) for l in stripped.layers)
    for name in names:
        assert zero_fraction(stripped.get_layer(name).kernel) == pytest.approx(0.5, abs=1e-3)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_array_equal(stripped(x, training=False)[key], pruned(x, training=False)[key])


def test_the_task_models_cls_only_view_holds_the_wrappers(pretrained):
    """bert_keras.build_classifier reads the pruned encoder through with_output_range: the same wrappers,
    stepped by UpdatePruningStep, pruning the same kernels."""
    names = bert_keras.kernel_layer_names(pretrained.config, pooler=False)
    pruned = wrap_chosen(pretrained.encoder, names,
                         pruning_schedule=sparsity.ConstantSparsity(0.5, begin_step=0, frequency=1))
    model = bert_keras.build_classifier(pruned, 2, 0.0)
    view = model.get_layer(pruned.name)
    wrappers = [l for l in view.layers if isinstance(l, PruneLowMagnitude)]
    assert {id(l) for l in wrappers} == {id(l) for l in pruned.layers if isinstance(l, PruneLowMagnitude)}
    assert len(wrappers) == len(names)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    fit_steps(model)
    for wrapper in wrappers:
        assert zero_fraction(wrapper.layer.kernel) == pytest.approx(0.5, abs=1e-3), wrapper.name
    x = inputs()
    np.testing.assert_allclose(view(x, training=False)["pooled_output"], pruned(x, training=False)["pooled_output"],
                               rtol=1e-5, atol=1e-6)


def test_prune_low_magnitude_on_the_whole_encoder(pretrained):
    pruned = sparsity.prune_low_magnitude(
        pretrained.encoder, pruning_schedule=sparsity.ConstantSparsity(0.5, begin_step=0, frequency=1))
    wrapped = [l for l in pruned.layers if not isinstance(l, keras.layers.InputLayer)]
    assert all(isinstance(l, PruneLowMagnitude) for l in wrapped)
    fit_steps(classifier(pruned))
    kernels = {l.layer.name: l.layer.kernel for l in wrapped if isinstance(l.layer, keras.layers.Dense)}
    assert set(kernels) == set(bert_keras.kernel_layer_names(pretrained.config))
    for name, kernel in kernels.items():
        assert zero_fraction(kernel) == pytest.approx(0.5, abs=1e-3), name
    x = inputs()
    stripped = sparsity.strip_pruning(pruned)
    np.testing.assert_array_equal(stripped(x, training=False)["pooled_output"],
                                  pruned(x, training=False)["pooled_output"])


def test_block_sparsity(pretrained):
    names = bert_keras.kernel_layer_names(pretrained.config)
    pruned = wrap_chosen(pretrained.encoder, names, block_size=(1, 4),
                         pruning_schedule=sparsity.ConstantSparsity(0.5, begin_step=0, frequency=1))
    fit_steps(classifier(pruned))
    for name in names:
        kernel = np.asarray(pruned.get_layer(f"prune_low_magnitude_{name}").layer.kernel)
        blocks = (kernel.reshape(kernel.shape[0], -1, 4) == 0)
        assert np.all(blocks.all(-1) | ~blocks.any(-1)), f"{name}: a 1x4 block is partly zero"
        assert zero_fraction(kernel) == pytest.approx(0.5, abs=0.05), name


def test_two_of_four_sparsity(pretrained):
    names = bert_keras.kernel_layer_names(pretrained.config)
    pruned = wrap_chosen(pretrained.encoder, names, sparsity_m_by_n=(2, 4),
                         pruning_schedule=sparsity.ConstantSparsity(0.5, begin_step=0, frequency=1))
    fit_steps(classifier(pruned))
    for name in names:
        kernel = np.asarray(pruned.get_layer(f"prune_low_magnitude_{name}").layer.kernel)
        # tfmot groups 4 consecutive weights along the input axis (the kernel's first).
        nonzero = (kernel.T.reshape(kernel.shape[1], -1, 4) != 0).sum(-1)
        assert nonzero.max() <= 2, name
        assert zero_fraction(kernel) == pytest.approx(0.5, abs=1e-3), name


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_pruning_under_mixed_precision(checkpoint, policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        pretrained = bert_keras.load_encoder(checkpoint)
        names = bert_keras.kernel_layer_names(pretrained.config)
        pruned = wrap_chosen(pretrained.encoder, names,
                             pruning_schedule=sparsity.ConstantSparsity(0.5, begin_step=0, frequency=1))
        model = classifier(pruned)
        fit_steps(model)
        for name in names:
            kernel = pruned.get_layer(f"prune_low_magnitude_{name}").layer.kernel
            assert kernel.dtype == tf.float32  # variables stay float32 under a mixed policy
            # tfmot ranks magnitudes as read in the compute dtype and keeps ties with the
            # threshold (pruning_impl.py: greater_equal); bfloat16's 8-bit mantissa makes a
            # few ties, so a kernel can end a handful of weights short of 50%. (prune_encoder reads
            # them in float32: exact, see test_pruning_schedules.py.)
            assert zero_fraction(kernel) == pytest.approx(0.5, abs=5e-3), name
    finally:
        keras.mixed_precision.set_global_policy("float32")
