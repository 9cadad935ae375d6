"""GLUE's metrics of a Keras task model over a whole dev split."""

from training.losses import task_loss


def evaluate(model, task, batches, labels):
    """GLUE's metrics and the mean loss over a whole split.

    batches: the split's evaluation batches (glue_tasks.inputs.evaluation_batches), in file order.
    labels: NumPy [examples], the split's labels in the same order.
    """
    logits = model.predict(batches, verbose=0)  # (examples, outputs)
    loss = float(task_loss(task)(labels[:, None] if task.is_regression else labels, logits))
    predictions = logits[:, 0] if task.is_regression else logits.argmax(-1)
    return {**task.compute_metrics(labels, predictions), "loss": loss}

