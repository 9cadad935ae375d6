"""Knowledge distillation from a fine-tuned run of the same task: the teacher's outputs over the
training set, computed once in inference mode, so that a training step runs no teacher."""

import numpy as np
import tensorflow_text  # noqa: F401 (the WordPiece ops of the teacher's SavedModel)

from training import data, export


def teacher_outputs(config, task):
    """float32 [max idx + 1, outputs]: the teacher's logits (regression: its score) for each training
    example, at the example's `idx` (rows of no example are NaN).

    config.teacher is a finished train.py run folder or its SavedModel; it must serve `task`, with the
    same labels. It reads its own raw text, tokenised by its own preprocessor.
    """
    return served_outputs(config.teacher, data.load_split(config, task, "train"), task, config.eval_batch_size,
                          "--teacher")


def served_outputs(model, examples, task, batch_size, flag):
    """float32 [max idx + 1, outputs]: what the export at `model` (a run folder or SavedModel) serves for
    each of `examples` (a split as data.load_split gives it), at the example's `idx`; `flag` names `model`
    in errors."""
    serve = export.load_export(model, task, flag).signatures["serving_default"]
    outputs, indices = [], []
    for batch in examples.batch(batch_size):
        served = serve(**{field: batch[field] for field in task.text_fields})
        outputs.append(served["score"].numpy()[:, None] if task.is_regression else served["logits"].numpy())
        indices.append(batch["idx"].numpy())
    outputs, indices = np.concatenate(outputs), np.concatenate(indices)
    table = np.full([indices.max() + 1, outputs.shape[1]], np.nan, np.float32)
    table[indices] = outputs
    return table
