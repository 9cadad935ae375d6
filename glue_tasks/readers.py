"""Read GLUE's original files into exactly the examples tensorflow-datasets builds from them.

This follows tfds's GLUE builder (tensorflow_datasets/text/glue.py) and GLUE's own tooling: UTF-8 (a
leading byte-order mark, as in MRPC's files, is dropped), fields split on tabs with no quote handling (the
files hold unbalanced quotes), a header line except in CoLA's train and dev files, blank lines skipped.
`idx` is a row's position among its file's data rows, counted before any row is dropped, so it matches
tfds's `idx`, and for test files GLUE's `index` column. Like tfds, a row with an empty class label is
dropped (its idx stays unused) and test splits get label -1. Unlike tfds, which silently drops a row with
too few columns and reads one with too many, a row with the wrong number of columns is an error here.
"""

import os
from typing import Iterator

import numpy as np

from glue_tasks.specs import TaskSpec, get_task

_MRPC_PAIR_COLUMNS = ("#1 ID", "#2 ID")  # what dev_ids.tsv lists, one pair a line, no header


class MalformedFileError(ValueError):
    """A GLUE file that does not hold what its task's spec says (names the file and the line)."""


def read_split(task: "str | TaskSpec", split: str, glue_dir: str) -> dict[str, np.ndarray]:
    """One split of a task from a folder in GLUE's download layout.

    Returns tfds's features as NumPy arrays [examples], in file order: each text field (str objects),
    `label` (int64 class ids, or float32 scores for STS-B; -1 on test splits) and `idx` (int32).
    """
    spec = get_task(task)
    path = os.path.join(glue_dir, spec.folder, spec.files[spec.check_split(split)])
    is_test = split in spec.test_splits
    header = spec.implicit_header if spec.implicit_header and not is_test else None
    required = spec.text_columns + ((spec.label_column,) if not is_test else ())
    dev_pairs = _read_dev_pairs(spec, glue_dir) if spec.dev_ids and not is_test else None
    if dev_pairs is not None:  # MRPC: train and validation are the rows of one file, told apart by ids
        required += _MRPC_PAIR_COLUMNS
    texts = {field: [] for field in spec.text_fields}
    labels, indices = [], []
    rows = _read_rows(path, header, required, f"the {split} split of {spec.glue_name}")
    for idx, (line_number, row) in enumerate(rows):
        if dev_pairs is not None and (
                (tuple(row[column] for column in _MRPC_PAIR_COLUMNS) in dev_pairs) != (split == "validation")):
            continue
        label = -1 if is_test else _parse_label(spec, row[spec.label_column], f"{path}:{line_number}")
        if label is None:
            continue
        for field, column in zip(spec.text_fields, spec.text_columns):
            texts[field].append(row[column])
        labels.append(label)
        indices.append(idx)
    features = {field: np.array(values, dtype=object) for field, values in texts.items()}
    features["label"] = np.array(labels, np.float32 if spec.is_regression else np.int64)
    features["idx"] = np.array(indices, np.int32)
    return features


def _parse_label(spec: TaskSpec, text: str, where: str) -> "int | float | None":
    """The label id (or STS-B score) of a label field; None for an empty class label, which tfds drops."""
    if spec.is_regression:
        try:
            return np.float32(text)  # as tfds parses it
        except ValueError:
            raise MalformedFileError(f"{where}: score {text!r} is not a number") from None
    if text == "":
        return None
    if text not in spec.labels:
        raise MalformedFileError(f"{where}: label {text!r} is not one of {', '.join(spec.labels)}")
    return spec.labels.index(text)


def _read_dev_pairs(spec: TaskSpec, glue_dir: str) -> set[tuple[str, ...]]:
    path = os.path.join(glue_dir, spec.folder, spec.dev_ids)
    rows = _read_rows(path, _MRPC_PAIR_COLUMNS, _MRPC_PAIR_COLUMNS, f"the validation pairs of {spec.glue_name}")
    return {tuple(row[column] for column in _MRPC_PAIR_COLUMNS) for _, row in rows}


def _read_rows(path: str, header: "tuple[str, ...] | None", required: tuple[str, ...],
               what: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(1-based line number, {column: field}) for each data row of a tab-separated file.

    header: the column names of a file without a header line; None: the first line is the header.
    required: the columns that must be there.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file; expected {what} there (GLUE's download layout)")
    # Universal newlines, as tfds's reader opens these files; utf-8-sig drops MRPC's byte-order mark.
    with open(path, encoding="utf-8-sig") as f:
        try:
            for line_number, line in enumerate(f, 1):
                fields = line[:-1].split("\t") if line.endswith("\n") else line.split("\t")
                if header is None:
                    header = tuple(fields)
                    missing = [column for column in required if column not in header]
                    if missing:
                        raise MalformedFileError(f"{path}:{line_number}: header lacks column(s) {missing} of "
                                                 f"{what}; it has {list(header)}")
                elif line in ("\n", ""):
                    continue  # blank lines are no rows, as for csv.DictReader
                elif len(fields) != len(header):
                    raise MalformedFileError(f"{path}:{line_number}: {len(fields)} tab-separated fields, expected "
                                             f"{len(header)} ({', '.join(header)})")
                else:
                    yield line_number, dict(zip(header, fields))
        except UnicodeDecodeError as error:
            raise MalformedFileError(f"{path}: not UTF-8 ({error})") from None
