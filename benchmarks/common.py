"""What the benchmarks share: the machine they ran on, a training step's FLOPs and the matmul peak to
hold them against, a step timer for model.fit, one JSON line.

Importing this module imports bert_keras first, which sets TensorFlow's environment (Keras 2,
oneDNN) as train.py runs with it.
"""

import importlib.metadata
import json
import os
import platform
import time

import bert_keras  # noqa: F401  (first: TensorFlow's environment, before TensorFlow loads)
import tensorflow as tf
import tf_keras as keras



def machine():
    """This machine as a benchmark row records it: CPU, cores, the flags bfloat16 needs, versions."""
    cpu, cpu_flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    cpu = value.strip()
                elif key.strip() == "flags":  # after the first processor's model name
                    cpu_flags = set(value.split())
                    break
    except OSError:
        pass
    return {"cpu": cpu, "arch": platform.machine(), "cores": os.cpu_count(),
            # avx512_bf16 or amx_bf16: bfloat16 is native and `--mixed_precision auto` picks it.
            **{flag: flag in cpu_flags for flag in ("avx512f", "avx512_bf16", "amx_bf16")},
            "gpu": [d.name for d in tf.config.list_physical_devices("GPU")],
            "versions": {name: _version(name) for name in ("tensorflow", "tf-keras", "torch", "transformers")}}


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def print_json(record):
    """Prints `record` with the machine and today's date as one JSON line, the benchmark's result; returns it."""
    record = {**record, "machine": machine(), "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(record), flush=True)
    return record


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
    """FLOP/s of an n x n x n tf.matmul in `dtype` on this machine: the ceiling a step is held against."""
    a, b = (tf.cast(tf.random.normal((n, n)), dtype) for _ in range(2))
    matmul = tf.function(tf.matmul)
    for _ in range(3):
        matmul(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        product = matmul(a, b)
    product.numpy()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


class StepTimer(keras.callbacks.Callback):
    """Wall time of model.fit's steps after the first `warmup` (tracing, kernels built for each new shape)."""

    def __init__(self, warmup):
        super().__init__()
        self.warmup, self.steps_done, self.start, self.end = warmup, 0, None, None

    def on_train_batch_end(self, batch, logs=None):  # logs arrive as numbers: the step has finished
        self.steps_done += 1
        if self.steps_done == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()

    @property
    def timed_steps(self):
        return self.steps_done - self.warmup

    @property
    def seconds(self):
        return self.end - self.start
