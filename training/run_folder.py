"""A train.py run folder: what it holds, and the one writer of its results.

  train_config.json   the RunConfig (training.config)
  backup/chief/       Keras' BackupAndRestore checkpoints: a tf.train.Checkpoint(model=...) of the
                      compiled classifier, every save_checkpoints_steps steps and each epoch
  tensorboard/        training and validation logs
  sparsity.txt/.json  the sparsity report (pruning_schedules)
  saved_model/        the export, serving raw text (training.export)
  encoder/            a structurally pruned run's sliced encoder, a folder bert_keras.load_encoder reads
  eval_results.txt    the seed's `key = value` lines, and eval_results.json, written last: they
                      mark a finished run
"""

import json
import os
import shutil

import tensorflow as tf

from training.config import CONFIG_FILE, RunConfig

RESULTS_FILE = "eval_results.json"
BACKUP, SAVED_MODEL, TENSORBOARD, ENCODER = "backup", "saved_model", "tensorboard", "encoder"
SUBFOLDERS = (BACKUP, SAVED_MODEL, TENSORBOARD, ENCODER)  # what a run folder holds besides files


class RunFolderError(Exception):
    """A folder that cannot hold the run asked for; the message says why."""


def backup_dir(run_dir):
    return os.path.join(run_dir, BACKUP)


def saved_model_dir(run_dir):
    return os.path.join(run_dir, SAVED_MODEL)


def encoder_dir(run_dir):
    return os.path.join(run_dir, ENCODER)


def tensorboard_dir(run_dir):
    return os.path.join(run_dir, TENSORBOARD)


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


def check(run_dir, config, *, overwrite=False):
    """Raises RunFolderError unless `run_dir` can take `config`'s run; writes nothing.

    It can when it is missing, empty, or holds an unfinished run of the same identity (which the run
    resumes); with `overwrite`, a train.py run there, finished or not, is replaced by `claim`.
    """
    existing = os.path.abspath(run_dir)  # the folder, or the nearest ancestor that exists
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK):
        raise RunFolderError(f"--output_dir {run_dir}: cannot write there ({existing} is not a writable folder)")
    if not os.path.exists(run_dir) or (not os.listdir(run_dir)):
        return
    if not is_run(run_dir):
        raise RunFolderError(f"{run_dir}: not empty and holds no run of train.py; choose another --output_dir")
    if overwrite:
        return
    if is_finished(run_dir):
        raise RunFolderError(f"{run_dir}: holds a finished run; choose another --output_dir, or pass "
                             "--overwrite_output_dir to replace it")
    previous = RunConfig.load(run_dir).identity()
    changed = {k: (previous[k], v) for k, v in config.identity().items() if previous[k] != v}
    if changed:
        details = ", ".join(f"--{k}: {old!r} there, {new!r} now" for k, (old, new) in changed.items())
        raise RunFolderError(f"{run_dir}: holds a run of another configuration ({details}); choose another "
                             "--output_dir, or pass --overwrite_output_dir to replace it")


def claim(run_dir, config, *, overwrite=False):
    """Makes `run_dir` hold `config`'s run, once every input is checked: a run that fails to start
    leaves nothing behind that would refuse the next. With `overwrite`, a run there is replaced."""
    check(run_dir, config, overwrite=overwrite)
    if overwrite and is_run(run_dir):
        shutil.rmtree(run_dir)
    try:
        os.makedirs(run_dir, exist_ok=True)
        config.save(run_dir)
    except OSError as e:
        raise RunFolderError(f"--output_dir {run_dir}: cannot write there ({e.strerror})") from None


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
