"""The task losses, averaged over the global batch."""

import tensorflow as tf
import tf_keras as keras


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


def task_loss(task):
    """Mean squared error on the score for regression (STS-B), cross-entropy on the logits otherwise."""
    if task.is_regression:
        return GlobalBatchMean(keras.losses.mean_squared_error, "mean_squared_error")
    return GlobalBatchMean(lambda labels, logits: keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True), "sparse_categorical_crossentropy")
