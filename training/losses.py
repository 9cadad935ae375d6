"""The task losses, averaged over the global batch, and the distillation loss."""

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


def distillation_loss(task, alpha, temperature):
    """(1 - alpha) x the task loss + alpha x the teacher term, per example, averaged over the global batch.

    y_true is [batch, 1 + outputs]: the label, then the teacher's output for the example
    (glue_tasks.inputs.training_batches with teacher_outputs). Classes: the teacher term is
    T^2 KL(softmax(teacher / T) || softmax(student / T)) (Hinton et al., 2015; T^2 keeps its gradient's
    scale as T changes). Regression: the squared error to the teacher's score.
    """
    def per_example(y_true, logits):
        labels, teacher = y_true[:, 0], y_true[:, 1:]
        logits = tf.cast(logits, tf.float32)
        if task.is_regression:
            task_term = tf.square(logits[:, 0] - labels)
            teacher_term = tf.square(logits[:, 0] - teacher[:, 0])
        else:
            task_term = keras.losses.sparse_categorical_crossentropy(tf.cast(labels, tf.int32), logits,
                                                                     from_logits=True)
            teacher_probabilities = tf.nn.softmax(teacher / temperature)
            teacher_term = temperature ** 2 * tf.reduce_sum(teacher_probabilities * (
                tf.nn.log_softmax(teacher / temperature) - tf.nn.log_softmax(logits / temperature)), axis=-1)
        return (1.0 - alpha) * task_term + alpha * teacher_term

    return GlobalBatchMean(per_example, "distillation")
