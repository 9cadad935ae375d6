r"""Training throughput of train.py's own step: examples/s and tokens/s at steady state.

  python benchmarks/train_throughput.py --init_checkpoint DIR --task sst2 --glue_dir DIR --steps N \
      --mixed_precision float32|bfloat16 [--fixed_length] [--target_sparsity 0.5] [--xla]

The model, optimizer, loss, dtype policy, pruning wrappers and batches are train.py's
(`train.build_model`, `glue_tasks.inputs.training_batches`), and every train.py flag is accepted;
`--fixed_length` pads every batch to `--max_seq_length` (train.py's `--padding fixed`). The first
`--warmup_steps` steps are not timed (tracing, oneDNN kernels for each new batch shape); the next
`--steps` are. Prints one JSON line: the machine, the setting, `examples_per_s`, `tokens_per_s`
(real tokens, padding excluded) and `padded_tokens_per_s`.
"""

import json
import math
import os
import platform
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402

import bert_keras  # noqa: E402
import glue_tasks  # noqa: E402
import train  # noqa: E402  (its flags are this script's too)
from glue_tasks import inputs  # noqa: E402

flags.DEFINE_integer("steps", 100, "Timed training steps.")
flags.DEFINE_integer("warmup_steps", 30, "Untimed steps first (tracing, kernel builds for each shape).")
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


def batch_sizes(batches, first, last):
    """Examples, real tokens and padded tokens of batches [first, last)."""
    examples = real = padded = 0
    for features, _ in batches.skip(first).take(last - first):
        mask = features["input_mask"]
        examples, real, padded = examples + int(mask.shape[0]), real + int(tf.reduce_sum(mask)), padded + int(
            tf.size(mask))
    return examples, real, padded


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
    per_epoch = inputs.batches_per_epoch(tokenized, FLAGS.train_batch_size, FLAGS.max_seq_length, padding=padding)
    batches = inputs.training_batches(tokenized, FLAGS.train_batch_size, FLAGS.max_seq_length, padding=padding,
                                      seed=FLAGS.seed, epochs=math.ceil(total / per_epoch))
    examples, real, padded = batch_sizes(batches, FLAGS.warmup_steps, total)  # the same batches fit will time

    model, pruned_layers, _ = train.build_model(pretrained, task, float(FLAGS.learning_rate[0]), total,
                                                int(total * FLAGS.warmup_proportion))
    timer = SteadyStateTimer(FLAGS.warmup_steps)
    callbacks = [timer] + ([tfmot.sparsity.keras.UpdatePruningStep()] if pruned_layers else [])
    model.fit(batches, steps_per_epoch=total, epochs=1, verbose=0, callbacks=callbacks)
    seconds = timer.end - timer.start
    print(json.dumps({
        "task": task.glue_name, "checkpoint": FLAGS.init_checkpoint, "policy": policy, "padding": padding,
        "xla": FLAGS.xla, "target_sparsity": FLAGS.target_sparsity, "batch_size": FLAGS.train_batch_size,
        "max_seq_length": FLAGS.max_seq_length, "warmup_steps": FLAGS.warmup_steps, "steps": FLAGS.steps,
        "seconds": round(seconds, 3), "step_s": round(seconds / FLAGS.steps, 4),
        "examples_per_s": round(examples / seconds, 2), "tokens_per_s": round(real / seconds, 1),
        "padded_tokens_per_s": round(padded / seconds, 1), "padding_share": round(1 - real / padded, 4),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}",
        "date": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    app.run(main)
