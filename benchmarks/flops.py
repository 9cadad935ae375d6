"""FLOPs of a BERT training step, and this machine's matrix-multiply peak to hold them against."""

import time

import tensorflow as tf


def training_flops(config, batch, seq, num_outputs, output_range=None):
    """Matrix-multiply FLOPs of one training step on a [batch, seq] batch: 3x the forward pass.

    Per layer: the k and v projections (2 H^2) on every token; the q and output projections (2 H^2),
    the feed-forward (2 H I), attention scores and their weighted sum (2 S H each) on every query
    token: all of them, or in the last layer the first `output_range` (bert_keras.with_output_range,
    as train.py's classifier computes it); then pooler and head on [CLS]. The backward pass costs
    twice the forward's (gradients of inputs and of weights).
    """
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers

    def layer(queries):
        return 2 * batch * (seq * 2 * h * h + queries * (2 * h * h + 2 * h * i)) + 2 * 2 * batch * queries * seq * h
    last = seq if output_range is None else min(output_range, seq)
    return 3 * ((layers - 1) * layer(seq) + layer(last) + 2 * batch * h * h + 2 * batch * h * num_outputs)


def matmul_peak(dtype, n=2048, repeats=20):
    """FLOP/s of an n x n x n tf.matmul in `dtype` on this machine: the step's ceiling."""
    a, b = (tf.cast(tf.random.normal((n, n)), dtype) for _ in range(2))
    matmul = tf.function(tf.matmul)
    for _ in range(3):
        matmul(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        product = matmul(a, b)
    product.numpy()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)
