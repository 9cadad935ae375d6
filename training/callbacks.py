"""The Keras callbacks of a run: the learning rate and GLUE's metrics in the logs, safe backups,
per-layer sparsity in TensorBoard, the time to the first step, a cap on the steps."""

import time

from absl import logging
import numpy as np
import tensorflow_model_optimization as tfmot
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


class PruningSummaries(tfmot.sparsity.keras.PruningSummaries):
    """tfmot's TensorBoard callback with per-layer sparsity, written at each epoch's end too.

    tfmot writes mask sparsities only as an epoch begins, so a run's final sparsity would never show.
    """

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        super().on_epoch_begin(epoch + 1)  # without logs it writes only the pruning summaries


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
