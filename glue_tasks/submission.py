"""Predictions on GLUE's test sets, written as the files the GLUE server (gluebenchmark.com) takes.

One file per test split (`CoLA.tsv`, ..., `MNLI-m.tsv`, `MNLI-mm.tsv`, `AX.tsv`): a header
`index<TAB>prediction`, then one row per test example sorted by index, labels as GLUE's strings.
The server rejects a file that misses examples, so a partial one is an error here, not an upload.
"""

import os

import numpy as np

from glue_tasks.specs import TaskSpec, UnknownSplitError, get_task

_STSB_RANGE = (0.0, 5.0)  # STS-B scores lie in [0, 5]; a regression head can overshoot them


def write_submission(task: "str | TaskSpec", predictions, idx, output_dir: str, split: str = "test") -> str:
    """Write the GLUE server's file for one test split into output_dir (created if missing); return its path.

    predictions: array [examples], predicted class ids, or scores for STS-B (clipped to [0, 5]).
    idx: array [examples], the examples' `idx` feature, in the same order as predictions: every
        index of the test split once (GLUE's `index` column; `load` gives them in any batch order).
    split: the test split; MNLI has two, "test_matched" (MNLI-m.tsv) and "test_mismatched" (MNLI-mm.tsv).
    """
    spec = get_task(task)
    if split not in spec.submission_files:
        raise UnknownSplitError(f"{spec.glue_name} takes submissions for split(s) {', '.join(spec.test_splits)}, "
                                f"not {split!r}")
    predictions, idx = np.asarray(predictions), np.asarray(idx)
    size = spec.test_sizes[split]
    if predictions.ndim != 1 or predictions.shape != idx.shape:
        raise ValueError(f"{spec.glue_name}: predictions and idx must be 1-D arrays of one length, got shapes "
                         f"{predictions.shape} and {idx.shape}")
    if not np.array_equal(np.sort(idx), np.arange(size)):
        raise ValueError(f"{spec.glue_name} {split}: idx must hold each of 0..{size - 1} exactly once (the whole "
                         f"test split); got {len(idx)} values, {len(np.unique(idx))} distinct")
    order = np.argsort(idx)
    if spec.is_regression:
        scores = predictions[order].astype(np.float64)
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"{spec.glue_name}: predictions hold NaN or infinite scores")
        values = [f"{score:.3f}" for score in np.clip(scores, *_STSB_RANGE)]
    else:
        spec.check_class_ids("predictions", predictions)
        values = [spec.labels[label] for label in predictions[order]]
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, spec.submission_files[split])
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("index\tprediction\n")
        f.writelines(f"{index}\t{value}\n" for index, value in zip(idx[order], values))
    return path
