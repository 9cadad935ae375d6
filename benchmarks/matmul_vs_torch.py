r"""The training step's dense matmuls alone: TensorFlow's kernels against torch's, in one process.

  python benchmarks/matmul_vs_torch.py [--tokens 768] [--hidden 384] [--intermediate 1536] [--layers 6]
      [--dtypes bfloat16,float32]

A BERT layer's dense layers (query, key, value, attention output: hidden x hidden; intermediate:
hidden x intermediate; output: intermediate x hidden) each cost three matmuls a training step:
forward (x @ W), the input's gradient (dy @ W^T) and the kernel's (x^T @ dy). This times each of them
at `--tokens` rows (batch x sequence; 768 = SST-2's 32 x 24) in TensorFlow (`tf.linalg.matmul` in
a `tf.function`, oneDNN) and in torch (`torch.matmul`, oneDNN), in bfloat16 and float32, on the same
two threads. Each timing is a mean over 16 different input pairs called back to back (TensorFlow:
one function call for all 16, one op at a time), so neither side's per-call Python cost counts.
Prints one JSON line: milliseconds a matmul, and the sum over a whole step's dense matmuls
(`--layers` layers) on each side with their ratio.
"""

import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as train.py: oneDNN's CPU kernels on AVX2 CPUs too
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from benchmarks.op_costs import milliseconds  # noqa: E402

flags.DEFINE_integer("tokens", 768, "Rows of every matmul: batch x sequence length.")
flags.DEFINE_integer("hidden", 384, "Hidden size (MiniLM-L6: 384).")
flags.DEFINE_integer("intermediate", 1536, "Feed-forward size (MiniLM-L6: 1536).")
flags.DEFINE_integer("layers", 6, "Transformer layers, for the per-step sum.")
flags.DEFINE_integer("repeats", 40, "Timed calls of the 16 matmuls on each side.")
flags.DEFINE_list("dtypes", ["bfloat16", "float32"],
                  "Compute dtypes to time. On a CPU without native bfloat16 (no avx512_bf16) both sides "
                  "emulate it, slowly: pass float32 alone there.")
FLAGS = flags.FLAGS

PAIRS = 16
# name: (a's shape, b's shape, transpose a, transpose b) for x: [tokens, k], W: [k, n], dy: [tokens, n]
PASSES = {"forward": lambda t, k, n: ((t, k), (k, n), False, False),
          "input_gradient": lambda t, k, n: ((t, n), (k, n), False, True),
          "kernel_gradient": lambda t, k, n: ((t, k), (t, n), True, False)}


def tensorflow_ms(a_list, b_list, transpose_a, transpose_b, repeats):
    def matmuls(a_list, b_list):
        return tf.stack([tf.linalg.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)[0, 0]
                         for a, b in zip(a_list, b_list)])

    return milliseconds(matmuls, a_list, b_list, repeats=repeats) / PAIRS


def torch_ms(a_list, b_list, transpose_a, transpose_b, repeats):
    a_list = [a.t() if transpose_a else a for a in a_list]
    b_list = [b.t() if transpose_b else b for b in b_list]
    for a, b in zip(a_list, b_list):
        torch.matmul(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        for a, b in zip(a_list, b_list):
            torch.matmul(a, b)
    return 1000 * (time.perf_counter() - start) / repeats / PAIRS


def main(argv):
    del argv
    threads = os.cpu_count()
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    torch.set_num_threads(threads)
    h, i = FLAGS.hidden, FLAGS.intermediate
    dense = {f"{h}x{h}": (h, h, 4), f"{h}x{i}": (h, i, 1), f"{i}x{h}": (i, h, 1)}  # (k, n, layers of it a layer)
    rng = np.random.default_rng(0)
    found = {}
    for dtype in FLAGS.dtypes:
        per_matmul, step = {}, {"tensorflow": 0.0, "torch": 0.0}
        for shape_name, (k, n, count) in dense.items():
            for pass_name, make in PASSES.items():
                a_shape, b_shape, transpose_a, transpose_b = make(FLAGS.tokens, k, n)
                a_list = [rng.standard_normal(a_shape, dtype=np.float32) for _ in range(PAIRS)]
                b_list = [rng.standard_normal(b_shape, dtype=np.float32) for _ in range(PAIRS)]
                tf_args = [[tf.cast(x, dtype) for x in xs] for xs in (a_list, b_list)]
                torch_args = [[torch.from_numpy(x).to(getattr(torch, dtype)) for x in xs] for xs in (a_list, b_list)]
                ms = {"tensorflow": tensorflow_ms(*tf_args, transpose_a, transpose_b, FLAGS.repeats),
                      "torch": torch_ms(*torch_args, transpose_a, transpose_b, FLAGS.repeats)}
                per_matmul[f"{shape_name} {pass_name}"] = {side: round(v, 4) for side, v in ms.items()}
                for side in step:
                    step[side] += ms[side] * count * FLAGS.layers
        found[dtype] = {"ms_per_matmul": per_matmul, "ms_per_step": {side: round(v, 4) for side, v in step.items()},
                        "tensorflow_over_torch": round(step["tensorflow"] / step["torch"], 3)}
    print(json.dumps({**found, "tokens": FLAGS.tokens, "threads": threads,
                      "machine": f"{platform.machine()}, {os.cpu_count()} cores", "tf": tf.__version__,
                      "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    app.run(main)
