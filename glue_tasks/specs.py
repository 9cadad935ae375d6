"""The GLUE tasks as one table of facts, and GLUE's metrics computed over a whole split.

Everything that differs between tasks (text fields, label strings, files, splits, metrics) is data in
`TASKS`; readers, loaders and submission writers take a `TaskSpec` and hold no per-task code.
"""

import dataclasses
import math
import types
from typing import Callable, Mapping

import numpy as np
import scipy.stats


class UnknownTaskError(ValueError):
    """A task name that is neither a tfds config name nor a GLUE name."""


class UnknownSplitError(ValueError):
    """A split name the task does not have."""


# --- Metrics: NumPy arrays of a whole split in, one float out (never a mean over batches). ---

def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    return float(np.mean(labels == predictions))


def f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    """F1 of class 1 (MRPC "equivalent", QQP "duplicate"), as GLUE scores it; 0.0 when undefined."""
    true_positives = np.sum((predictions == 1) & (labels == 1))
    false_positives = np.sum((predictions == 1) & (labels != 1))
    false_negatives = np.sum((predictions != 1) & (labels == 1))
    denominator = 2 * true_positives + false_positives + false_negatives
    return float(2 * true_positives / denominator) if denominator else 0.0


def matthews_corrcoef(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Matthews correlation (Gorodkin's multi-class form, as sklearn); 0.0 when a side is constant."""
    classes, encoded = np.unique(np.concatenate([labels, predictions]), return_inverse=True)
    confusion = np.zeros((len(classes), len(classes)), np.float64)  # [true class, predicted class]
    np.add.at(confusion, (encoded[:len(labels)], encoded[len(labels):]), 1)
    true_counts, predicted_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    correct, total = np.trace(confusion), confusion.sum()
    covariance = correct * total - true_counts @ predicted_counts
    variance_true = total * total - true_counts @ true_counts
    variance_predicted = total * total - predicted_counts @ predicted_counts
    if variance_true == 0 or variance_predicted == 0:
        return 0.0
    return float(covariance / math.sqrt(variance_true * variance_predicted))


def pearson(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Pearson's r; NaN when either side is constant (undefined, as scipy)."""
    x = labels.astype(np.float64) - np.mean(labels, dtype=np.float64)
    y = predictions.astype(np.float64) - np.mean(predictions, dtype=np.float64)
    denominator = math.sqrt(float(x @ x) * float(y @ y))
    return float(np.clip(x @ y / denominator, -1.0, 1.0)) if denominator else math.nan


def spearman(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Spearman's rho: Pearson's r of the ranks, ties getting their average rank."""
    return pearson(scipy.stats.rankdata(labels), scipy.stats.rankdata(predictions))


METRICS: Mapping[str, Callable[[np.ndarray, np.ndarray], float]] = types.MappingProxyType({
    "accuracy": accuracy, "f1": f1, "matthews_corrcoef": matthews_corrcoef,
    "pearson": pearson, "spearman": spearman})


# --- The task table. ---

@dataclasses.dataclass(frozen=True, eq=False)
class TaskSpec:
    """One GLUE task. Specs are singletons in `TASKS`, compared by identity.

    glue_name: str. GLUE's name ("SST-2"), also its submission file's stem.
    tfds_name: str. tensorflow-datasets' config name ("sst2", loaded as "glue/sst2").
    folder: str. The task's folder in GLUE's download layout ("SST-2"; AX: "diagnostic").
    text_fields: tuple of str. The text features, named as tfds names them.
    labels: tuple of str, or None. Label strings as GLUE writes them in its TSVs and submission files;
        a label's id is its index here, which is also tfds's encoding. None: regression (STS-B).
    metrics: tuple of str. Keys of `METRICS`, GLUE's metrics for the task.
    files: mapping of tfds split name to the file holding it, inside `folder`.
    submission_files: mapping of each test split to the file the GLUE server expects for it.
    test_sizes: mapping of each test split to its number of examples (a submission holds them all).
    download_files: the files of GLUE's own download that tfds builds the task from (the names it
        looks for in a `manual_dir`).
    text_columns: the TSV columns holding `text_fields`, in the same order, where names differ.
    label_column: str, or None. The TSV column of the label (absent from test files).
    implicit_header: the column names of train/dev files that have no header line (CoLA).
    dev_ids: a file of (#1 ID, #2 ID) pairs: the train file's rows that form validation (MRPC).
    """

    glue_name: str
    tfds_name: str
    folder: str
    text_fields: tuple[str, ...]
    labels: tuple[str, ...] | None
    metrics: tuple[str, ...]
    files: Mapping[str, str]
    submission_files: Mapping[str, str]
    test_sizes: Mapping[str, int]
    download_files: tuple[str, ...]
    text_columns: tuple[str, ...] | None = None
    label_column: str | None = "label"
    implicit_header: tuple[str, ...] | None = None
    dev_ids: str | None = None

    def __post_init__(self):
        for name in ("files", "submission_files", "test_sizes"):  # read-only, like the rest
            object.__setattr__(self, name, types.MappingProxyType(dict(getattr(self, name))))
        if self.text_columns is None:
            object.__setattr__(self, "text_columns", self.text_fields)
        assert len(self.text_columns) == len(self.text_fields), self.glue_name
        assert set(self.submission_files) == set(self.test_sizes) <= set(self.files), self.glue_name
        assert all(name in METRICS for name in self.metrics), self.metrics

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_outputs(self) -> int:
        """The classifier's outputs: one score for regression, else one logit a label."""
        return 1 if self.is_regression else len(self.labels)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)

    @property
    def dev_splits(self) -> tuple[str, ...]:
        """The labelled dev splits, each evaluated on its own (MNLI: matched, then mismatched)."""
        return tuple(s for s in self.files if s.startswith("validation"))

    @property
    def test_splits(self) -> tuple[str, ...]:
        """The splits GLUE scores on its server; tfds gives them label -1."""
        return tuple(self.submission_files)

    def check_split(self, split: str) -> str:
        if split not in self.files:
            raise UnknownSplitError(f"{self.glue_name} has no split {split!r}; valid: {', '.join(self.splits)}")
        return split

    def compute_metrics(self, labels, predictions) -> dict[str, float]:
        """GLUE's metrics over one whole split.

        labels: array [examples], the split's label ids (float scores for STS-B).
        predictions: array [examples], predicted class ids (not logits), or scores for STS-B.
        """
        labels, predictions = np.asarray(labels), np.asarray(predictions)
        if labels.ndim != 1 or labels.shape != predictions.shape or not labels.size:
            raise ValueError(f"{self.glue_name}: labels and predictions must be non-empty 1-D arrays of one "
                             f"length (predictions: class ids, the argmax of logits, or STS-B scores), got "
                             f"shapes {labels.shape} and {predictions.shape}")
        if not self.is_regression:
            self.check_class_ids("labels", labels)
            self.check_class_ids("predictions", predictions)
        return {name: METRICS[name](labels, predictions) for name in self.metrics}

    def check_class_ids(self, name: str, values: np.ndarray) -> None:
        """Raise ValueError unless `values` are integers in [0, number of labels)."""
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"{self.glue_name}: {name} must be class ids (integers, not logits), got {values.dtype}")
        if values.size and (values.min() < 0 or values.max() >= len(self.labels)):
            raise ValueError(f"{self.glue_name}: {name} must lie in [0, {len(self.labels)}), got "
                             f"[{values.min()}, {values.max()}] (test splits have label -1: no labels)")


_STANDARD_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
_NLI_LABELS = ("entailment", "neutral", "contradiction")


def _standard(glue_name: str, tfds_name: str, test_size: int, download_file: str | None = None,
              **facts) -> TaskSpec:
    """A task in GLUE's usual layout: <glue_name>/{train,dev,test}.tsv, downloaded as <glue_name>.zip."""
    return TaskSpec(glue_name=glue_name, tfds_name=tfds_name, folder=glue_name, files=_STANDARD_FILES,
                    submission_files={"test": f"{glue_name}.tsv"}, test_sizes={"test": test_size},
                    download_files=(download_file or f"{glue_name}.zip",), **facts)


# In GLUE's order (its paper's tables). Sizes of test sets as GLUE and tfds publish them.
TASKS: tuple[TaskSpec, ...] = (
    _standard("CoLA", "cola", 1063, text_fields=("sentence",), labels=("0", "1"),
              metrics=("matthews_corrcoef",),
              implicit_header=("source", "label", "author_label", "sentence")),
    _standard("SST-2", "sst2", 1821, text_fields=("sentence",), labels=("0", "1"), metrics=("accuracy",)),
    TaskSpec("MRPC", "mrpc", "MRPC", text_fields=("sentence1", "sentence2"), labels=("0", "1"),
             metrics=("f1", "accuracy"),
             # tfds builds MRPC as GLUE's script does: train and validation both come out of
             # msr_paraphrase_train.txt, split by dev_ids.tsv (the GLUE layout's train/dev.tsv are its output).
             files={"train": "msr_paraphrase_train.txt", "validation": "msr_paraphrase_train.txt",
                    "test": "msr_paraphrase_test.txt"},
             submission_files={"test": "MRPC.tsv"}, test_sizes={"test": 1725},
             download_files=("msr_paraphrase_train.txt", "msr_paraphrase_test.txt", "data_mrpc_dev_ids.tsv"),
             text_columns=("#1 String", "#2 String"), label_column="Quality", dev_ids="dev_ids.tsv"),
    _standard("QQP", "qqp", 390965, text_fields=("question1", "question2"), labels=("0", "1"),
              metrics=("f1", "accuracy"), label_column="is_duplicate"),
    _standard("STS-B", "stsb", 1379, text_fields=("sentence1", "sentence2"), labels=None,
              metrics=("pearson", "spearman"), label_column="score"),
    TaskSpec("MNLI", "mnli", "MNLI", text_fields=("premise", "hypothesis"), labels=_NLI_LABELS,
             metrics=("accuracy",),  # evaluated on each validation split separately (MNLI-m, MNLI-mm)
             files={"train": "train.tsv", "validation_matched": "dev_matched.tsv",
                    "validation_mismatched": "dev_mismatched.tsv", "test_matched": "test_matched.tsv",
                    "test_mismatched": "test_mismatched.tsv"},
             submission_files={"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"},
             test_sizes={"test_matched": 9796, "test_mismatched": 9847}, download_files=("MNLI.zip",),
             text_columns=("sentence1", "sentence2"), label_column="gold_label"),
    _standard("QNLI", "qnli", 5463, text_fields=("question", "sentence"), labels=("entailment", "not_entailment"),
              metrics=("accuracy",), download_file="QNLIv2.zip"),
    _standard("RTE", "rte", 3000, text_fields=("sentence1", "sentence2"), labels=("entailment", "not_entailment"),
              metrics=("accuracy",)),
    _standard("WNLI", "wnli", 146, text_fields=("sentence1", "sentence2"), labels=("0", "1"), metrics=("accuracy",)),
    # The diagnostic set: test only, predicted with an MNLI model; GLUE scores it with the
    # multi-class Matthews correlation (its R3) against labels it keeps private.
    TaskSpec("AX", "ax", "diagnostic", text_fields=("premise", "hypothesis"), labels=_NLI_LABELS,
             metrics=("matthews_corrcoef",), files={"test": "diagnostic.tsv"},
             submission_files={"test": "AX.tsv"}, test_sizes={"test": 1104},
             download_files=("tsvsWithoutLabels_AX.tsv",), text_columns=("sentence1", "sentence2"),
             label_column=None),
)

TASK_NAMES: tuple[str, ...] = tuple(spec.tfds_name for spec in TASKS)
_BY_NAME = {name.lower(): spec for spec in TASKS for name in (spec.tfds_name, spec.glue_name)}


def metric_prefix(split: str) -> str:
    """The prefix of a dev split's results, as the seed writes them: eval_*, and MNLI-mm's eval_mm_*."""
    return "eval_mm_" if split == "validation_mismatched" else "eval_"


def get_task(name: "str | TaskSpec") -> TaskSpec:
    """The spec of a task named as tfds ("sst2", "stsb") or GLUE ("SST-2", "STS-B"), any case."""
    if isinstance(name, TaskSpec):
        return name
    spec = _BY_NAME.get(str(name).lower())
    if spec is None:
        valid = ", ".join(f"{spec.tfds_name} ({spec.glue_name})" for spec in TASKS)
        raise UnknownTaskError(f"unknown GLUE task {name!r}; valid: {valid}")
    return spec
