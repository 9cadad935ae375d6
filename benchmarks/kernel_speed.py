r"""Kernel micro-benchmarks of a BERT layer's training step: TensorFlow's ops against torch's, and the
forms bert_keras chose against the ones it did not.

  python benchmarks/kernel_speed.py [--batch_size 32 --seq_length 24] [--hidden 384 --intermediate 1536 --heads 12]
      [--layers 6] [--dtypes bfloat16,float32]

- Dense matmuls: each of a layer's dense layers (query, key, value, attention output: hidden x
  hidden; intermediate: hidden x intermediate; output: intermediate x hidden) costs three matmuls a
  step: forward (x @ W), the input's gradient (dy @ W^T) and the kernel's (x^T @ dy). Each is timed
  in TensorFlow (`tf.linalg.matmul` in a tf.function) and in torch (`torch.matmul`), both oneDNN on
  the same threads, and summed over `--layers` layers: how much of a gap between the two training
  steps the matmul kernels themselves, which train.py does not choose, account for.
- Attention's two products and softmax, forward and backward: the transposes and batched matmuls of
  bert_keras.layers.DotProductAttention against the einsums they replaced (oneDNN's einsum path is
  slower at these small shapes).
- GELU under a 16-bit policy: in the 16-bit type against float32 between two casts, which
  bert_keras.layers.gelu does.

A matmul's time is a mean over 16 different input pairs called back to back (TensorFlow: one function
call for all 16), so neither side's per-call Python cost counts; attention's and GELU's, a mean over
`--repeats` calls of one tf.function. Each pair of forms is checked to give the same result. On a
CPU without native bfloat16 (no avx512_bf16) both sides emulate it, slowly: pass `--dtypes float32`
there. Prints one JSON line.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root
from benchmarks import common  # noqa: E402  (first: TensorFlow's environment)

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

FLAGS = flags.FLAGS
INPUTS = 16  # different inputs a timing cycles through
# name: (a's shape, b's shape, transpose a, transpose b) for x: [tokens, k], W: [k, n], dy: [tokens, n]
PASSES = {"forward": lambda t, k, n: ((t, k), (k, n), False, False),
          "input_gradient": lambda t, k, n: ((t, n), (k, n), False, True),
          "kernel_gradient": lambda t, k, n: ((t, k), (t, n), True, False)}


def milliseconds(fn, *args, repeats):
    """Mean milliseconds of one call of tf.function(fn)(*args), after 3 untimed calls."""
    fn = tf.function(fn)
    for _ in range(3):
        fn(*args).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        result = fn(*args)
    result.numpy()
    return 1000 * (time.perf_counter() - start) / repeats


def tensorflow_matmul_ms(a_list, b_list, transpose_a, transpose_b, repeats):
    def matmuls(a_list, b_list):
        return tf.stack([tf.linalg.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)[0, 0]
                         for a, b in zip(a_list, b_list)])
    return milliseconds(matmuls, a_list, b_list, repeats=repeats) / INPUTS


def torch_matmul_ms(a_list, b_list, repeats):
    for a, b in zip(a_list, b_list):
        torch.matmul(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        for a, b in zip(a_list, b_list):
            torch.matmul(a, b)
    return 1000 * (time.perf_counter() - start) / repeats / INPUTS


def dense_matmuls(dtype, rng):
    """{"ms_per_matmul": {"KxN pass": {side: ms}}, "ms_per_step": {side: ms}, ratio, the products' difference}."""
    h, i, tokens = FLAGS.hidden, FLAGS.intermediate, FLAGS.batch_size * FLAGS.seq_length
    shapes = {f"{h}x{h}": (h, h, 4), f"{h}x{i}": (h, i, 1), f"{i}x{h}": (i, h, 1)}  # (k, n, such layers a layer)
    per_matmul, step, difference = {}, {"tensorflow": 0.0, "torch": 0.0}, 0.0
    for shape_name, (k, n, count) in shapes.items():
        for pass_name, make in PASSES.items():
            a_shape, b_shape, transpose_a, transpose_b = make(tokens, k, n)
            a_list = [rng.standard_normal(a_shape, dtype=np.float32) for _ in range(INPUTS)]
            b_list = [rng.standard_normal(b_shape, dtype=np.float32) for _ in range(INPUTS)]
            tf_a, tf_b = ([tf.cast(x, dtype) for x in xs] for xs in (a_list, b_list))
            torch_a = [(a.t() if transpose_a else a) for a in (torch.from_numpy(x).to(getattr(torch, dtype))
                                                               for x in a_list)]
            torch_b = [(b.t() if transpose_b else b) for b in (torch.from_numpy(x).to(getattr(torch, dtype))
                                                               for x in b_list)]
            ms = {"tensorflow": tensorflow_matmul_ms(tf_a, tf_b, transpose_a, transpose_b, FLAGS.repeats),
                  "torch": torch_matmul_ms(torch_a, torch_b, FLAGS.repeats)}
            per_matmul[f"{shape_name} {pass_name}"] = {side: round(v, 4) for side, v in ms.items()}
            for side in step:
                step[side] += ms[side] * count * FLAGS.layers
            ours = tf.cast(tf.linalg.matmul(tf_a[0], tf_b[0], transpose_a=transpose_a, transpose_b=transpose_b),
                           tf.float32).numpy()
            theirs = torch.matmul(torch_a[0], torch_b[0]).float().numpy()
            difference = max(difference, float(np.abs(ours - theirs).max() / np.abs(theirs).max()))
    return {"ms_per_matmul": per_matmul, "ms_per_step": {side: round(v, 4) for side, v in step.items()},
            "tensorflow_over_torch": round(step["tensorflow"] / step["torch"], 3),
            "max_relative_difference": difference}


def attention_einsum(query, key, value):  # (batch, seq, heads, head_size) in and out
    scores = tf.einsum("bqnd,bknd->bnqk", query, key)
    return tf.einsum("bnqk,bknd->bqnd", tf.nn.softmax(scores, axis=-1), value)


def attention_matmul(query, key, value):
    query, key, value = (tf.transpose(x, [0, 2, 1, 3]) for x in (query, key, value))  # (batch, heads, seq, size)
    scores = tf.matmul(query, key, transpose_b=True)
    return tf.transpose(tf.matmul(tf.nn.softmax(scores, axis=-1), value), [0, 2, 1, 3])


def forward_and_backward(attention):
    def step(query, key, value):  # the output and the three gradients, for a loss sum(output * weights)
        with tf.GradientTape() as tape:
            tape.watch([query, key, value])
            output = attention(query, key, value)
            weights = tf.reshape(tf.cast(tf.range(tf.size(output)) % 7, output.dtype), tf.shape(output))
            loss = tf.reduce_sum(output * weights)
        return [output, *tape.gradient(loss, [query, key, value])]
    return step


def attention(dtype):
    """Milliseconds of each form, forward and backward, and how far apart their results are."""
    shape = (FLAGS.batch_size, FLAGS.seq_length, FLAGS.heads, FLAGS.hidden // FLAGS.heads)
    query, key, value = (tf.cast(tf.random.normal(shape, seed=i), dtype) for i in range(3))
    found, results = {}, {}
    for name, form in (("einsum", attention_einsum), ("matmul", attention_matmul)):
        step = forward_and_backward(form)
        found[f"{name}_ms"] = round(milliseconds(
            lambda *qkv: tf.add_n([tf.reduce_sum(t) for t in step(*qkv)]), query, key, value,
            repeats=FLAGS.repeats), 4)
        results[name] = np.concatenate([tf.cast(t, tf.float32).numpy().ravel() for t in step(query, key, value)])
    found["matmul_over_einsum"] = round(found["matmul_ms"] / found["einsum_ms"], 3)
    found["max_relative_difference"] = float(np.abs(results["matmul"] - results["einsum"]).max()
                                             / np.abs(results["einsum"]).max())
    return found


def gelu(dtype):
    """GELU (exact erf form) on a [tokens, intermediate] activation: in `dtype`, and in float32 between casts."""
    x = tf.cast(tf.random.normal((FLAGS.batch_size * FLAGS.seq_length, FLAGS.intermediate), seed=0), dtype)
    forms = {"native": lambda x: tf.nn.gelu(x, approximate=False),
             "float32_with_casts": lambda x: tf.cast(tf.nn.gelu(tf.cast(x, tf.float32), approximate=False), x.dtype)}
    found = {f"{name}_ms": round(milliseconds(form, x, repeats=FLAGS.repeats), 4) for name, form in forms.items()}
    found["float32_with_casts_over_native"] = round(found["float32_with_casts_ms"] / found["native_ms"], 3)
    native, cast = (tf.cast(form(x), tf.float32).numpy() for form in forms.values())
    found["max_abs_difference"] = float(np.abs(native - cast).max())
    return found


def define_flags():
    flags.DEFINE_integer("batch_size", 32, "Examples a batch.")
    flags.DEFINE_integer("seq_length", 24, "Tokens an example (32 x 24: an SST-2 batch).")
    flags.DEFINE_integer("hidden", 384, "Hidden size (MiniLM-L6: 384).")
    flags.DEFINE_integer("intermediate", 1536, "Feed-forward size (MiniLM-L6: 1536).")
    flags.DEFINE_integer("heads", 12, "Attention heads (MiniLM-L6: 12).")
    flags.DEFINE_integer("layers", 6, "Transformer layers, for the per-step sum of the dense matmuls.")
    flags.DEFINE_integer("repeats", 40, "Timed calls of each timing (a matmul's: of its 16 input pairs).")
    flags.DEFINE_list("dtypes", ["bfloat16", "float32"], "Compute dtypes to time (GELU: the 16-bit ones).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    threads = os.cpu_count()
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    found = {}
    for dtype in FLAGS.dtypes:
        found[dtype] = {"dense_matmuls": dense_matmuls(dtype, rng), "attention": attention(dtype)}
        if dtype != "float32":
            found[dtype]["gelu"] = gelu(dtype)
    common.print_json({**found, "batch_size": FLAGS.batch_size, "seq_length": FLAGS.seq_length,
                       "hidden": FLAGS.hidden, "intermediate": FLAGS.intermediate, "heads": FLAGS.heads,
                       "layers": FLAGS.layers, "threads": threads})


if __name__ == "__main__":
    define_flags()
    app.run(main)
