r"""Length bucketing against fixed padding: padding waste and training throughput on one GLUE task.

  python benchmarks/input_pipeline.py --init_checkpoint DIR --glue_dir ../shared/glue --task sst2

Both runs train the same model (the encoder, a dense head on pooled_output, Adam) with
`model.fit` on the same tokenised examples, in the same process; only the batching differs.
Throughput is steady state: the first `--warmup_steps` steps (tracing, oneDNN kernel builds
for each new shape) are not timed. Prints one JSON line.
"""

import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as train.py: oneDNN's CPU kernels on AVX2 CPUs too
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

import bert_keras  # noqa: E402
import glue_tasks  # noqa: E402
from glue_tasks import inputs  # noqa: E402

flags.DEFINE_string("init_checkpoint", None, "Anything bert_keras.load_encoder takes.", required=True)
flags.DEFINE_string("glue_dir", None, "A folder in the original GLUE layout.", required=True)
flags.DEFINE_string("task", "sst2", "GLUE task.")
flags.DEFINE_integer("batch_size", 32, "Training batch size.")
flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
flags.DEFINE_integer("warmup_steps", 20, "Untimed steps before measuring.")
flags.DEFINE_integer("steps", 30, "Timed steps per padding mode.")
FLAGS = flags.FLAGS


class StepTimer(keras.callbacks.Callback):
    """Wall time and real (unpadded) tokens of the steps after `warmup`."""

    def __init__(self, warmup):
        super().__init__()
        self.warmup, self.times = warmup, []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch >= self.warmup:
            self.times.append(time.perf_counter() - self.start)


def padding_stats(batches):
    """Real and padded token counts over one epoch of batches."""
    real = padded = examples = 0
    for features, _ in batches:
        mask = features["input_mask"].numpy()
        real, padded, examples = real + mask.sum(), padded + mask.size, examples + len(mask)
    return {"examples": int(examples), "real_tokens": int(real), "padded_tokens": int(padded),
            "padding_share": round(1 - real / padded, 4)}


def throughput(pretrained, task, batches, real_tokens_per_example):
    encoder = pretrained.encoder
    features = {n: keras.Input((None,), dtype="int32", name=n) for n in bert_keras.INPUT_NAMES}
    logits = keras.layers.Dense(len(task.labels or ()) or 1)(encoder(features)["pooled_output"])
    model = keras.Model(features, logits)
    model.compile(keras.optimizers.Adam(2e-5), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    timer = StepTimer(FLAGS.warmup_steps)
    steps = FLAGS.warmup_steps + FLAGS.steps
    model.fit(batches.repeat(), steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
    seconds = float(np.sum(timer.times))
    examples = FLAGS.steps * FLAGS.batch_size
    return {"step_s": round(seconds / FLAGS.steps, 4), "examples_per_s": round(examples / seconds, 2),
            "real_tokens_per_s": round(examples * real_tokens_per_example / seconds, 1)}


def main(argv):
    del argv
    task = glue_tasks.get_task(FLAGS.task)
    pretrained = bert_keras.load_encoder(FLAGS.init_checkpoint)
    preprocessor = bert_keras.BertPreprocessor(pretrained.vocab_file, pretrained.lower_case, FLAGS.max_seq_length)
    start = time.perf_counter()
    tokenized = inputs.tokenize(glue_tasks.load(task, "train", glue_dir=FLAGS.glue_dir), task, preprocessor)
    count = int(tokenized.reduce(0, lambda n, _: n + 1))  # fills the cache
    tokenize_s = time.perf_counter() - start

    result = {"task": task.glue_name, "checkpoint": FLAGS.init_checkpoint, "batch_size": FLAGS.batch_size,
              "max_seq_length": FLAGS.max_seq_length, "train_examples": count, "tokenize_s": round(tokenize_s, 1),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}",
              "date": time.strftime("%Y-%m-%d")}
    for padding in ("fixed", "bucket"):
        batches = inputs.training_batches(tokenized, FLAGS.batch_size, FLAGS.max_seq_length, padding=padding, seed=0)
        stats = padding_stats(batches)
        result[padding] = {**stats, **throughput(pretrained, task, batches, stats["real_tokens"] / stats["examples"])}
    result["bucket_vs_fixed_examples_per_s"] = round(
        result["bucket"]["examples_per_s"] / result["fixed"]["examples_per_s"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
