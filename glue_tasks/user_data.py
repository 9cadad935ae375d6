"""Your own labelled text as a task: CSV, TSV or JSON Lines files with named text and label columns.

`user_task` makes a TaskSpec for them, so that training, metrics, export and pruning treat them as
they treat a GLUE task; `load_file` gives a file's examples as `glue_tasks.load` gives a GLUE split:
{text column: tf.string, "label": int64 class id (float32 score for regression; -1 without a label
column), "idx": int32 row number}. Classification reports accuracy with F1 of the second label
(two labels) or Matthews correlation (more); regression reports Pearson and Spearman.
"""

import csv
import json
import os
import re

import numpy as np
import tensorflow as tf

from glue_tasks.readers import MalformedFileError
from glue_tasks.specs import TaskSpec

FORMATS = {".csv": ",", ".tsv": "\t", ".jsonl": None, ".json": None}  # the delimiter; None: JSON Lines
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")  # a column that names a SavedModel signature's input


def read_rows(path):
    """(line number, row as a dict of strings) for each data row of a CSV, TSV or JSON Lines file."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        raise MalformedFileError(f"{path}: expected a .csv, .tsv or .jsonl file")
    if not os.path.isfile(path):
        raise MalformedFileError(f"{path}: no such file")
    with open(path, encoding="utf-8-sig", newline="") as f:
        if FORMATS[extension] is not None:
            reader = csv.DictReader(f, delimiter=FORMATS[extension])
            return [(reader.line_num, row) for row in reader]
        rows = []
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise MalformedFileError(f"{path}:{number}: not a JSON object ({e})") from None
                if not isinstance(row, dict):
                    raise MalformedFileError(f"{path}:{number}: not a JSON object")
                rows.append((number, {k: "" if v is None else str(v) for k, v in row.items()}))
        return rows


def labels_in(path, label_column):
    """The distinct labels of a file's label column, sorted (as numbers where they all are)."""
    rows = read_rows(path)
    _check_columns(path, rows, (label_column,))
    labels = {row[label_column] for _, row in rows if row[label_column] != ""}
    try:
        return tuple(sorted(labels, key=float))
    except ValueError:
        return tuple(sorted(labels))


def user_task(name, files, text_columns, label_column="label", labels=None, regression=False):
    """A TaskSpec for a user's files: `files` maps a split (train, validation, test) to its file."""
    if not 1 <= len(text_columns) <= 2:
        raise ValueError(f"text_columns={text_columns!r}: expected one or two columns (a text, or a pair)")
    for column in text_columns:
        if not _NAME.match(column):
            raise ValueError(f"text column {column!r}: expected a name of letters, digits and _ (it names the "
                             "SavedModel's input); rename the column")
    if regression == bool(labels):
        raise ValueError("give labels for classification, or regression=True without labels")
    if labels is not None and len(labels) < 2:
        raise ValueError(f"labels={labels!r}: a classifier needs two labels or more")
    metrics = ("pearson", "spearman") if regression else (
        ("accuracy", "f1") if len(labels) == 2 else ("accuracy", "matthews_corrcoef"))
    return TaskSpec(glue_name=name, tfds_name=name, folder="", text_fields=tuple(text_columns),
                    labels=tuple(labels) if labels else None, metrics=metrics, files=dict(files),
                    submission_files={}, test_sizes={}, download_files=(), label_column=label_column)


def is_user_task(task):
    """Whether `task` was made by user_task (GLUE's tasks each have a folder in GLUE's layout)."""
    return not task.folder


def load_file(task, path, labelled=True):
    """The examples of a file for `task`, in file order; `labelled`: it must hold the label column."""
    rows = read_rows(path)
    _check_columns(path, rows, task.text_fields + ((task.label_column,) if labelled else ()))
    texts = {field: [row[field] for _, row in rows] for field in task.text_fields}
    if labelled:
        labels = [_label(task, row[task.label_column], f"{path}:{number}") for number, row in rows]
    else:
        labels = [-1] * len(rows)
    return tf.data.Dataset.from_tensor_slices({
        **{field: tf.constant(np.array(values, dtype=object), tf.string) for field, values in texts.items()},
        "label": tf.constant(labels, tf.float32 if task.is_regression else tf.int64),
        "idx": tf.range(len(rows), dtype=tf.int32)})


def _check_columns(path, rows, columns):
    if not rows:
        raise MalformedFileError(f"{path}: no data rows")
    for number, row in rows:
        missing = [c for c in columns if row.get(c) is None]
        if missing:
            raise MalformedFileError(f"{path}:{number}: no column {', '.join(map(repr, missing))}; it has "
                                     f"{', '.join(map(repr, row))}")


def _label(task, text, where):
    if task.is_regression:
        try:
            return float(text)
        except ValueError:
            raise MalformedFileError(f"{where}: score {text!r} is not a number") from None
    if text not in task.labels:
        raise MalformedFileError(f"{where}: label {text!r} is not one of {', '.join(task.labels)}")
    return task.labels.index(text)
