r"""How closely finished distilled train.py runs follow their teachers, on the training split and the first dev split.

  python benchmarks/teacher_fit.py --runs OUT/cola/epochs6_seed2_float32/fisher_0.8[,...]

Tells a student that cannot fit its teacher (it disagrees on its own training examples: too few weights
left, or too little training) from one that fits it there and not on new sentences (a transfer-set
problem). Each run's export and its teacher's (train_config.json's `teacher`) serve the raw text of both
splits, read from where the run read them (training.distillation.served_outputs). Classes: the share of
examples given the same label, each side's accuracy on the labels and share of examples given each label,
and the mean T^2 KL between the two softened distributions at the run's temperature (the distillation
loss's teacher term); two classes also each side's ROC AUC (its logit margin ranked against the labels),
which tells a student that ranks examples as well as its teacher but draws the line elsewhere (Matthews
and F1 punish that) from one that ranks them worse. Regression: the Pearson correlation of the two scores
and their mean squared difference. Prints one JSON line.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root
from benchmarks import common  # noqa: E402  (first: TensorFlow's environment)

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import log_softmax  # noqa: E402
from scipy.stats import mannwhitneyu  # noqa: E402

from glue_tasks.specs import pearson  # noqa: E402
from training import data, distillation  # noqa: E402
from training.config import RunConfig  # noqa: E402

FLAGS = flags.FLAGS


def roc_auc(margin, labels):
    """The probability that a random example of label 1 has a higher `margin` than one of label 0 (ties: half):
    the Mann-Whitney U statistic over the number of pairs."""
    positives, negatives = margin[labels == 1], margin[labels == 0]
    return float(mannwhitneyu(positives, negatives).statistic / (len(positives) * len(negatives)))


def fit(task, teacher, student, labels, temperature):
    """How `student` follows `teacher` ([examples, outputs] each) on examples with `labels`."""
    if task.is_regression:
        return {"pearson": pearson(teacher[:, 0], student[:, 0]),
                "mean_squared_difference": float(np.mean((teacher[:, 0] - student[:, 0]) ** 2))}
    log_t, log_s = (log_softmax(logits / temperature, axis=-1) for logits in (teacher, student))
    kl = temperature ** 2 * np.sum(np.exp(log_t) * (log_t - log_s), axis=-1)
    predicted = {"teacher": teacher.argmax(-1), "student": student.argmax(-1)}
    found = {"same_label": float(np.mean(predicted["teacher"] == predicted["student"]))}
    for side, logits in (("teacher", teacher), ("student", student)):
        found[f"{side}_accuracy"] = float(np.mean(predicted[side] == labels))
        shares = np.bincount(predicted[side], minlength=logits.shape[-1]) / len(logits)
        found[f"{side}_label_shares"] = shares.tolist()
        if logits.shape[-1] == 2:
            found[f"{side}_auc"] = roc_auc(logits[:, 1] - logits[:, 0], labels)
    return {**found, "kl": float(np.mean(kl))}


def run_row(run):
    config = RunConfig.load(run)
    if not config.teacher:
        raise app.UsageError(f"--runs {run}: not a distilled run (its train_config.json names no teacher)")
    task = data.task_of(config)
    row = {"run": run, "task": task.glue_name, "teacher": config.teacher}
    for split in ("train", task.dev_splits[0]):
        examples = data.load_split(config, task, split).cache()  # read once, served twice
        read = list(examples.as_numpy_iterator())
        indices, labels = (np.array([e[key] for e in read]) for key in ("idx", "label"))
        teacher, student = (distillation.served_outputs(model, examples, task, config.eval_batch_size,
                                                        "--runs")[indices] for model in (config.teacher, run))
        row[split] = {"examples": len(indices), **fit(task, teacher, student, labels, config.distill_temperature)}
    return row


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    common.print_json({"rows": [run_row(run) for run in FLAGS.runs]})


if __name__ == "__main__":
    flags.DEFINE_list("runs", None, "Finished train.py run folders distilled from a teacher.", required=True)
    app.run(main)
