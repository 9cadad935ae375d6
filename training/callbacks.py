"""The Keras callbacks of a run: the learning rate and GLUE's metrics in the logs, safe backups,
TensorBoard with per-layer sparsity and hyper-parameters, the console's progress bar, the time to the
first step, a cap on the steps."""

import time

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
from tensorboard.plugins.hparams import api as hparams_api
import tf_keras as keras

from training.evaluation import evaluate


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


class FirstStepTime(keras.callbacks.Callback):
    """Seconds from `since` (a time.time()) to the end of the first training step: start-up, data, tracing."""

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


class RunTensorBoard(tfmot.sparsity.keras.PruningSummaries):
    """Keras' TensorBoard callback with tfmot's per-layer sparsity, set for a run:

    - each pruned layer's sparsity every `update_freq` steps and at each epoch's end, written
      whatever the step: Keras records batch-time summaries only under `record_if(step % update_freq
      == 0)`, which would drop an epoch-end write off that grid;
    - epoch metrics (validation ones among them) at the global step, not the epoch's index, so that
      runs of different lengths and resumed runs line up;
    - at the start, the run's hyper-parameters for the hparams plugin (a sweep over learning rates
      or sparsities compares in one view) and its configuration as text.
    On a dense run the sparsity part writes nothing.
    """

    def __init__(self, log_dir, update_freq, *, hparams, config_text, trial_id):
        super().__init__(log_dir, update_freq=update_freq)
        self.hparams, self.config_text, self.trial_id = hparams, config_text, trial_id

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default(), tf.summary.record_if(True):
            hparams_api.hparams(self.hparams, trial_id=self.trial_id)
            tf.summary.text("run_config", self.config_text, step=0)
        writer.close()

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

    def _log_pruning_metrics(self, logs, prefix, step):
        with tf.summary.record_if(True):
            super()._log_pruning_metrics(logs, prefix, step)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self._step() % self.update_freq == 0:
            super().on_epoch_begin(None)  # without logs tfmot writes only the pruning summaries

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        super().on_epoch_begin(None)

    def _log_epoch_metrics(self, epoch, logs):
        super()._log_epoch_metrics(self._step(), logs)


class RunProgress(keras.callbacks.Callback):
    """The console's progress bar over the whole run (a resumed run starts where it stopped), with
    the epoch's mean training loss and the learning rate of the step just taken."""

    def __init__(self, total_steps, schedule):
        super().__init__()
        self.total_steps, self.schedule = total_steps, schedule
        self.bar = None

    def on_train_begin(self, logs=None):
        self.bar = keras.utils.Progbar(self.total_steps, stateful_metrics=["loss", "learning_rate"],
                                       unit_name="step")
        self.bar.update(int(self.model.optimizer.iterations.numpy()))

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        values = [("learning_rate", float(self.schedule(step - 1)))]
        if logs and "loss" in logs:
            values.insert(0, ("loss", float(logs["loss"])))
        self.bar.update(step, values, finalize=step >= self.total_steps)
