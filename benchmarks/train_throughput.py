r"""Training throughput of train.py's own step, or of its peer's: examples/s and tokens/s at steady state.

  python benchmarks/train_throughput.py --init_checkpoint DIR --task sst2 --glue_dir DIR --steps N \
      --mixed_precision float32|bfloat16|float16 [--fixed_length] [--target_sparsity 0.5] [--xla] \
      [--framework transformers]

The model, optimizer, loss, dtype policy, pruning wrappers and batches are train.py's
(`train.build_model`, `glue_tasks.inputs.training_batches`), and every train.py flag is accepted;
`--fixed_length` pads every batch to `--max_seq_length` (train.py's `--padding fixed`). The first
`--warmup_steps` steps are not timed (tracing, oneDNN kernels for each new batch shape); the next
`--steps` are. Prints one JSON line: the machine, the setting, `examples_per_s`, `tokens_per_s`
(real tokens, padding excluded), `padded_tokens_per_s`, `input_pipeline_step_s` (a batch's time in
the input pipeline alone, timed apart) and `input_pipeline_share` (that against the step), and the
achieved FLOP rate: the step's matrix-multiply FLOPs (3x the forward pass's, padding included, as
each side computes them) per second, beside this machine's matrix-multiply peak in the step's
compute dtype, measured in the same process just before (`flops_share_of_peak`).

`--framework transformers` times the peer instead: transformers' PyTorch BertForSequenceClassification
on the same weights (a Hugging Face folder as --init_checkpoint) and the very same batches, with
BERT's recipe (benchmarks/hf_peer.py): float32, or torch.autocast to the policy's 16-bit type
(bfloat16, or float16 with loss scaling), on the CUDA GPU when torch sees one.
"""

import json
import math
import os
import platform
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as train.py: oneDNN's CPU kernels on AVX2 CPUs too
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402

import bert_keras  # noqa: E402
import glue_tasks  # noqa: E402
import train  # noqa: E402  (its flags are this script's too)
from benchmarks.flops import matmul_peak, training_flops  # noqa: E402
from glue_tasks import inputs  # noqa: E402

flags.DEFINE_integer("steps", 100, "Timed training steps.")
flags.DEFINE_integer("warmup_steps", 30, "Untimed steps first (tracing, kernel builds for each shape).")
flags.DEFINE_enum("framework", "train.py", ["train.py", "transformers"],
                  "Whose training step to time: train.py's, or transformers' PyTorch peer on the same batches.")
flags.DEFINE_bool("fixed_length", False, "Pad every batch to --max_seq_length (train.py's --padding fixed).")
FLAGS = flags.FLAGS


class SteadyStateTimer(keras.callbacks.Callback):
    """Wall time from the end of step `warmup` to the end of the last step."""

    def __init__(self, warmup):
        super().__init__()
        self.warmup, self.start, self.end = warmup, None, None

    def on_train_batch_end(self, batch, logs=None):  # logs arrive as numbers: the step has finished
        if batch == self.warmup - 1:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def batch_sizes(batches, first, last, config, num_outputs):
    """Examples, real tokens, padded tokens and training FLOPs of batches [first, last).

    FLOPs as each side computes them: train.py's last layer on [CLS] alone, the peer's on every token.
    """
    output_range = 1 if FLAGS.framework == "train.py" else None
    examples = real = padded = flops = 0
    for features, _ in batches.skip(first).take(last - first):
        mask = features["input_mask"]
        batch, seq = mask.shape
        examples, real, padded = examples + batch, real + int(tf.reduce_sum(mask)), padded + batch * seq
        flops += training_flops(config, batch, seq, num_outputs, output_range)
    return examples, real, padded, flops


def pipeline_step_seconds(batches, count):
    """Mean seconds the input pipeline alone takes to make each of the first `count` batches.

    A pass of its own, after batch_sizes' pass has filled the tokenisation cache, so that it times
    what train.py's live pipeline does beside each step (the peer's batches are all made before its
    clock starts).
    """
    start = time.perf_counter()
    for _ in batches.take(count):
        pass
    return (time.perf_counter() - start) / count


def time_train_py(pretrained, task, batches, total):
    """Seconds of steps [warmup_steps, total) of train.py's model.fit."""
    model, pruned_layers, _ = train.build_model(pretrained, task, float(FLAGS.learning_rate[0]), total,
                                                int(total * FLAGS.warmup_proportion))
    timer = SteadyStateTimer(FLAGS.warmup_steps)
    callbacks = [timer] + ([tfmot.sparsity.keras.UpdatePruningStep()] if pruned_layers else [])
    model.fit(batches, steps_per_epoch=total, epochs=1, verbose=0, callbacks=callbacks)
    return timer.end - timer.start


def time_transformers(task, batches, policy):
    """Seconds of steps [warmup_steps, total) of the PyTorch peer on the same batches, and its versions."""
    if FLAGS.target_sparsity > 0 or FLAGS.xla:
        raise app.UsageError("--framework transformers times the dense step only, without XLA")
    import torch  # only the peer needs PyTorch
    import transformers
    from benchmarks import hf_peer

    torch.manual_seed(FLAGS.seed)
    precision = keras.mixed_precision.Policy(policy).compute_dtype  # float32, bfloat16 or float16
    steps = [hf_peer.to_torch(features, labels, task.is_regression) for features, labels in batches.as_numpy_iterator()]
    model = hf_peer.load_model(FLAGS.init_checkpoint, train.num_outputs(task), task.is_regression)
    model.train()
    optimizer, scheduler = hf_peer.make_optimizer(model, float(FLAGS.learning_rate[0]), FLAGS.weight_decay,
                                                  int(len(steps) * FLAGS.warmup_proportion), len(steps))
    scaler = hf_peer.grad_scaler(precision)
    for i, (features, labels) in enumerate(steps):
        if i == FLAGS.warmup_steps:
            hf_peer.synchronize()
            start = time.perf_counter()
        loss = hf_peer.training_step(model, optimizer, scheduler, scaler, features, labels,
                                     is_regression=task.is_regression, precision=precision)
    loss.item()  # waits for the last step
    versions = f"torch {torch.__version__}, transformers {transformers.__version__}, on {hf_peer.device().type}"
    return time.perf_counter() - start, versions


def main(argv):
    del argv
    if FLAGS.warmup_steps < 1 or FLAGS.steps < 1:
        raise app.UsageError("--warmup_steps and --steps must be at least 1")
    task = glue_tasks.get_task(FLAGS.task)
    policy = train.choose_policy(FLAGS.mixed_precision)
    keras.utils.set_random_seed(FLAGS.seed)
    keras.mixed_precision.set_global_policy(policy)
    pretrained = bert_keras.load_encoder(FLAGS.init_checkpoint)
    preprocessor = bert_keras.BertPreprocessor(pretrained.vocab_file, pretrained.lower_case, FLAGS.max_seq_length)
    tokenized = inputs.tokenize(train.load_split(task, "train"), task, preprocessor)
    padding = "fixed" if FLAGS.fixed_length else FLAGS.padding
    total = FLAGS.warmup_steps + FLAGS.steps
    shape = dict(padding=padding, bucket_width=FLAGS.bucket_width)
    per_epoch = inputs.batches_per_epoch(tokenized, FLAGS.train_batch_size, FLAGS.max_seq_length, **shape)
    batches = inputs.training_batches(tokenized, FLAGS.train_batch_size, FLAGS.max_seq_length, **shape,
                                      seed=FLAGS.seed, epochs=math.ceil(total / per_epoch))
    # The same batches the timed steps will see.
    examples, real, padded, flops = batch_sizes(batches, FLAGS.warmup_steps, total, pretrained.config,
                                                train.num_outputs(task))
    peak = matmul_peak(keras.mixed_precision.Policy(policy).compute_dtype)
    pipeline_step_s = pipeline_step_seconds(batches, total)  # the tokenised examples are cached by now

    if FLAGS.framework == "transformers":
        seconds, versions = time_transformers(task, batches.take(total), policy)
    else:
        seconds, versions = time_train_py(pretrained, task, batches, total), f"TF {tf.__version__}"
    print(json.dumps({
        "framework": FLAGS.framework, "task": task.glue_name, "checkpoint": FLAGS.init_checkpoint,
        "policy": policy, "padding": padding, "bucket_width": FLAGS.bucket_width if padding == "bucket" else None,
        "xla": FLAGS.xla, "target_sparsity": FLAGS.target_sparsity, "batch_size": FLAGS.train_batch_size,
        "max_seq_length": FLAGS.max_seq_length, "warmup_steps": FLAGS.warmup_steps, "steps": FLAGS.steps,
        "examples": examples, "tokens": real, "padded_tokens": padded,
        "seconds": round(seconds, 3), "step_s": round(seconds / FLAGS.steps, 4),
        "examples_per_s": round(examples / seconds, 2), "tokens_per_s": round(real / seconds, 1),
        "padded_tokens_per_s": round(padded / seconds, 1), "padding_share": round(1 - real / padded, 4),
        "input_pipeline_step_s": round(pipeline_step_s, 6),
        "input_pipeline_share": round(pipeline_step_s * FLAGS.steps / seconds, 4),
        "tflops_per_s": round(flops / seconds / 1e12, 4), "matmul_peak_tflops_per_s": round(peak / 1e12, 4),
        "flops_share_of_peak": round(flops / seconds / peak, 3),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "versions": versions,
        "date": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    app.run(main)
