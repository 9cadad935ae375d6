r"""Fine-tunes BERT on a GLUE task with model.fit, pruning it by magnitude on the way if asked.

  python train.py --task sst2                                   # BERT-Base, GLUE from tfds (downloads)
  python train.py --task rte --glue_dir ../shared/glue --init_checkpoint DIR --target_sparsity 0.8
  python train.py --task all --learning_rate 2e-5,3e-5,4e-5,5e-5   # the seed's sweep, a folder a run

Each run writes to its output folder: `train_config.json` (the flags), TensorBoard logs
(`tensorboard --logdir OUTPUT_DIR`), a resumable checkpoint in `backup/` (rerun the same command
after an interruption), `eval_results.txt` / `.json` on the dev split(s), `sparsity.txt` / `.json`,
and `saved_model/`, which serves raw text (see bert_keras/serving.py).
"""

import json
import math
import os
import socket
import sys
import time

PROCESS_START = time.time()  # before TensorFlow's import: the time to the first step counts start-up
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Keras 2: tfmot and tensorflow-hub need it
# TensorFlow runs oneDNN's CPU kernels by default only on CPUs with AVX-512 VNNI/BF16 or AMX; on AVX2 ones
# they train 7-19% faster than its default Eigen kernels (benchmarks/README.md). TF_ENABLE_ONEDNN_OPTS=0 opts out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from absl import app, flags, logging  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402

import bert_keras  # noqa: E402
import glue_tasks  # noqa: E402
import pruning_schedules  # noqa: E402
from bert_keras.serving import export_text_classifier  # noqa: E402
from glue_tasks import inputs  # noqa: E402

# --- Flags (names as google-research/bert's run_classifier.py where it has one) ---
flags.DEFINE_string("task", None, f"GLUE task ({', '.join(glue_tasks.TASK_NAMES[:-1])}) or 'all'.")
flags.DEFINE_string("init_checkpoint", "uncased_L-12_H-768_A-12",
                    "Pretrained BERT: a name Google released (downloaded), or a TF1, Hugging Face or "
                    "converted folder (see bert_keras.load_encoder).")
flags.DEFINE_string("data_dir", None, "tensorflow-datasets data folder (default ~/tensorflow_datasets).")
flags.DEFINE_string("tfds_manual_dir", None, "GLUE's own download files, for an offline tfds build.")
flags.DEFINE_string("glue_dir", None, "Read GLUE's original files from this folder instead of tfds.")
flags.DEFINE_string("output_dir", None, "Where runs go (default output/TASK, or output/ with --task all).")
flags.DEFINE_list("learning_rate", ["2e-5"], "Peak learning rate(s); several run one after the other, "
                  "each into OUTPUT_DIR/lr_VALUE.")
flags.DEFINE_float("num_train_epochs", 3.0, "Epochs of training data.")
flags.DEFINE_integer("max_steps", None, "Stop after this many steps (a cap, for short runs).")
flags.DEFINE_integer("train_batch_size", 32, "Training batch size.")
flags.DEFINE_integer("eval_batch_size", 64, "Evaluation batch size.")
flags.DEFINE_integer("max_seq_length", 128, "Maximum tokens of [CLS] A [SEP] B [SEP].")
flags.DEFINE_float("warmup_proportion", 0.1, "Share of the steps with a linear learning-rate warm-up.")
flags.DEFINE_float("weight_decay", 0.01, "AdamW weight decay (not on LayerNorm or biases).")
flags.DEFINE_integer("seed", 42, "Random seed (weights of the head, dropout, shuffling).")
flags.DEFINE_integer("save_checkpoints_steps", 1000, "Back up the training state every N steps (and each epoch).")
flags.DEFINE_integer("log_steps", 50, "Write training loss and learning rate to TensorBoard every N steps.")
flags.DEFINE_enum("mixed_precision", "auto", ["auto", "float16", "bfloat16", "float32"],
                  "auto: mixed_float16 on a CUDA GPU, mixed_bfloat16 on a CPU with native bfloat16, "
                  "float32 otherwise.")
flags.DEFINE_bool("xla", False, "Compile the training step with XLA.")
flags.DEFINE_enum("distribution_strategy", "default", ["default", "mirrored", "multi_worker_mirrored", "tpu"],
                  "default: one device; mirrored: every GPU of this machine (without one, its logical CPUs: "
                  "--cpu_devices); multi_worker_mirrored: several machines, each described by TF_CONFIG; "
                  "tpu: a Cloud TPU (--tpu). --train_batch_size is the global batch.")
flags.DEFINE_string("tpu", None, "The TPU's name or grpc:// address for --distribution_strategy tpu "
                    "('local' on a TPU VM).")
flags.DEFINE_integer("cpu_devices", 1, "Split the CPU into this many logical devices, for mirrored training "
                     "on a machine without GPUs (tests, demos: they share the same cores).", lower_bound=1)
flags.DEFINE_enum("padding", "bucket", ["bucket", "fixed"],
                  "bucket: pad each batch to its length bucket; fixed: pad to max_seq_length (XLA, TPU).")
flags.DEFINE_integer("bucket_width", inputs.BUCKET_WIDTH,
                     "--padding bucket: tokens between length buckets; batches are padded to a multiple of it. "
                     "Narrower pads less but makes more batch shapes (with --xla each shape compiles once).",
                     lower_bound=1)
# Pruning (Zhu & Gupta, 2017): magnitude pruning of the encoder's kernels while fine-tuning.
flags.DEFINE_float("target_sparsity", 0.0, "Final share of zeros in each pruned kernel; 0 trains dense.")
flags.DEFINE_enum("pruning_schedule", "polynomial_decay", ["polynomial_decay", "constant"],
                  "tfmot's PolynomialDecay (power 3) or ConstantSparsity.")
flags.DEFINE_float("initial_sparsity", 0.0, "PolynomialDecay's starting sparsity.")
flags.DEFINE_integer("pruning_begin_step", None, "First pruning step (default: end of warm-up).")
flags.DEFINE_integer("pruning_end_step", None, "Step reaching target_sparsity (default: 70% of the run).")
flags.DEFINE_integer("pruning_frequency", 100, "Steps between mask updates.")
flags.DEFINE_bool("prune_pooler", False, "Also prune the pooler's kernel.")
flags.DEFINE_bool("prune_word_embeddings", False, "Also prune the word embeddings.")
flags.DEFINE_list("prune_layers", None, "Regular expressions: prune exactly the encoder layers they match.")
flags.DEFINE_string("block_size", None, "Prune blocks, e.g. '1,4' (tfmot block_size).")
flags.DEFINE_string("sparsity_m_by_n", None, "Structured M:N sparsity, e.g. '2,4'.")
FLAGS = flags.FLAGS

# Flags that define what a run computes: a folder holding a run with other values is refused.
RUN_IDENTITY = ("task", "init_checkpoint", "learning_rate", "num_train_epochs", "max_steps",
                "train_batch_size", "max_seq_length", "warmup_proportion", "weight_decay", "seed",
                "mixed_precision", "padding", "bucket_width", "target_sparsity", "pruning_schedule",
                "initial_sparsity", "pruning_begin_step", "pruning_end_step", "pruning_frequency", "prune_pooler",
                "prune_word_embeddings", "prune_layers", "block_size", "sparsity_m_by_n")


class RunError(Exception):
    """A run that cannot start or cannot finish; its message says why."""


# --- Precision ---

def choose_policy(name):
    """The Keras dtype policy for --mixed_precision."""
    if name == "auto":
        if tf.config.list_physical_devices("GPU"):
            return "mixed_float16"
        return "mixed_bfloat16" if _cpu_has_bfloat16() else "float32"
    return {"float16": "mixed_float16", "bfloat16": "mixed_bfloat16", "float32": "float32"}[name]


def _cpu_has_bfloat16():
    try:
        with open("/proc/cpuinfo") as f:
            cpu_flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in cpu_flags or "amx_bf16" in cpu_flags


# --- Model and optimizer ---

def num_outputs(task):
    return 1 if task.is_regression else len(task.labels)


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """BERT's learning rate: linear warm-up to `peak`, then linear decay to 0 at `total_steps`."""

    def __init__(self, peak, warmup_steps, total_steps):
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = step / max(self.warmup_steps, 1)
        decay = (self.total_steps - step) / max(self.total_steps - self.warmup_steps, 1)
        return self.peak * tf.maximum(tf.minimum(warmup, decay), 0.0)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


class AdamW(keras.optimizers.AdamW):
    """Keras' AdamW, with the weight decay inside the XLA-compiled update, which is one function for
    every dense gradient.

    Keras decays every variable in a pass of its own before the updates (two multiplies and a
    subtraction over each weight, outside the XLA-compiled update); here the same decay, by
    `learning_rate * weight_decay` before Adam's step, is part of the compiled update. Measured on
    MiniLM-L6: 5% off a training step in float32 and 4% in bfloat16 (benchmarks/README.md).
    """

    def _apply_weight_decay(self, variables):
        pass  # in update_step

    def _distributed_apply_gradients_fn(self, distribution, grads_and_vars, **kwargs):
        """Every dense gradient's update in one XLA-compiled function; sparse ones as Keras does them.

        Keras compiles one function a variable (its `key` argument keeps them apart): for MiniLM-L6,
        105 traces and XLA compiles before the first step. One function for them all: a short run's
        first step 6 s sooner, each step 4% shorter (benchmarks/README.md). Under a strategy it runs
        once on each replica's device, on that replica's copies of the variables, as Keras' do.
        """
        # Under a strategy a gradient is a PerReplica, never an IndexedSlices: ask a replica's value.
        dense, sparse = [], []
        for gradient, variable in grads_and_vars:
            replica_value = distribution.experimental_local_results(gradient)[0]
            (sparse if isinstance(replica_value, tf.IndexedSlices) else dense).append((gradient, variable))
        if dense:
            gradients, variables = map(list, zip(*dense))

            def update_replica(first, gradients, variables):
                replica = [c is first for c in distribution.experimental_local_results(variables[0])].index(True)
                local = [distribution.experimental_local_results(v)[replica] for v in variables]
                return self._update_dense_xla(gradients, local, tuple(id(self._var_key(v)) for v in local))

            distribution.extended.update(variables[0], update_replica, args=(gradients, variables), group=False)
        return super()._distributed_apply_gradients_fn(distribution, sparse, **kwargs)  # counts the step

    @tf.function(jit_compile=True, autograph=False)
    def _update_dense_xla(self, gradients, variables, keys):  # keys: one trace per set of variables
        for gradient, variable in zip(gradients, variables):
            self._update_step(gradient, variable)

    def _update_step_xla(self, gradient, variable, key):
        # An embedding's gradient has a row for each distinct token of the batch, a count that
        # changes at nearly every step, and XLA compiles the update anew for each count it meets:
        # about 100 ms a step of compiling over SST-2's first hundreds of steps (benchmarks/README.md).
        if isinstance(gradient, tf.IndexedSlices):
            gradient = pad_rows_to_power_of_two(gradient)
        return super()._update_step_xla(gradient, variable, key)

    def update_step(self, gradient, variable):
        if self._use_weight_decay(variable):
            lr = tf.cast(self.learning_rate, variable.dtype)
            variable.assign_sub(variable * (tf.cast(self.weight_decay, variable.dtype) * lr))
        super().update_step(gradient, variable)


def pad_rows_to_power_of_two(slices):
    """`slices` with zero rows at index 0 up to the next power of two: the same sparse update (Adam
    adds zero to those rows), in one of a dozen shapes instead of one shape per row count."""
    rows = tf.shape(slices.indices)[0]
    bits = tf.maximum(rows, 1) - 1
    for shift in (1, 2, 4, 8, 16):  # set every bit below the highest: rows - 1 becomes 2^k - 1
        bits = tf.bitwise.bitwise_or(bits, tf.bitwise.right_shift(bits, shift))
    extra = bits + 1 - rows
    values_padding = tf.concat([[[0, extra]], tf.zeros([tf.rank(slices.values) - 1, 2], tf.int32)], axis=0)
    return tf.IndexedSlices(tf.pad(slices.values, values_padding), tf.pad(slices.indices, [[0, extra]]),
                            slices.dense_shape)


def make_optimizer(schedule, weight_decay):
    """AdamW as BERT's optimization.py: no decay on LayerNorm or biases, gradients clipped at norm 1."""
    optimizer = AdamW(learning_rate=schedule, weight_decay=weight_decay, beta_1=0.9,
                      beta_2=0.999, epsilon=1e-6, global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["layer_norm", "LayerNorm", "bias"])
    # The update XLA-compiled instead of a dozen passes over memory a variable. tf_keras does this
    # only on GPUs, but measured here it also halves the update on a CPU (75 -> 39 ms a step for
    # MiniLM-L6, whose 11.7M-entry word embeddings Adam updates in full at every step).
    optimizer.jit_compile = True
    return optimizer


class GlobalBatchMean(keras.losses.Loss):
    """A per-example loss averaged over the global batch: the same gradient on one device or many.

    Keras' own reduction averages each replica's share of the batch, then the replicas' averages;
    a batch split unevenly (each length bucket ends its epoch with a partial batch) would weigh
    its examples unequally. Here each replica divides its sum by the global batch size, and the
    replicas' gradients add up to the mean over the whole batch.
    """

    def __init__(self, per_example_loss, name):
        super().__init__(reduction=keras.losses.Reduction.SUM, name=name)
        self.per_example_loss = per_example_loss

    def call(self, y_true, y_pred):
        losses = self.per_example_loss(y_true, y_pred)  # (local batch,)
        size = tf.cast(tf.shape(losses)[0], losses.dtype)
        replica = tf.distribute.get_replica_context()  # None between steps, e.g. in a callback
        if replica is not None and replica.num_replicas_in_sync > 1:
            size = replica.all_reduce(tf.distribute.ReduceOp.SUM, size)
        return losses / size


def loss_function(task):
    if task.is_regression:
        return GlobalBatchMean(keras.losses.mean_squared_error, "mean_squared_error")
    return GlobalBatchMean(lambda labels, logits: keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True), "sparse_categorical_crossentropy")


def build_model(pretrained, task, learning_rate, total_steps, warmup_steps):
    """The compiled task model, pruned as the flags say: (model, pruned layer names, learning-rate schedule).

    Called under the strategy's scope. benchmarks/train_throughput.py times this very model.
    """
    encoder, pruned_layers = pretrained.encoder, []
    if FLAGS.target_sparsity > 0:  # tfmot wrappers around the chosen encoder kernels
        begin, end = FLAGS.pruning_begin_step, FLAGS.pruning_end_step
        if begin is None or end is None:
            default_begin, default_end = pruning_schedules.default_pruning_steps(
                total_steps, warmup_steps, FLAGS.pruning_frequency)
            begin = default_begin if begin is None else begin
            end = default_end if end is None else end
        schedule = pruning_schedules.make_schedule(
            FLAGS.pruning_schedule, FLAGS.target_sparsity, begin_step=begin, end_step=end,
            frequency=FLAGS.pruning_frequency, initial_sparsity=FLAGS.initial_sparsity)
        pruned_layers = pruning_schedules.select_layers(
            encoder, pooler=FLAGS.prune_pooler, word_embeddings=FLAGS.prune_word_embeddings,
            patterns=FLAGS.prune_layers)
        encoder = pruning_schedules.prune_encoder(
            encoder, pruned_layers, schedule,
            block_size=FLAGS.block_size and pruning_schedules.parse_pair(FLAGS.block_size, "--block_size"),
            sparsity_m_by_n=FLAGS.sparsity_m_by_n and pruning_schedules.parse_pair(
                FLAGS.sparsity_m_by_n, "--sparsity_m_by_n"))
    model = bert_keras.build_classifier(encoder, num_outputs(task), pretrained.config.hidden_dropout_prob,
                                        name=f"bert_{task.tfds_name}")
    lr_schedule = WarmupLinearDecay(float(learning_rate), warmup_steps, total_steps)
    model.compile(optimizer=make_optimizer(lr_schedule, FLAGS.weight_decay), loss=loss_function(task),
                  jit_compile=FLAGS.xla)
    # A step's logged loss is already the global batch's (Keras metrics synchronise their replicas);
    # tf_keras' "auto" would add it up once per worker under multi_worker_mirrored.
    model.distribute_reduction_method = "first"
    return model, pruned_layers, lr_schedule


# --- Distribution ---

def make_strategy(name):
    """The tf.distribute strategy for --distribution_strategy; made before any other TensorFlow op."""
    if FLAGS.cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * FLAGS.cpu_devices)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker_mirrored":
        if not os.environ.get("TF_CONFIG"):
            raise RunError("--distribution_strategy multi_worker_mirrored: TF_CONFIG is not set; each worker needs "
                           'it, e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                           '"task": {"type": "worker", "index": 0}}')
        return tf.distribute.MultiWorkerMirroredStrategy()
    if FLAGS.tpu and FLAGS.tpu.startswith("grpc://"):  # TensorFlow would wait for it forever
        host, _, port = FLAGS.tpu[len("grpc://"):].rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except (OSError, ValueError) as e:
            raise RunError(f"--tpu={FLAGS.tpu}: cannot reach it ({e})") from None
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=FLAGS.tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, OSError, tf.errors.OpError) as e:  # OSError: no Cloud metadata server to name it
        raise RunError(f"--distribution_strategy tpu --tpu={FLAGS.tpu!r}: no TPU there ({e})") from None
    return tf.distribute.TPUStrategy(resolver)


def distributed(batches):
    """Every worker reads all the data and keeps its replicas' share of each global batch.

    tf.data's default (AUTO) would give each worker its own files of a tfds split instead, and the
    workers would then disagree on the number of steps.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return batches.with_options(options)


def wait_for_every_worker(strategy):
    """A barrier: no worker leaves (or starts the next run) before the chief has written this one."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        tf.function(lambda: strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)),
                                            axis=None))()


# --- Callbacks ---

class LearningRateInLogs(keras.callbacks.Callback):
    """Puts the step's learning rate into the batch logs, for TensorBoard's batch_learning_rate."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_train_batch_end(self, batch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.schedule(self.model.optimizer.iterations)


class GlueEvaluation(keras.callbacks.Callback):
    """Each epoch: the task's metrics and loss over the whole dev split, logged as val_*."""

    def __init__(self, task, batches, labels):
        super().__init__()
        self.task, self.batches, self.labels = task, batches, labels
        self.last = None  # (global step, metrics, seconds) of the latest evaluation
        self.seconds = 0.0  # spent evaluating, all epochs together

    def on_epoch_end(self, epoch, logs=None):
        start = time.time()
        metrics = evaluate(self.model, self.task, self.batches, self.labels)
        self.last = (int(self.model.optimizer.iterations.numpy()), metrics, time.time() - start)
        self.seconds += self.last[2]
        if logs is not None:
            logs.update({f"val_{k}": v for k, v in metrics.items()})


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, backing up every N steps and at each epoch's end, never a diverged state."""

    def on_train_batch_end(self, batch, logs=None):
        if logs is None or np.isfinite(float(logs.get("loss", 0.0))):
            super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or np.isfinite(float(logs.get("loss", 0.0))):
            self._backup(epoch)  # the saved batch is the epoch's last: a restart begins the next epoch


class PruningSummaries(tfmot.sparsity.keras.PruningSummaries):
    """tfmot's TensorBoard callback with per-layer sparsity, written at each epoch's end too.

    tfmot writes mask sparsities only as an epoch begins, so a run's final sparsity would never show.
    """

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        super().on_epoch_begin(epoch + 1)  # without logs it writes only the pruning summaries


class FirstStepTime(keras.callbacks.Callback):
    """Seconds from `since` to the end of the first training step: start-up, data, tracing."""

    def __init__(self, since):
        super().__init__()
        self.since, self.seconds = since, None

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds is None:
            self.seconds = time.time() - self.since
            logging.info("first training step done %.1f s after the run started", self.seconds)


class StopAtStep(keras.callbacks.Callback):
    """Ends training once the optimizer has taken `max_steps` steps (resumed runs included)."""

    def __init__(self, max_steps):
        super().__init__()
        self.max_steps = max_steps

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) >= self.max_steps:
            self.model.stop_training = True


# --- Evaluation ---

def evaluate(model, task, batches, labels):
    """GLUE's metrics and the mean loss over a whole split."""
    logits = model.predict(batches, verbose=0)  # (examples, outputs), in the split's order
    loss = float(loss_function(task)(labels[:, None] if task.is_regression else labels, logits))
    predictions = logits[:, 0] if task.is_regression else logits.argmax(-1)
    return {**task.compute_metrics(labels, predictions), "loss": loss}


def write_eval_results(path, results):
    """eval_results.txt in the seed's format: `key = value` lines, then the times in minutes."""
    with open(path + ".txt", "w") as f:
        for key in sorted(k for k in results if results[k] is not None  # no loss when a restart only evaluates
                          and (k.startswith("eval_") and k != "eval_time_s" or k in ("global_step", "loss"))):
            f.write(f"{key} = {results[key]}\n")
        f.write(f"train_time: {results['train_time_s'] / 60:.2f} min\n")
        f.write(f"eval_time: {results['eval_time_s'] / 60:.2f} min\n")
    with open(path + ".json", "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)


# --- One run ---

def check_output_dir(output_dir, config):
    """Creates output_dir, or checks that it holds an unfinished run of this same configuration."""
    try:
        os.makedirs(output_dir, exist_ok=True)
        probe = os.path.join(output_dir, ".writable")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        raise RunError(f"--output_dir {output_dir}: cannot write there ({e.strerror})") from None
    config_file = os.path.join(output_dir, "train_config.json")
    if os.path.exists(os.path.join(output_dir, "eval_results.json")):
        raise RunError(f"{output_dir}: holds a finished run; choose another --output_dir")
    if os.path.exists(config_file):
        with open(config_file) as f:
            previous = json.load(f)
        changed = {k: (previous.get(k), config[k]) for k in RUN_IDENTITY if previous.get(k) != config[k]}
        if changed:
            details = ", ".join(f"--{k}: {old!r} there, {new!r} now" for k, (old, new) in changed.items())
            raise RunError(f"{output_dir}: holds a run of another configuration ({details}); "
                           "choose another --output_dir")
    elif os.listdir(output_dir):
        raise RunError(f"{output_dir}: not empty and holds no run of train.py; choose another --output_dir")
    with open(config_file, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)


def load_split(task, split):
    return glue_tasks.load(task, split, data_dir=FLAGS.data_dir, manual_dir=FLAGS.tfds_manual_dir,
                           glue_dir=FLAGS.glue_dir)


def run(task, learning_rate, output_dir, strategy, started):
    """Trains, evaluates and exports one model; returns its eval results (None on a worker but the chief).

    Every worker of a strategy runs all of this (training and evaluation are collective); only the
    chief writes the run's files, the others write checkpoints to temporary folders that Keras removes.
    `started` (a time.time()) starts the clocks of `time_to_first_step_s` and `wall_time_s`.
    """
    config = {f.name: f.value for f in FLAGS.get_key_flags_for_module(sys.modules[__name__])
              if f.name not in ("learning_rate", "output_dir")}
    config.update(task=task.tfds_name, learning_rate=learning_rate, output_dir=output_dir)
    chief = strategy.extended.should_checkpoint
    if chief:
        check_output_dir(output_dir, config)
    keras.backend.clear_session()
    keras.utils.set_random_seed(FLAGS.seed)
    policy = choose_policy(FLAGS.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)

    # Data and checkpoint first: a missing source fails before anything trains.
    with strategy.scope():  # every variable, from the encoder's to the optimizer's, is the strategy's
        pretrained = bert_keras.load_encoder(FLAGS.init_checkpoint)
    if FLAGS.max_seq_length > pretrained.config.max_position_embeddings:
        raise RunError(f"--max_seq_length {FLAGS.max_seq_length} exceeds the checkpoint's "
                       f"max_position_embeddings {pretrained.config.max_position_embeddings}")
    preprocessor = bert_keras.BertPreprocessor(pretrained.vocab_file, pretrained.lower_case, FLAGS.max_seq_length)
    train_examples = inputs.tokenize(load_split(task, "train"), task, preprocessor)
    dev_splits = [s for s in task.splits if s.startswith("validation")]
    dev = {s: inputs.tokenize(load_split(task, s), task, preprocessor) for s in dev_splits}
    dev_batches = {s: inputs.evaluation_batches(d, FLAGS.eval_batch_size, FLAGS.max_seq_length,
                                                padding=FLAGS.padding, bucket_width=FLAGS.bucket_width)
                   for s, d in dev.items()}
    dev_labels = {s: np.array([e["label"] for e in d.as_numpy_iterator()]) for s, d in dev.items()}

    steps_per_epoch = inputs.batches_per_epoch(train_examples, FLAGS.train_batch_size, FLAGS.max_seq_length,
                                               padding=FLAGS.padding, bucket_width=FLAGS.bucket_width)
    total_steps = math.ceil(steps_per_epoch * FLAGS.num_train_epochs)
    if FLAGS.max_steps:
        total_steps = min(total_steps, FLAGS.max_steps)
    epochs = math.ceil(total_steps / steps_per_epoch)
    warmup_steps = int(total_steps * FLAGS.warmup_proportion)
    backup_dir = os.path.join(output_dir, "backup")
    start_step, _ = bert_keras.training_step(output_dir)
    train_batches = distributed(inputs.training_batches(
        train_examples, FLAGS.train_batch_size, FLAGS.max_seq_length, padding=FLAGS.padding,
        bucket_width=FLAGS.bucket_width, seed=FLAGS.seed, epochs=epochs, start_step=start_step))

    with strategy.scope():
        model, pruned_layers, lr_schedule = build_model(pretrained, task, learning_rate, total_steps, warmup_steps)
    logging.info("%s: %d steps (%d a epoch, %d epochs), warm-up %d, policy %s, %d replicas, pruning %d layers "
                 "to %.2f", task.glue_name, total_steps, steps_per_epoch, epochs, warmup_steps, policy,
                 strategy.num_replicas_in_sync, len(pruned_layers), FLAGS.target_sparsity)

    log_dir = os.path.join(output_dir, "tensorboard")
    tensorboard = (PruningSummaries(log_dir, update_freq=FLAGS.log_steps) if pruned_layers
                   else keras.callbacks.TensorBoard(log_dir, update_freq=FLAGS.log_steps))
    first_dev = dev_splits[0]
    glue_evaluation = GlueEvaluation(task, dev_batches[first_dev], dev_labels[first_dev])
    first_step = FirstStepTime(started)
    callbacks = [
        first_step,
        LearningRateInLogs(lr_schedule),
        glue_evaluation,
        keras.callbacks.TerminateOnNaN(),
        SafeBackupAndRestore(backup_dir, save_freq=FLAGS.save_checkpoints_steps,
                             delete_checkpoint=False),
        StopAtStep(total_steps),
    ]
    if chief:
        callbacks.append(tensorboard)
    if pruned_layers:
        callbacks.insert(0, tfmot.sparsity.keras.UpdatePruningStep())

    if start_step:
        logging.info("%s: resuming at step %d from %s", output_dir, start_step, backup_dir)
    start = time.time()
    history = model.fit(train_batches, epochs=epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                        verbose=1 if chief else 2)
    train_time = time.time() - start
    # No loss when a restart finds training already done (it stopped during evaluation or export).
    final_loss = history.history["loss"][-1] if history.history.get("loss") else None
    if final_loss is not None and not np.isfinite(final_loss):
        raise RunError(f"{output_dir}: the training loss became {final_loss}; training stopped. The last "
                       f"good state is in {output_dir}/backup (try a lower --learning_rate)")

    # Evaluation on every dev split (MNLI: matched and mismatched), then the sparsity report.
    start, reused_seconds = time.time(), 0.0
    results = {"global_step": int(model.optimizer.iterations.numpy()), "loss": final_loss,
               "learning_rate": float(learning_rate), "policy": policy, "task": task.glue_name}
    for split in dev_splits:
        prefix = "eval_mm_" if split == "validation_mismatched" else "eval_"
        if split == first_dev and glue_evaluation.last and glue_evaluation.last[0] == results["global_step"]:
            _, metrics, reused_seconds = glue_evaluation.last  # the last epoch's evaluation, on these same weights
        else:
            metrics = evaluate(model, task, dev_batches[split], dev_labels[split])
        results.update({prefix + k: v for k, v in metrics.items()})
    results["eval_time_s"] = time.time() - start + reused_seconds
    results["train_time_s"] = train_time - glue_evaluation.seconds  # training alone
    results["time_to_first_step_s"] = first_step.seconds  # None when a restart found training done
    if chief:  # every worker holds the same weights
        stripped = tfmot.sparsity.keras.strip_pruning(model) if pruned_layers else model
        report = pruning_schedules.sparsity_report(stripped, pruned_layers or None)
        pruning_schedules.write_report(report, output_dir)
        results["sparsity"] = report["totals"]
        results["hyperparameters"] = config

        # Export, in float32 whatever the training policy; eval_results last: they mark a finished run.
        serving = bert_keras.float32_copy(stripped.get_weights(), pretrained.config, num_outputs(task))
        saved_model_dir = os.path.join(output_dir, "saved_model")
        export_text_classifier(saved_model_dir, serving, preprocessor,
                               task=task.glue_name, text_fields=task.text_fields, label_names=task.labels)
        results["footprint"] = pruning_schedules.footprint(saved_model_dir, serving.weights)
        results["wall_time_s"] = time.time() - started
        write_eval_results(os.path.join(output_dir, "eval_results"), results)
        logging.info("%s: %s", output_dir, {k: v for k, v in results.items() if k.startswith("eval_")})
    wait_for_every_worker(strategy)
    return results if chief else None


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.task:
        raise app.UsageError(f"--task is required: one of {', '.join(glue_tasks.TASK_NAMES[:-1])} or all")
    try:
        tasks = ([glue_tasks.get_task(n) for n in glue_tasks.TASK_NAMES if n != "ax"] if FLAGS.task == "all"
                 else [glue_tasks.get_task(FLAGS.task)])
        learning_rates = [float(v) for v in FLAGS.learning_rate]
    except ValueError as e:
        raise app.UsageError(str(e))
    if FLAGS.distribution_strategy == "tpu" and FLAGS.padding != "fixed":
        raise app.UsageError("--distribution_strategy tpu needs --padding fixed (a TPU compiles one program a shape)")
    root = FLAGS.output_dir or os.path.join("output", "" if FLAGS.task == "all" else tasks[0].tfds_name)
    try:
        strategy = make_strategy(FLAGS.distribution_strategy)
        started = PROCESS_START  # the first run's clock starts with the process (imports count)
        for task in tasks:
            for lr in learning_rates:
                output_dir = os.path.join(root, task.tfds_name if len(tasks) > 1 else "",
                                          f"lr_{lr:g}" if len(learning_rates) > 1 else "")
                run(task, lr, os.path.normpath(output_dir), strategy, started)
                started = time.time()  # the next run's clock starts where this one ends
    except (bert_keras.DownloadError, glue_tasks.DownloadUnavailableError) as e:
        sys.exit(f"error: {e}\nOffline, pass --init_checkpoint FOLDER (a TF1, Hugging Face or converted BERT) "
                 "and --glue_dir FOLDER (GLUE's original files) or --tfds_manual_dir FOLDER.")
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.DeadlineExceededError) as e:
        if FLAGS.distribution_strategy != "multi_worker_mirrored":
            raise
        sys.exit(f"error: lost contact with another worker ({type(e).__name__}: {e.message!r}).\nRestart every "
                 "worker with the same command: training resumes from the last checkpoint in backup/ of the "
                 "run's --output_dir.")
    except (RunError, bert_keras.CheckpointError, glue_tasks.MalformedFileError, FileNotFoundError,
            ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    app.run(main)
