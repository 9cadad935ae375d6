r"""A/B of one change to train.py's step, in one process.

  python benchmarks/step_ab.py --init_checkpoint DIR [--ab optimizer|fused_update|output_range] \
      [--mixed_precision bfloat16] \
      [--seq_length 24] [--rounds 8]

`--ab optimizer`: Keras' AdamW against train.AdamW (weight decay in the XLA update).
`--ab fused_update`: Keras' update, one XLA-compiled function a variable, against train.AdamW's
one function for every dense gradient.
`--ab output_range`: the classifier over the whole encoder against bert_keras.build_classifier's
view, whose last layer computes [CLS] alone (bert_keras.with_output_range).

Builds train.py's model twice (`train.build_model`), once a variant, on one synthetic batch
of 32 x `--seq_length` tokens, then alternates 15-step `model.fit` calls between them and reports the
median step time of each. Alternating in one process matters on a shared machine: step times here
switch for stretches between two levels (about 245 and 340 ms in bfloat16 at 24 tokens) whatever
runs, so two separate processes can differ by a third with no change between them.
"""

import contextlib
import json
import os
import platform
import statistics
import sys
import time
from unittest import mock

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as train.py: oneDNN's CPU kernels on AVX2 CPUs too
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

import bert_keras  # noqa: E402
import glue_tasks  # noqa: E402
import train  # noqa: E402  (its flags are this script's too)

flags.DEFINE_integer("seq_length", 24, "Tokens of every example of the synthetic batch (SST-2's are ~25).")
flags.DEFINE_integer("rounds", 8, "Alternations; each runs 15 steps of each variant.")
flags.DEFINE_enum("ab", "optimizer", ["optimizer", "fused_update", "output_range"], "The change to time: before, then after.")
FLAGS = flags.FLAGS

# Each A/B: {name: a context in which train.build_model builds the model that way}, before, then as is.
AB = {
    "optimizer": {"keras_adamw": lambda: mock.patch.object(train, "AdamW", keras.optimizers.AdamW),
                  "train_adamw": contextlib.nullcontext},
    "fused_update": {"per_variable": lambda: mock.patch.object(
                         train.AdamW, "_distributed_apply_gradients_fn",
                         keras.optimizers.AdamW._distributed_apply_gradients_fn),
                     "fused": contextlib.nullcontext},
    "output_range": {"whole_encoder": lambda: mock.patch.object(bert_keras.classifier, "with_output_range",
                                                                lambda encoder, output_range: encoder),
                     "cls_only_last_layer": contextlib.nullcontext},
}


class StepTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.ends = [time.perf_counter()]

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def update_traces(optimizer):
    """How many XLA-compiled update functions the optimizer traced: one a variable, or a fused few."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # under mixed_float16's loss scaling
    functions = (keras.optimizers.Optimizer._update_step_xla, train.AdamW._update_dense_xla)
    return sum(f.__get__(optimizer, type(optimizer)).experimental_get_tracing_count() for f in functions)


def main(argv):
    del argv
    policy = train.choose_policy(FLAGS.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    task = glue_tasks.get_task("sst2")
    shape = (FLAGS.train_batch_size, FLAGS.seq_length)
    features = {"input_word_ids": tf.random.uniform(shape, 1000, 20000, tf.int32, seed=1),
                "input_mask": tf.ones(shape, tf.int32), "input_type_ids": tf.zeros(shape, tf.int32)}
    labels = tf.random.uniform(shape[:1], 0, 2, tf.int32, seed=2)
    batches = tf.data.Dataset.from_tensors((features, labels)).repeat()
    models = {}
    for name, variant in AB[FLAGS.ab].items():
        with variant():  # the first fit traces the step: inside, for variants that patch a method
            model, _, _ = train.build_model(bert_keras.load_encoder(FLAGS.init_checkpoint), task, 2e-5, 100000, 100)
            model.fit(batches, steps_per_epoch=20, epochs=1, verbose=0)  # tracing, kernels
        models[name] = model
    encoders = {name: next(layer for layer in model.layers if isinstance(layer, keras.Model))
                for name, model in models.items()}
    # What each variant built, so that a reader (and the test) can check the A/B compares what it says.
    built = {name: {"optimizer": f"{type(model.optimizer).__module__}.{type(model.optimizer).__name__}",
                    "update_traces": update_traces(model.optimizer),
                    "last_layer_tokens": next((layer.count for layer in encoders[name].layers
                                               if isinstance(layer, bert_keras.layers.LeadingTokens)), None)}
             for name, model in models.items()}
    steps = {name: [] for name in models}
    for _ in range(FLAGS.rounds):
        for name, model in models.items():
            times = StepTimes()
            model.fit(batches, steps_per_epoch=15, epochs=1, verbose=0, callbacks=[times])
            steps[name] += [1000 * (b - a) for a, b in zip(times.ends[:-1], times.ends[1:])]
    medians = {name: round(statistics.median(s), 1) for name, s in steps.items()}
    before, after = medians
    print(json.dumps({"ab": FLAGS.ab, "policy": policy, "batch": list(shape), "steps_each": len(steps[after]),
                      "built": built,
                      "median_step_ms": medians, f"{after}_over_{before}": round(medians[after] / medians[before], 3),
                      "machine": f"{platform.machine()}, {os.cpu_count()} cores", "tf": tf.__version__,
                      "date": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    app.run(main)
