r"""Costs of single TensorFlow ops in the training step: GELU and dropout on one [512, 1536] activation, attention.

  python benchmarks/op_costs.py

GELU (exact erf form) in bfloat16 against float32 with two casts (what bert_keras.layers.gelu does),
and the random numbers of a dropout mask three ways: Keras' default (the stateful
`tf.random.uniform`), a `tf.random.Generator` (Keras' `rng_type="stateful"`) and
`tf.random.stateless_uniform`. The seed of the stateless draw is an argument of the function, as in
training: a constant seed lets Grappler fold the whole draw into a constant, which times nothing
(`stateless_uniform_constant_seed_ms` shows it). And attention's two products, forward and
backward, at MiniLM's shape on a 32 x 16 batch, as einsums against the transposes and batched
matmuls bert_keras.layers.DotProductAttention uses. Milliseconds per call (mean of 50 after 3
untimed), one JSON line.
"""

import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as train.py: oneDNN's CPU kernels on AVX2 CPUs too
import tensorflow as tf  # noqa: E402


def milliseconds(fn, *args, repeats=50):
    fn = tf.function(fn)
    for _ in range(3):
        fn(*args).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        result = fn(*args)
    result.numpy()
    return round(1000 * (time.perf_counter() - start) / repeats, 3)


def attention_einsum(query, key, value):  # (batch, seq, heads, head_size) in and out
    scores = tf.einsum("bqnd,bknd->bnqk", query, key)
    return tf.einsum("bnqk,bknd->bqnd", tf.nn.softmax(scores, axis=-1), value)


def attention_matmul(query, key, value):
    query, key, value = (tf.transpose(x, [0, 2, 1, 3]) for x in (query, key, value))  # (batch, heads, seq, size)
    scores = tf.matmul(query, key, transpose_b=True)
    return tf.transpose(tf.matmul(tf.nn.softmax(scores, axis=-1), value), [0, 2, 1, 3])


def forward_and_backward(attention):
    def step(query, key, value):
        with tf.GradientTape() as tape:
            tape.watch([query, key, value])
            output = attention(query, key, value)
        return tf.add_n([tf.reduce_sum(g) for g in tape.gradient(output, [query, key, value])])  # all three
    return step


def main():
    x = tf.cast(tf.random.normal((512, 1536)), tf.bfloat16)
    seed = tf.constant([1, 2])
    generator = tf.random.Generator.from_seed(1)
    heads = [tf.random.normal((32, 16, 12, 32)) for _ in range(3)]  # (batch, seq, heads, head_size)
    found = {
        "gelu_bfloat16_ms": milliseconds(lambda x: tf.nn.gelu(x, approximate=False), x),
        "gelu_in_float32_with_casts_ms": milliseconds(
            lambda x: tf.cast(tf.nn.gelu(tf.cast(x, tf.float32), approximate=False), x.dtype), x),
        "random_uniform_ms": milliseconds(lambda x: tf.random.uniform(tf.shape(x)), x),
        "generator_uniform_ms": milliseconds(lambda x: generator.uniform(tf.shape(x)), x),
        "stateless_uniform_ms": milliseconds(lambda x, s: tf.random.stateless_uniform(tf.shape(x), seed=s), x, seed),
        "stateless_uniform_constant_seed_ms": milliseconds(
            lambda x: tf.random.stateless_uniform(tf.shape(x), seed=[1, 2]), x),
        **{f"attention_{name}_ms": milliseconds(forward_and_backward(attention), *heads)
           for name, attention in (("einsum", attention_einsum), ("matmul", attention_matmul))},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "tf": tf.__version__,
        "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(found))


if __name__ == "__main__":
    main()
