"""training.optimization: AdamW with the decay in one XLA-compiled update, against Keras' own AdamW."""

from unittest import mock

import numpy as np
import tensorflow as tf


def test_adamw_with_decay_in_the_update_steps_like_keras_adamw():
    """training.optimization.make_optimizer (decay folded into the XLA update) against Keras' own AdamW on the same
    gradients: clipped at global norm 1, sparse embedding gradients, no decay on biases or LayerNorm."""
    import tf_keras as keras
    from training import optimization

    def model():
        keras.utils.set_random_seed(1)
        ids = keras.Input((3,), dtype="int32")
        x = keras.layers.Embedding(10, 4, name="word_embeddings")(ids)
        x = keras.layers.LayerNormalization(name="layer_norm")(keras.layers.Dense(4, name="dense")(x))
        return keras.Model(ids, x)

    ids = np.array([[1, 2, 3], [3, 4, 4]])
    schedule = optimization.WarmupLinearDecay(0.1, 1, 10)
    ours, reference = model(), model()
    optimizer = optimization.make_optimizer(schedule, 0.01)
    with mock.patch.object(optimization, "AdamW", keras.optimizers.AdamW):  # the same settings, Keras' own class
        keras_adamw = optimization.make_optimizer(schedule, 0.01)
    assert type(keras_adamw) is keras.optimizers.AdamW and type(optimizer) is optimization.AdamW
    for step in range(3):
        for m, opt in ((ours, optimizer), (reference, keras_adamw)):
            with tf.GradientTape() as tape:
                loss = 10.0 * tf.reduce_sum(tf.sin(m(ids) * (step + 1.0)))  # gradient norm well above 1
            grads = tape.gradient(loss, m.trainable_variables)
            assert isinstance(grads[0], tf.IndexedSlices)
            opt.apply_gradients(zip(grads, m.trainable_variables))
    for a, b in zip(ours.trainable_variables, reference.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=2e-6, atol=1e-7, err_msg=a.name)

    # A fresh optimizer and zero gradients: Adam's step is 0 (no moments yet), so only the decay
    # moves a weight, and never a bias or a norm.
    fresh, optimizer = model(), optimization.make_optimizer(0.1, 0.01)
    before = {v.name: v.numpy() for v in fresh.trainable_variables}
    optimizer.apply_gradients((tf.zeros_like(v), v) for v in fresh.trainable_variables)
    rate = 0.1 * 0.01
    for v in fresh.trainable_variables:
        decays = "kernel" in v.name or "embeddings" in v.name
        np.testing.assert_allclose(v.numpy(), before[v.name] * (1 - rate if decays else 1), rtol=1e-6, err_msg=v.name)


def test_sparse_gradients_reach_the_compiled_update_in_power_of_two_sizes():
    """An embedding gradient's row count changes with every batch; XLA compiles the update once per
    size it sees, so training.optimization.AdamW pads the rows (zeros at index 0) to the next power of two."""
    from training import optimization

    for rows, size in ((0, 1), (1, 1), (3, 4), (4, 4), (5, 8), (300, 512), (4097, 8192)):
        slices = tf.IndexedSlices(tf.fill([rows, 3], 2.0), tf.range(rows) + 1, tf.constant([9000, 3]))
        padded = optimization.pad_rows_to_power_of_two(slices)
        assert padded.values.shape == (size, 3) and padded.indices.shape == (size,)
        np.testing.assert_array_equal(padded.indices.numpy(), np.r_[np.arange(rows) + 1, np.zeros(size - rows)])
        np.testing.assert_array_equal(tf.convert_to_tensor(padded).numpy(), tf.convert_to_tensor(slices).numpy())

    embeddings = tf.Variable(tf.ones([50, 2]), name="word_embeddings")
    optimizer = optimization.make_optimizer(0.1, 0.01)
    traced = []
    with mock.patch.object(optimization.AdamW, "update_step",
                           lambda self, gradient, variable: traced.append(gradient.indices.shape[0])):
        for rows in range(3, 10):  # 3, 4 -> 4 rows; 5..8 -> 8; 9 -> 16
            gradient = tf.IndexedSlices(tf.ones([rows, 2]), tf.range(rows), tf.constant([50, 2]))
            optimizer.apply_gradients([(gradient, embeddings)])
    assert traced == [4, 8, 16]  # one trace, and one XLA compile, per size; not one per row count


def test_dense_updates_trace_and_compile_once_for_every_variable():
    """Keras traces and XLA-compiles one update function a variable (~100 for MiniLM-L6 before the
    first step); training.optimization.AdamW updates every dense gradient's variable in one compiled function."""
    import tf_keras as keras
    from training import optimization

    variables = [tf.Variable(tf.fill([3, 2], float(i)), name=f"dense_{i}/kernel") for i in range(5)]
    optimizer = optimization.make_optimizer(0.1, 0.01)
    for _ in range(3):
        optimizer.apply_gradients((tf.fill(v.shape, 0.5), v) for v in variables)
    traces = {f.__name__: f.__get__(optimizer, optimization.AdamW).experimental_get_tracing_count()
              for f in (optimization.AdamW._update_dense_xla, keras.optimizers.Optimizer._update_step_xla)}
    assert traces == {"_update_dense_xla": 1, "_update_step_xla": 0}
    assert int(optimizer.iterations) == 3
    # Every variable got its own update: same start and gradient, so they moved alike.
    for i, v in enumerate(variables):
        np.testing.assert_allclose(v.numpy() - i * np.ones([3, 2]) * (1 - 0.1 * 0.01) ** 3,
                                   variables[0].numpy(), atol=1e-6, err_msg=v.name)
