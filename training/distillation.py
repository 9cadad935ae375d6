"""Knowledge distillation from a fine-tuned run of the same task: the teacher's outputs over the
training set, computed once in inference mode, so that a training step runs no teacher."""

import os

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401 (the WordPiece ops of the teacher's SavedModel)

from training import data, run_folder


class TeacherError(ValueError):
    """A teacher that cannot teach this run; the message says why."""


def teacher_outputs(config, task):
    """float32 [max idx + 1, outputs]: the teacher's logits (regression: its score) for each training
    example, at the example's `idx` (rows of no example are NaN).

    config.teacher is a finished train.py run folder or its SavedModel; it must serve `task`, with the
    same labels. It reads its own raw text, tokenised by its own preprocessor.
    """
    path = config.teacher
    if run_folder.is_run(path):
        path = run_folder.saved_model_dir(path)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise TeacherError(f"--teacher {config.teacher}: no SavedModel there; expected a finished train.py run "
                           "folder or its saved_model/")
    teacher = tf.saved_model.load(path)
    labels = tuple(label.decode() for label in teacher.label_names.numpy()) or None
    if teacher.task.numpy().decode() != task.glue_name or labels != task.labels:
        raise TeacherError(f"--teacher {config.teacher}: a model of {teacher.task.numpy().decode()} with labels "
                           f"{labels}, not of {task.glue_name} with {task.labels}")
    serve = teacher.signatures["serving_default"]
    outputs, indices = [], []
    for batch in data.load_split(config, task, "train").batch(config.eval_batch_size):
        served = serve(**{field: batch[field] for field in task.text_fields})
        outputs.append(served["score"].numpy()[:, None] if task.is_regression else served["logits"].numpy())
        indices.append(batch["idx"].numpy())
    outputs, indices = np.concatenate(outputs), np.concatenate(indices)
    table = np.full([indices.max() + 1, outputs.shape[1]], np.nan, np.float32)
    table[indices] = outputs
    return table
