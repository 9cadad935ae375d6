"""The seed's result tables from a folder of train.py runs: best per task beside the BERT paper, every run,
and what pruning bought.

A run is a run folder (training.run_folder) read through its RunConfig; one without eval_results.json is
unfinished, and listed as such. `summarize(root)` writes `results.md`, `results.json` and,
where a task was trained at several sparsities, `sparsity_vs_metric.png`.
"""

import json
import os

from glue_tasks.specs import TASKS, get_task
from training import run_folder
from training.config import RunConfig
from training.data import task_of

# BERT-base on GLUE's test server, Devlin et al. (2019), Table 1; the metric each number is (F1 for QQP and
# MRPC, Spearman for STS-B, Matthews for CoLA, accuracy elsewhere; MNLI matched/mismatched). WNLI: not reported.
PAPER_METRIC = {"cola": "matthews_corrcoef", "sst2": "accuracy", "mrpc": "f1", "qqp": "f1", "stsb": "spearman",
                "mnli": "accuracy", "qnli": "accuracy", "rte": "accuracy", "wnli": "accuracy"}
PAPER_BERT_BASE = {"cola": "52.1", "sst2": "93.5", "mrpc": "88.9", "qqp": "71.2", "stsb": "85.8",
                   "mnli": "84.6/83.4", "qnli": "90.5", "rte": "66.4", "wnli": "-"}
METRIC_NAMES = {"accuracy": "acc", "f1": "F1", "matthews_corrcoef": "MCC", "pearson": "Pearson",
                "spearman": "Spearman"}


def find_runs(root):
    """(finished runs, unfinished run folders) under root; a run is a dict of its facts and results."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"--summarize {root}: no such folder")
    finished, unfinished = [], []
    for folder, subfolders, _ in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders
                               if d not in run_folder.SUBFOLDERS and not d.startswith("eval_step_"))
        if not run_folder.is_run(folder):
            continue
        if not run_folder.is_finished(folder):
            unfinished.append(os.path.relpath(folder, root))
            continue
        config, results = RunConfig.load(folder), run_folder.read_results(folder)
        task = task_of(config)
        finished.append({
            "folder": os.path.relpath(folder, root), "task": task.tfds_name, "headline": _headline_metric(task),
            "learning_rate": config.learning_rate, "target_sparsity": config.target_sparsity,
            "seed": config.seed, "global_step": results["global_step"],
            "teacher": config.teacher and os.path.relpath(os.path.abspath(config.teacher), os.path.abspath(root)),
            "train_time_s": results["train_time_s"], "eval_time_s": results["eval_time_s"],
            "metrics": {k[len("eval_"):]: v for k, v in results.items()
                        if k.startswith("eval_") and k not in ("eval_loss", "eval_mm_loss", "eval_time_s")},
            "footprint": results.get("footprint")})
    if not finished:
        held = f" (unfinished: {', '.join(unfinished)})" if unfinished else ""
        raise FileNotFoundError(f"--summarize {root}: no finished train.py run (a folder with train_config.json "
                                f"and eval_results.json) there{held}")
    return finished, unfinished


def _headline_metric(task):
    """The metric the BERT paper reports for a GLUE task (MNLI: matched); a user's task: its first."""
    return PAPER_METRIC[task.tfds_name] if task.tfds_name in PAPER_METRIC and task.folder else task.metrics[0]


def headline(run):
    return run["metrics"][run["headline"]]


def _name(run):
    return get_task(run["task"]).glue_name if run["task"] in PAPER_METRIC else run["task"]


def _task_order(run):
    glue = [spec.tfds_name for spec in TASKS]
    return (glue.index(run["task"]) if run["task"] in glue else len(glue), run["task"], run["target_sparsity"],
            run["learning_rate"])


def best_runs(runs):
    """The best run (by the paper's metric) of each task and target sparsity, over learning rates and seeds."""
    best = {}
    for run in runs:
        key = (run["task"], run["target_sparsity"])
        if key not in best or headline(run) > headline(best[key]):
            best[key] = run
    return sorted(best.values(), key=_task_order)


def dense_reference(run, runs):
    """The dense run a pruned one is compared with: same task, learning rate and seed, else the task's best."""
    dense = [r for r in runs if r["task"] == run["task"] and r["target_sparsity"] == 0]
    same = [r for r in dense if (r["learning_rate"], r["seed"]) == (run["learning_rate"], run["seed"])]
    return (same or sorted(dense, key=headline, reverse=True) or [None])[0]


def pruning_gains(run, runs):
    """Footprint of the run beside its dense reference: ratios of nonzero parameters and of gzip size."""
    footprint, dense = run["footprint"], dense_reference(run, runs)
    if footprint is None:
        return None
    gains = {"parameters": footprint["parameters"], "nonzero": footprint["nonzero"],
             "saved_model_bytes": footprint["saved_model_bytes"],
             "saved_model_gzip_bytes": footprint["saved_model_gzip_bytes"], "dense_folder": None}
    if dense is not None and dense["footprint"] is not None and dense is not run:
        gains.update(dense_folder=dense["folder"], metric_change=headline(run) - headline(dense),
                     nonzero_vs_dense=footprint["nonzero"] / dense["footprint"]["nonzero"],
                     gzip_vs_dense=footprint["saved_model_gzip_bytes"] / dense["footprint"]["saved_model_gzip_bytes"])
    return gains


def _metrics_text(run):
    return ", ".join(f"{'MNLI-mm ' if name.startswith('mm_') else ''}{METRIC_NAMES[name.removeprefix('mm_')]} "
                     f"{100 * value:.1f}" for name, value in run["metrics"].items())


def _ours(run):
    if run["task"] == "mnli":
        return f"{100 * run['metrics']['accuracy']:.1f}/{100 * run['metrics'].get('mm_accuracy', float('nan')):.1f}"
    return f"{100 * headline(run):.1f}"


def _teacher(run):
    """A run's "Distilled from" cell."""
    return f"`{run['teacher']}`" if run.get("teacher") else "-"


def _minutes(seconds):
    return f"{seconds / 60:.1f} min"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def markdown(runs, unfinished):
    """results.md: the best per task, every run, and what pruning bought."""
    several = len({r["target_sparsity"] for r in runs}) > 1
    sparsity = (lambda r: [f"{r['target_sparsity']:.0%}"]) if several else (lambda r: [])
    sparsity_header = ["Sparsity"] if several else []
    best = best_runs(runs)
    parts = ["# GLUE results", "",
             "Dev-set results of the runs in this folder, beside BERT-base in the BERT paper (Devlin et al., 2019, "
             "Table 1: GLUE **test** server; F1 for QQP and MRPC, Spearman for STS-B, Matthews for CoLA, accuracy "
             "elsewhere). Written by `python evaluate.py --summarize`.", "",
             "## Best run per task" + (" and sparsity" if several else ""), "",
             _table(["Task", "Metric", "BERT-base (paper, test)", "Ours (dev)", *sparsity_header, "Learning rate",
                     "Train time", "All dev metrics"],
                    [[_name(r), METRIC_NAMES[r["headline"]], PAPER_BERT_BASE.get(r["task"], "-"),
                      _ours(r), *sparsity(r), f"{r['learning_rate']:g}", _minutes(r["train_time_s"]),
                      _metrics_text(r)] for r in best]),
             "", f"Total training time: {_minutes(sum(r['train_time_s'] for r in runs))} over {len(runs)} runs.", "",
             "## Every run", "",
             _table(["Task", "Learning rate", *sparsity_header, "Seed", "Dev metrics", "Steps", "Train time", "Folder"],
                    [[_name(r), f"{r['learning_rate']:g}", *sparsity(r), r["seed"],
                      _metrics_text(r), r["global_step"], _minutes(r["train_time_s"]), f"`{r['folder']}`"]
                     for r in sorted(runs, key=_task_order)])]
    rows = []
    for r in sorted(runs, key=_task_order):
        gains = pruning_gains(r, runs)
        if gains is None:
            rows.append([_name(r), f"{r['target_sparsity']:.0%}", f"{r['learning_rate']:g}",
                         _ours(r), *["n/a"] * 6, _teacher(r)])
            continue
        compared = gains["dense_folder"] is not None
        rows.append([_name(r), f"{r['target_sparsity']:.0%}", f"{r['learning_rate']:g}", _ours(r),
                     f"{100 * gains['metric_change']:+.1f}" if compared else "-",
                     f"{gains['parameters']:,}", f"{gains['nonzero']:,}" +
                     (f" ({gains['nonzero_vs_dense']:.2f}x)" if compared else ""),
                     f"{gains['saved_model_bytes'] / 2**20:.1f}",
                     f"{gains['saved_model_gzip_bytes'] / 2**20:.1f}" +
                     (f" ({gains['gzip_vs_dense']:.2f}x)" if compared else ""),
                     f"`{gains['dense_folder']}`" if compared else "-",
                     _teacher(r)])
    parts += ["", "## What pruning bought", "",
              "Each run's exported model (`saved_model/`), beside the dense run of its task (same learning rate "
              "and seed where there is one). Unstructured zeros do not shrink a dense file: the SavedModel is "
              "as large at any sparsity, and the honest size of a sparse model is its gzip-compressed size "
              "(`tar czf` of the SavedModel).", "",
              _table(["Task", "Sparsity", "Learning rate", "Ours (dev)", "vs dense (points)", "Parameters",
                      "Nonzero", "SavedModel (MiB)", "gzip (MiB)", "Dense run", "Distilled from"], rows)]
    if unfinished:
        parts += ["", "Unfinished runs (no eval_results.json): " + ", ".join(f"`{u}`" for u in unfinished) + "."]
    return "\n".join(parts) + "\n"


def plot_sparsity(runs, path):
    """sparsity_vs_metric.png: each task trained at several sparsities, its best dev metric by sparsity."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = best_runs(runs)
    tasks = [t for t in dict.fromkeys(r["task"] for r in best) if sum(r["task"] == t for r in best) > 1]
    if not tasks:
        return None
    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for task in tasks:
        runs_of_task = [r for r in best if r["task"] == task]
        points = [(100 * r["target_sparsity"], 100 * headline(r)) for r in runs_of_task]
        line, = axes.plot(*zip(*points), marker="o",
                          label=f"{_name(runs_of_task[0])} ({METRIC_NAMES[runs_of_task[0]['headline']]})")
        dense = [r for r in runs_of_task if r["target_sparsity"] == 0]
        if dense:  # the level a pruned model is measured against
            axes.axhline(100 * headline(dense[0]), color=line.get_color(), linestyle="--", linewidth=1,
                         label=f"{_name(dense[0])} dense")
    axes.set_xlabel("encoder sparsity (% of pruned weights that are zero)")
    axes.set_ylabel("dev metric (best over learning rates)")
    axes.set_title("GLUE dev metric vs magnitude-pruning sparsity")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def summarize(root):
    """Writes results.md, results.json and (where it applies) sparsity_vs_metric.png into root; returns paths."""
    runs, unfinished = find_runs(root)
    written = [os.path.join(root, "results.md")]
    with open(written[0], "w") as f:
        f.write(markdown(runs, unfinished))
    plot = plot_sparsity(runs, os.path.join(root, "sparsity_vs_metric.png"))
    written += [plot] if plot else []
    path = os.path.join(root, "results.json")
    with open(path, "w") as f:
        json.dump({"runs": [{**{k: v for k, v in r.items() if k != "footprint"},
                             "pruning": pruning_gains(r, runs)} for r in runs],
                   "best": [r["folder"] for r in best_runs(runs)], "unfinished": unfinished}, f, indent=2)
    written.append(path)
    return written
