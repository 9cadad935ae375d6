"""GLUE for this project: a table of task specs with GLUE's metrics, one loader over tensorflow-datasets
or GLUE's original files (the same examples either way), and the GLUE server's submission files."""

import os

# Keras 2 (tf_keras) everywhere, as in bert_keras: set before anything imports TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from glue_tasks.data import DownloadUnavailableError, load  # noqa: E402
from glue_tasks.readers import MalformedFileError, read_split  # noqa: E402
from glue_tasks.specs import (METRICS, TASK_NAMES, TASKS, TaskSpec, UnknownSplitError,  # noqa: E402
                              UnknownTaskError, get_task, metric_prefix)
from glue_tasks.submission import write_submission  # noqa: E402

__all__ = ["DownloadUnavailableError", "load", "MalformedFileError", "read_split", "METRICS", "TASK_NAMES",
           "TASKS", "TaskSpec", "UnknownSplitError", "UnknownTaskError", "get_task", "metric_prefix", "write_submission"]
