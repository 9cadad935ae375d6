r"""train.py's training step against the peer's, alternated in one process, by batch length.

  HF_HUB_OFFLINE=1 python benchmarks/step_by_length.py --init_checkpoint DIR --task sst2 --glue_dir DIR \
      [--mixed_precision bfloat16] [--batches 120] [--rounds 4]

Takes `--batches` batches of `--task`'s training set from train.py's pipeline (shuffled, length
buckets), then times train.py's step (`train.build_model`, `model.fit` over those batches) and the
PyTorch peer's (benchmarks/hf_peer.py) on the very same batches, one pass of each in turn,
`--rounds` times, after an untimed pass of each (every batch shape traced and its kernels built).
One process and alternating passes: on a shared machine whose speed drifts, both sides see the
same drift.

Prints one JSON line: each side's mean step over all timed passes (wall time of whole passes), their
ratio, and for each batch length the median step of each side (train.py's from the start to the
end of the batch in Keras' callbacks, the peer's around its step), which shows where a gap lies.
"""

import collections
import functools
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as train.py: oneDNN's CPU kernels on AVX2 CPUs too
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

import bert_keras  # noqa: E402
import glue_tasks  # noqa: E402
import train  # noqa: E402  (its flags are this script's too)
from glue_tasks import inputs  # noqa: E402

flags.DEFINE_integer("batches", 120, "Batches of the task's shuffled, length-bucketed training set to time.")
flags.DEFINE_integer("rounds", 4, "Timed passes of each side over the batches, alternated.")
FLAGS = flags.FLAGS


class BatchTimes(keras.callbacks.Callback):
    """Seconds from the start to the end of each batch (a CPU step is synchronous), and of the whole pass."""

    def on_train_begin(self, logs=None):
        self.steps, self.pass_start = [], time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):  # logs arrive as numbers: the step has finished
        self.steps.append(time.perf_counter() - self.start)

    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter() - self.pass_start


def train_py_side(pretrained, task, batches):
    """A function that runs one pass of train.py's step over `batches`: (per-step seconds, pass seconds)."""
    model, _, _ = train.build_model(pretrained, task, float(FLAGS.learning_rate[0]), 100_000, 10_000)
    dataset = functools.reduce(tf.data.Dataset.concatenate, [tf.data.Dataset.from_tensors(b) for b in batches])

    def one_pass():
        times = BatchTimes()
        model.fit(dataset, epochs=1, verbose=0, callbacks=[times])
        return times.steps, times.seconds
    return one_pass


def peer_side(task, batches, policy):
    """The same for the PyTorch peer (transformers' BertForSequenceClassification, hf_peer's recipe)."""
    import torch  # only the peer needs PyTorch
    from benchmarks import hf_peer

    torch.manual_seed(FLAGS.seed)
    precision = keras.mixed_precision.Policy(policy).compute_dtype
    steps = [hf_peer.to_torch(features, labels, task.is_regression) for features, labels in batches]
    model = hf_peer.load_model(FLAGS.init_checkpoint, train.num_outputs(task), task.is_regression)
    model.train()
    optimizer, scheduler = hf_peer.make_optimizer(model, float(FLAGS.learning_rate[0]), FLAGS.weight_decay,
                                                  10_000, 100_000)
    scaler = hf_peer.grad_scaler(precision)

    def one_pass():
        times, pass_start = [], time.perf_counter()
        for features, labels in steps:
            start = time.perf_counter()
            hf_peer.training_step(model, optimizer, scheduler, scaler, features, labels,
                                  is_regression=task.is_regression, precision=precision)
            hf_peer.synchronize()
            times.append(time.perf_counter() - start)
        return times, time.perf_counter() - pass_start
    return one_pass, f"torch {torch.__version__} on {hf_peer.device().type}"


def main(argv):
    del argv
    if FLAGS.batches < 1 or FLAGS.rounds < 1:
        raise app.UsageError("--batches and --rounds must be at least 1")
    task = glue_tasks.get_task(FLAGS.task)
    policy = train.choose_policy(FLAGS.mixed_precision)
    keras.utils.set_random_seed(FLAGS.seed)
    keras.mixed_precision.set_global_policy(policy)
    pretrained = bert_keras.load_encoder(FLAGS.init_checkpoint)
    preprocessor = bert_keras.BertPreprocessor(pretrained.vocab_file, pretrained.lower_case, FLAGS.max_seq_length)
    tokenized = inputs.tokenize(train.load_split(task, "train"), task, preprocessor)
    batches = list(inputs.training_batches(tokenized, FLAGS.train_batch_size, FLAGS.max_seq_length,
                                           padding=FLAGS.padding, bucket_width=FLAGS.bucket_width, seed=FLAGS.seed,
                                           epochs=2).take(FLAGS.batches).as_numpy_iterator())
    lengths = [features["input_word_ids"].shape[1] for features, _ in batches]

    peer_pass, versions = peer_side(task, batches, policy)
    sides = {"train.py": train_py_side(pretrained, task, batches), "transformers": peer_pass}
    for one_pass in sides.values():
        one_pass()  # untimed: tracing, each shape's kernels
    by_length = {name: collections.defaultdict(list) for name in sides}
    pass_seconds = {name: 0.0 for name in sides}
    for round_ in range(FLAGS.rounds):
        for name in (list(sides) if round_ % 2 == 0 else list(reversed(sides))):
            steps, seconds = sides[name]()
            assert len(steps) == len(batches), (name, len(steps))
            pass_seconds[name] += seconds
            for length, step in zip(lengths, steps):
                by_length[name][length].append(step)

    def ms(seconds):
        return round(1000 * seconds, 1)
    mean_step = {name: pass_seconds[name] / (FLAGS.rounds * len(batches)) for name in sides}
    print(json.dumps({
        "task": task.glue_name, "policy": policy, "batch_size": FLAGS.train_batch_size, "batches": len(batches),
        "rounds": FLAGS.rounds, "mean_step_ms": {name: ms(s) for name, s in mean_step.items()},
        "train_py_over_transformers": round(mean_step["train.py"] / mean_step["transformers"], 3),
        "by_length": {str(length): {"batches": lengths.count(length),
                                    **{f"{name}_median_ms": ms(statistics.median(by_length[name][length]))
                                       for name in sides}}
                      for length in sorted(set(lengths))},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "versions": f"TF {tf.__version__}, {versions}",
        "date": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    app.run(main)
