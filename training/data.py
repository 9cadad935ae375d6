"""A run's task and data, as its RunConfig says: GLUE's splits or the user's files, tokenised once,
training and dev batches."""

import dataclasses

import numpy as np
import tensorflow as tf

import bert_keras
import glue_tasks
from glue_tasks import inputs, user_data


@dataclasses.dataclass
class RunData:
    preprocessor: bert_keras.BertPreprocessor
    train: tf.data.Dataset  # tokenised examples, unpadded, cached
    dev: dict  # dev split -> tokenised examples
    dev_batches: dict  # dev split -> evaluation batches, in file order
    dev_labels: dict  # dev split -> NumPy labels, in file order
    steps_per_epoch: int


def task_of(config):
    """The TaskSpec a RunConfig trains: a GLUE task, or the user's files (glue_tasks.user_data)."""
    if not config.train_file:
        return glue_tasks.get_task(config.task)
    return user_data.user_task(config.task, {"train": config.train_file, "validation": config.validation_file},
                               config.text_columns, config.label_column, config.labels, config.regression)


def load_split(config, task, split):
    """A split from where `config` says: the user's files, GLUE's original files (glue_dir), or tfds."""
    if config.train_file:
        return user_data.load_file(task, task.files[split])
    return glue_tasks.load(task, split, data_dir=config.data_dir, manual_dir=config.tfds_manual_dir,
                           glue_dir=config.glue_dir)


def load_run_data(config, task, pretrained):
    """The training and dev splits of `task`, tokenised with `pretrained`'s vocabulary."""
    preprocessor = bert_keras.BertPreprocessor(pretrained.vocab_file, pretrained.lower_case, config.max_seq_length)
    train = inputs.tokenize(load_split(config, task, "train"), task, preprocessor)
    dev = {s: inputs.tokenize(load_split(config, task, s), task, preprocessor) for s in task.dev_splits}
    dev_batches = {s: inputs.evaluation_batches(d, config.eval_batch_size, config.max_seq_length,
                                                padding=config.padding, bucket_width=config.bucket_width)
                   for s, d in dev.items()}
    dev_labels = {s: np.array([e["label"] for e in d.as_numpy_iterator()]) for s, d in dev.items()}
    steps_per_epoch = inputs.batches_per_epoch(train, config.train_batch_size, config.max_seq_length,
                                               padding=config.padding, bucket_width=config.bucket_width)
    return RunData(preprocessor, train, dev, dev_batches, dev_labels, steps_per_epoch)


def training_batches(config, examples, epochs, start_step=0, teacher_outputs=None):
    """The run's training batches from `start_step` on: epoch e shuffled by the seed and e alone; with
    teacher_outputs (training.distillation), each label carries its example's teacher output."""
    return inputs.training_batches(examples, config.train_batch_size, config.max_seq_length,
                                   padding=config.padding, bucket_width=config.bucket_width, seed=config.seed,
                                   epochs=epochs, start_step=start_step, teacher_outputs=teacher_outputs)
