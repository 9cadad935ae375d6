"""A train.py run folder: what it holds, and the one writer of its results.

  train_config.json   the RunConfig (training.config)
  backup/chief/       Keras' BackupAndRestore checkpoints: a tf.train.Checkpoint(model=...) of the
                      compiled classifier, every save_checkpoints_steps steps and each epoch
  tensorboard/        training and validation logs
  sparsity.txt/.json  the sparsity report (pruning_schedules)
  saved_model/        the export, serving raw text (training.export)
  eval_results.txt    the seed's `key = value` lines, and eval_results.json, written last: they
                      mark a finished run
"""

import json
import os

import tensorflow as tf

from training.config import CONFIG_FILE, RunConfig

RESULTS_FILE = "eval_results.json"


class RunFolderError(Exception):
    """A folder that cannot hold the run asked for; the message says why."""


def backup_dir(run_dir):
    return os.path.join(run_dir, "backup")


def saved_model_dir(run_dir):
    return os.path.join(run_dir, "saved_model")


def tensorboard_dir(run_dir):
    return os.path.join(run_dir, "tensorboard")


def is_run(run_dir):
    return os.path.isfile(os.path.join(run_dir, CONFIG_FILE))


def is_finished(run_dir):
    return is_run(run_dir) and os.path.isfile(os.path.join(run_dir, RESULTS_FILE))


def latest_checkpoint(run_dir):
    """(optimizer step, path) of the latest checkpoint in the run's backup/, or (0, None)."""
    checkpoint = tf.train.latest_checkpoint(os.path.join(backup_dir(run_dir), "chief"))
    if checkpoint is None:
        return 0, None
    step = tf.train.load_checkpoint(checkpoint).get_tensor("model/optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE")
    return int(step), checkpoint


def prepare(run_dir, config):
    """Creates run_dir for `config`, or checks that it holds an unfinished run of the same identity."""
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = os.path.join(run_dir, ".writable")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        raise RunFolderError(f"--output_dir {run_dir}: cannot write there ({e.strerror})") from None
    if is_finished(run_dir):
        raise RunFolderError(f"{run_dir}: holds a finished run; choose another --output_dir")
    if is_run(run_dir):
        previous = RunConfig.load(run_dir).identity()
        changed = {k: (previous[k], v) for k, v in config.identity().items() if previous[k] != v}
        if changed:
            details = ", ".join(f"--{k}: {old!r} there, {new!r} now" for k, (old, new) in changed.items())
            raise RunFolderError(f"{run_dir}: holds a run of another configuration ({details}); "
                                 "choose another --output_dir")
    elif os.listdir(run_dir):
        raise RunFolderError(f"{run_dir}: not empty and holds no run of train.py; choose another --output_dir")
    config.save(run_dir)


def write_results(directory, results):
    """eval_results.txt in the seed's format (`key = value` lines, then times in minutes) and .json."""
    with open(os.path.join(directory, "eval_results.txt"), "w") as f:
        for key in sorted(k for k in results if results[k] is not None  # no loss when a restart only evaluates
                          and (k.startswith("eval_") and k != "eval_time_s" or k in ("global_step", "loss"))):
            f.write(f"{key} = {results[key]}\n")
        for name in ("train_time", "eval_time"):
            if results.get(f"{name}_s") is not None:
                f.write(f"{name}: {results[f'{name}_s'] / 60:.2f} min\n")
    with open(os.path.join(directory, RESULTS_FILE), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)


def read_results(directory):
    with open(os.path.join(directory, RESULTS_FILE)) as f:
        return json.load(f)
