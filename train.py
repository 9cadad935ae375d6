r"""Fine-tunes BERT on a GLUE task with model.fit, pruning it by magnitude on the way if asked.

  python train.py --task sst2                                   # BERT-Base, GLUE from tfds (downloads)
  python train.py --task rte --glue_dir ../shared/glue --init_checkpoint DIR --target_sparsity 0.8
  python train.py --task all --learning_rate 2e-5,3e-5,4e-5,5e-5   # the seed's sweep, a folder a run
  python train.py --task mrpc --distill --target_sparsity 0.8,0.9   # a dense teacher, then students of it
  python train.py --task sst2 --distill --target_sparsity 0.5 --pruning_structure heads_and_neurons \
      --export_tflite float,dynamic_range                         # a smaller, faster model, and TFLite files

Flags -> a RunConfig a run (training/config.py) -> run(). Each run writes its folder
(training/run_folder.py): `train_config.json`, TensorBoard logs (`tensorboard --logdir OUTPUT_DIR`), a
resumable checkpoint in `backup/` (rerun the same command after an interruption), `eval_results.txt`
/ `.json` on the dev split(s), `sparsity.txt` / `.json`, and `saved_model/`, which serves raw text
(a structurally pruned run: sliced to the heads and neurons it keeps, with its encoder in `encoder/`).
"""

import gzip
import json
import os
import re
import shutil
import sys
import time

PROCESS_START = time.time()  # before TensorFlow's import: the time to the first step counts start-up
# TensorFlow's C++ logging (CUDA probing on a machine without GPUs, ...) off unless the user sets it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging  # noqa: E402

import bert_keras  # noqa: E402  (first: it sets TensorFlow's environment, Keras 2 and oneDNN, before TF loads)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

import glue_tasks  # noqa: E402
import pruning_schedules  # noqa: E402
from pruning_schedules import structured  # noqa: E402
from glue_tasks import user_data  # noqa: E402
from training import callbacks, config as run_config, data, distillation, distribution, export  # noqa: E402
from training import run_folder, tflite  # noqa: E402
from training.evaluation import evaluate  # noqa: E402
from training import model as task_model  # noqa: E402
from training.model import build_training_model  # noqa: E402
from training.optimization import plan_steps  # noqa: E402
from training.precision import choose_policy  # noqa: E402

# --- Flags: one a RunConfig field (names as google-research/bert's run_classifier.py), and the sweep ---

TRAINABLE_TASKS = [t.tfds_name for t in glue_tasks.TASKS if "train" in t.splits]
SWEEP = ("task", "learning_rate", "target_sparsity", "output_dir")  # flags that may name several runs
flags.DEFINE_string("task", None, f"GLUE task ({', '.join(TRAINABLE_TASKS)}) or 'all'; or --train_file.")
flags.DEFINE_list("learning_rate", ["2e-5"], "Peak learning rate(s); several run one after the other, "
                  "each into OUTPUT_DIR/lr_VALUE.")
flags.DEFINE_list("target_sparsity", ["0"], "Final share of zeros in each pruned kernel (with --pruning_structure "
                  "heads_and_neurons: of the heads and of the neurons); 0 trains dense. "
                  "Several (0.8,0.9) run one after the other, each into OUTPUT_DIR/sparsity_VALUE.")
flags.DEFINE_bool("distill", False, "The whole pruning pipeline: train a dense model in OUTPUT_DIR/dense (or "
                  "reuse it there, finished), then each --target_sparsity into OUTPUT_DIR/sparsity_VALUE, "
                  "distilled from the dense model and starting from it (--teacher and --init_from), with the "
                  "pruning recipe where no flag says otherwise: --learning_rate 5e-5 --learning_rate_schedule "
                  "rewarm --initial_sparsity 0.5 --pruning_updates 8 --pruning_score fisher (heads and neurons: "
                  "taylor).")
flags.DEFINE_float("teacher_epochs", None, "With --distill: the dense model's --num_train_epochs (default: "
                   "the students').", lower_bound=0)
flags.DEFINE_string("output_dir", None, "Where runs go (default output/TASK, or output/ with --task all).")
flags.DEFINE_bool("overwrite_output_dir", False, "Replace a train.py run in the output folder, finished or "
                  "not, instead of refusing it (or resuming it).")
flags.DEFINE_bool("keep_checkpoints", False, "Keep backup/ (the training state, optimizer included) after a "
                  "finished run; by default it goes, and the folder keeps the export and results.")


run_config.define_flags([f.name for f in run_config.fields() if f.name not in SWEEP])
flags.adopt_module_key_flags(run_config)  # --helpshort lists them as train.py's
FLAGS = flags.FLAGS


def parse_pair(text, flag):
    """'1,4' -> (1, 4) for --block_size and --sparsity_m_by_n."""
    try:
        pair = tuple(int(v) for v in text.split(","))
    except ValueError:
        pair = ()
    if len(pair) != 2 or min(pair) < 1:
        raise flags.ValidationError("expected two positive integers separated by a comma, like '1,4'")
    return pair


def parse_tasks(task):
    """--task -> tfds names of the tasks to train."""
    if task == "all":
        return TRAINABLE_TASKS
    try:
        name = glue_tasks.get_task(task).tfds_name
    except glue_tasks.UnknownTaskError:
        name = None
    if name not in TRAINABLE_TASKS:
        raise flags.ValidationError(f"expected one of {', '.join(TRAINABLE_TASKS)} or all "
                                    "(the GLUE tasks with training data)")
    return [name]


def flag_value(name, value):
    """A flag's value as its RunConfig field takes it."""
    return value and parse_pair(value, name) if name in ("block_size", "sparsity_m_by_n") else value


def _is_positive_number(text):
    try:
        return float(text) > 0
    except ValueError:
        return False


def _is_fraction(text):
    try:
        return 0 <= float(text) < 1
    except ValueError:
        return False


def _validator(name):
    def check(value):
        try:
            run_config.check_value(name, flag_value(name, value))
        except run_config.ConfigError as e:
            raise flags.ValidationError(str(e).split(": ", 1)[-1]) from None  # absl names the flag
        return True
    return check


# Each flag's own value is checked as the flags are parsed; their combinations by run_configs, in main.
flags.register_validator("task", lambda task: task is None or bool(parse_tasks(task)))
flags.register_validator("learning_rate", lambda rates: all(_is_positive_number(r) for r in rates),
                         message="expected positive numbers, comma-separated")
flags.register_validator("target_sparsity", lambda values: all(_is_fraction(v) for v in values),
                         message="expected fractions in [0, 1), comma-separated")
for _field in run_config.fields():
    if _field.name not in SWEEP:
        flags.register_validator(_field.name, _validator(_field.name))


# The settings of a pruned run that a dense teacher of the --distill pipeline leaves at their defaults.
PRUNING_SETTINGS = ("pruning_structure", "pruning_score", "pruning_score_batches", "initial_sparsity",
                    "pruning_schedule", "pruning_begin_step", "pruning_end_step", "pruning_frequency",
                    "pruning_begin_epoch", "pruning_end_epoch", "pruning_frequency_epochs", "pruning_updates",
                    "learning_rate_schedule", "sparsity_ranking", "prune_pooler", "prune_word_embeddings",
                    "prune_layers", "block_size", "sparsity_m_by_n")


def student_settings(settings, sparsity):
    """A --distill student's settings: where no flag gives one, the recipe measured in benchmarks/README.md
    ("The pruning recipe", "The Fisher score on more seeds and tasks"): a peak learning rate of 5e-5,
    re-warmed at each of 8 mask updates from the end of warm-up to 70% of the run, the first to 50% (at
    most the target), single weights ranked by their Fisher score, heads and neurons by the Taylor score."""
    recipe = {"learning_rate": 5e-5, "pruning_score": "fisher"}
    if settings["pruning_structure"] == "heads_and_neurons":
        recipe["pruning_score"] = "taylor"
    elif settings["sparsity_m_by_n"] or settings["prune_word_embeddings"] or settings["distribution_strategy"] == "tpu":
        del recipe["pruning_score"]  # what the Fisher score does not rank (run_config.check says why)
    if settings["pruning_schedule"] == "polynomial_decay" and not settings["sparsity_m_by_n"]:
        recipe.update(learning_rate_schedule="rewarm", initial_sparsity=min(0.5, sparsity))
        if settings["pruning_frequency"] is None and settings["pruning_frequency_epochs"] is None:
            recipe["pruning_updates"] = 8
    given = {name for name in recipe if FLAGS[name].present}
    return dict(settings, **{name: value for name, value in recipe.items() if name not in given})


def run_configs():
    """The runs the flags ask for, in order: tasks (or the user's files) x learning rates x sparsities,
    with --distill a dense teacher first in each. A list of (RunConfig, reuse): `reuse` marks a
    teacher that a finished run of the same configuration in its folder stands for."""
    settings = {f.name: flag_value(f.name, FLAGS[f.name].value) for f in run_config.fields() if f.name not in SWEEP}
    if FLAGS.train_file:  # the user's own data: a task named after the file, its labels read from it
        if FLAGS.task:
            raise run_config.ConfigError("task and train_file: give one (a GLUE task, or your own files)")
        tasks = [re.sub(r"\W", "_", os.path.splitext(os.path.basename(FLAGS.train_file))[0])]
        if not FLAGS.regression and not FLAGS.labels:
            settings["labels"] = user_data.labels_in(FLAGS.train_file, FLAGS.label_column)
    elif not FLAGS.task:
        raise run_config.ConfigError(f"task is required: one of {', '.join(TRAINABLE_TASKS)} or all, "
                                     "or --train_file")
    else:
        tasks = parse_tasks(FLAGS.task)
    learning_rates = [float(v) for v in FLAGS.learning_rate]
    sparsities = [float(v) for v in FLAGS.target_sparsity]
    if FLAGS.distill:
        if FLAGS.teacher or FLAGS.init_from:
            raise run_config.ConfigError("distill trains its own teacher and starts from it: give --distill or "
                                         "--teacher / --init_from, not both")
        if not all(sparsities):
            raise run_config.ConfigError(f"distill: target_sparsity={','.join(FLAGS.target_sparsity)}; each "
                                         "student is pruned, and the dense model is the teacher: give "
                                         "sparsities > 0")
    elif FLAGS.teacher_epochs is not None:
        raise run_config.ConfigError("teacher_epochs: only with --distill")
    root = FLAGS.output_dir or os.path.join("output", "" if FLAGS.task == "all" else tasks[0])
    configs = []
    for task in tasks:
        for lr in learning_rates:
            folder = os.path.join(root, task if len(tasks) > 1 else "", f"lr_{lr:g}" if len(learning_rates) > 1 else "")
            common = dict(settings, task=task, learning_rate=lr)
            if FLAGS.distill:
                dense = dict(common, **{name: run_config.RunConfig.__dataclass_fields__[name].default
                                        for name in PRUNING_SETTINGS},
                             num_train_epochs=FLAGS.teacher_epochs or FLAGS.num_train_epochs)
                teacher_dir = os.path.normpath(os.path.join(folder, "dense"))
                configs.append((run_config.RunConfig(output_dir=teacher_dir, **dense), True))
                common.update(teacher=teacher_dir, init_from=teacher_dir)
            for sparsity in sparsities:
                name = f"sparsity_{sparsity:g}" if len(sparsities) > 1 or FLAGS.distill else ""
                student = student_settings(common, sparsity) if FLAGS.distill else common
                configs.append((run_config.RunConfig(target_sparsity=sparsity, output_dir=os.path.normpath(
                    os.path.join(folder, name)), **student), False))
    return configs


class RunError(Exception):
    """A run that cannot start or cannot finish; its message says why."""


def reusable_teacher(config):
    """Whether the --distill teacher `config` is already trained in its folder; raises if another run is there."""
    if not run_folder.is_finished(config.output_dir):
        return False
    previous = run_config.RunConfig.load(config.output_dir).identity()
    changed = sorted(k for k, v in config.identity().items() if previous[k] != v)
    if changed:
        raise RunError(f"{config.output_dir}: holds a finished dense run whose {', '.join(changed)} differ from "
                       "this teacher's; choose another --output_dir, or pass --overwrite_output_dir to retrain it")
    return True


# --- One run ---

def run(config, strategy, started, *, overwrite=False, keep_checkpoints=False):
    """Trains, evaluates and exports one model; returns its eval results (None on a worker but the chief).

    Every worker of a strategy runs all of this (training and evaluation are collective); only the
    chief writes the run's files, the others write checkpoints to temporary folders that Keras removes.
    `started` (a time.time()) starts the clocks of `time_to_first_step_s` and `wall_time_s`.
    """
    task, output_dir = data.task_of(config), config.output_dir
    chief = strategy.extended.should_checkpoint
    if chief:
        run_folder.check(output_dir, config, overwrite=overwrite)  # writes nothing: see claim below
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    policy = choose_policy(config.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)

    # Data and checkpoint first: a missing source fails before anything trains.
    with strategy.scope():  # every variable, from the encoder's to the optimizer's, is the strategy's
        pretrained = bert_keras.load_encoder(config.init_checkpoint)
    if config.max_seq_length > pretrained.config.max_position_embeddings:
        raise RunError(f"--max_seq_length {config.max_seq_length} exceeds the checkpoint's "
                       f"max_position_embeddings {pretrained.config.max_position_embeddings}")
    run_data = data.load_run_data(config, task, pretrained)
    plan = plan_steps(config, run_data.steps_per_epoch)
    teacher = distillation.teacher_outputs(config, task) if config.teacher else None
    dense_kernels = None  # what a global magnitude ranking ranks: the weights training starts from
    if (config.sparsity_ranking == "global" and config.init_from and config.pruning_structure == "weights"
            and config.pruning_score == "magnitude"):
        dense_kernels = export.export_kernels(config.init_from, task, task_model.select(pretrained.encoder, config),
                                              "--init_from")
    score_batches = None  # the first batches of the first epoch, the same at every update and on resume
    if config.pruning_score in ("taylor", "fisher"):  # fisher: on the labels alone, not the teacher's outputs
        score_batches = distribution.distributed(data.training_batches(
            config, run_data.train, 1, teacher_outputs=teacher if config.pruning_score == "taylor" else None
        ).take(config.pruning_score_batches).cache())
    with strategy.scope():
        trained = build_training_model(config, pretrained, task, plan, dense_kernels, score_batches)
        if config.init_from:
            export.init_from_export(trained.model, config.init_from, task)
    model = trained.model
    if chief:  # every input checked: only now does the folder get the run
        run_folder.claim(output_dir, config, overwrite=overwrite)
    start_step, _ = run_folder.latest_checkpoint(output_dir)
    train_batches = distribution.distributed(data.training_batches(config, run_data.train, plan.epochs, start_step,
                                                                   teacher_outputs=teacher))
    if chief:
        replicas = strategy.num_replicas_in_sync
        details = f", pruning {len(trained.pruned_layers)} kernels to {config.target_sparsity:.0%}" if config.pruned else ""
        details += f", distilled from {config.teacher}" if config.teacher else ""
        details += f", starting from {config.init_from}" if config.init_from else ""
        print(f"{task.glue_name} in {output_dir}: {plan.total_steps} steps ({plan.steps_per_epoch} an epoch), "
              f"warm-up {plan.warmup_steps}, {policy}, {replicas} replica{'s' if replicas > 1 else ''}{details}"
              + (f"; resuming at step {start_step}" if start_step else ""))

    first_dev = task.dev_splits[0]
    glue_evaluation = callbacks.GlueEvaluation(task, run_data.dev_batches[first_dev], run_data.dev_labels[first_dev])
    first_step = callbacks.FirstStepTime(started)
    fit_callbacks = [
        first_step,
        callbacks.LearningRateInLogs(trained.learning_rate),
        glue_evaluation,
        keras.callbacks.TerminateOnNaN(),
        callbacks.SafeBackupAndRestore(run_folder.backup_dir(output_dir), save_freq=config.save_checkpoints_steps,
                                       delete_checkpoint=False),
        callbacks.StopAtStep(plan.total_steps),
    ]
    if trained.pruning_callback:
        fit_callbacks.insert(0, trained.pruning_callback)
    if chief:
        fit_callbacks += [
            callbacks.RunProgress(plan.total_steps, trained.learning_rate),
            callbacks.RunTensorBoard(run_folder.tensorboard_dir(output_dir), config.log_steps,
                                     hparams={k: str(v) if isinstance(v, tuple) else v
                                              for k, v in config.identity().items() if v is not None},
                                     config_text=json.dumps(config.to_json(), indent=2),
                                     trial_id=output_dir)]

    start = time.time()
    history = model.fit(train_batches, epochs=plan.epochs, steps_per_epoch=plan.steps_per_epoch,
                        callbacks=fit_callbacks, verbose=0)
    train_time = time.time() - start
    # No loss when a restart finds training already done (it stopped during evaluation or export).
    final_loss = history.history["loss"][-1] if history.history.get("loss") else None
    if final_loss is not None and not np.isfinite(final_loss):
        raise RunError(f"{output_dir}: the training loss became {final_loss}; training stopped. The last "
                       f"good state is in {output_dir}/backup (try a lower --learning_rate)")

    results = {"global_step": int(model.optimizer.iterations.numpy()), "loss": final_loss,
               "learning_rate": config.learning_rate, "policy": policy, "task": task.glue_name,
               "train_time_s": train_time - glue_evaluation.seconds,  # training alone
               "time_to_first_step_s": first_step.seconds}  # None when a restart found training done
    if chief:  # every worker holds the same weights; eval_results last: they mark a finished run
        saved_model_dir = run_folder.saved_model_dir(output_dir)
        serving, serving_config = export.export(saved_model_dir, model, pretrained, task, config.max_seq_length,
                                                encoder_dir=run_folder.encoder_dir(output_dir), xla=config.export_xla)
        # The metrics are the export's, float32 whatever the training policy: what evaluate.py and a
        # server compute. A float32 run's last epoch evaluated these same weights already.
        start, reused_seconds = time.time(), 0.0
        for split in task.dev_splits:
            last = glue_evaluation.last
            if (policy == "float32" and split == first_dev and last and last[0] == results["global_step"]):
                _, metrics, reused_seconds = last
            else:
                metrics = evaluate(serving, task, run_data.dev_batches[split], run_data.dev_labels[split])
            results.update({glue_tasks.metric_prefix(split) + k: v for k, v in metrics.items()})
        results["eval_time_s"] = time.time() - start + reused_seconds
        if serving_config is not pretrained.config:  # sliced: its heads and neurons kept, not its zeros
            report = structured.structure_report(pretrained.config, serving_config, serving.name)
        else:
            report = pruning_schedules.sparsity_report(serving, trained.pruned_layers or None)
        pruning_schedules.write_report(report, output_dir)
        results["sparsity"] = report["totals"]
        results["footprint"] = export.footprint(saved_model_dir, serving.weights)
        if config.export_tflite:
            results["tflite"] = export_tflite(config, saved_model_dir, pretrained, task, run_data)
        results["wall_time_s"] = time.time() - started
        run_folder.write_results(output_dir, results)
        if not keep_checkpoints:
            shutil.rmtree(run_folder.backup_dir(output_dir), ignore_errors=True)
        print_summary(output_dir, task, results, config)
    distribution.wait_for_every_worker(strategy)
    return results if chief else None


def export_tflite(config, saved_model_dir, pretrained, task, run_data):
    """The run's TensorFlow Lite models in OUTPUT_DIR/tflite: {quantisation: file bytes, gzip bytes and
    the first dev split's metrics}."""
    representative = ()
    if "full_integer" in config.export_tflite:
        representative = tflite.representative_examples(
            run_data.train, min(tflite.CALIBRATION_LENGTH, config.max_seq_length))
    paths = tflite.export(os.path.join(config.output_dir, tflite.TFLITE_DIR), saved_model_dir, config.export_tflite,
                          vocab_file=pretrained.vocab_file, lower_case=pretrained.lower_case,
                          max_seq_length=config.max_seq_length, task=task.glue_name,
                          text_fields=task.text_fields, label_names=task.labels,
                          representative=representative)
    found = {}
    first_dev = task.dev_splits[0]
    for quantization, path in paths.items():
        with open(path, "rb") as f:
            data = f.read()
        metrics = evaluate(tflite.TFLiteClassifier(path), task, run_data.dev_batches[first_dev],
                           run_data.dev_labels[first_dev])
        found[quantization] = {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, 6, mtime=0)),
                               **{glue_tasks.metric_prefix(first_dev) + k: v for k, v in metrics.items()}}
    return found


def print_summary(output_dir, task, results, config):
    """The run's outcome in a few lines: dev metrics, sparsity, sizes, where everything is."""
    metrics = ", ".join(f"{k[len('eval_'):]} {v:.4f}" for k, v in results.items()
                        if k.startswith("eval_") and k != "eval_time_s")
    footprint = results["footprint"]
    print(f"{task.glue_name} dev ({results['global_step']} steps, {results['train_time_s'] / 60:.1f} min "
          f"training): {metrics}")
    pruned = results["sparsity"]["pruned"]
    if config.pruned and config.pruning_structure == "heads_and_neurons":
        print(f"structure: {pruned['sparsity']:.1%} of the heads' and neurons' weights sliced out, "
              f"{footprint['parameters']:,} parameters left (sparsity.txt: each layer's heads and neurons); "
              f"the encoder alone: {run_folder.encoder_dir(output_dir)}")
    elif config.pruned:
        print(f"sparsity: {pruned['sparsity']:.1%} of the pruned kernels, {footprint['sparsity']:.1%} of all "
              f"{footprint['parameters']:,} parameters")
    print(f"SavedModel: {run_folder.saved_model_dir(output_dir)} ({footprint['saved_model_bytes'] / 1e6:.1f} MB, "
          f"{footprint['saved_model_gzip_bytes'] / 1e6:.1f} MB gzip-compressed)")
    for quantization, found in results.get("tflite", {}).items():
        metrics = ", ".join(f"{k[len('eval_'):]} {v:.4f}" for k, v in found.items() if k.startswith("eval_"))
        print(f"TensorFlow Lite, {quantization}: {output_dir}/tflite/{quantization}.tflite "
              f"({found['bytes'] / 1e6:.1f} MB, {found['gzip_bytes'] / 1e6:.1f} MB gzip-compressed): {metrics}")
    print(f"results: {output_dir}/eval_results.txt, .json; sparsity: {output_dir}/sparsity.txt")
    print(f"tensorboard --logdir {output_dir}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        configs = run_configs()
    except run_config.ConfigError as e:  # a combination of flags; each one alone was checked by absl
        sys.exit(f"error: --{e}")
    except glue_tasks.MalformedFileError as e:
        sys.exit(f"error: --train_file {e}")
    if not FLAGS["verbosity"].present:  # TensorFlow's Python log lines off; --verbosity 0 brings them back
        logging.set_verbosity(logging.WARNING)
        tf.get_logger().setLevel("ERROR")
    first = configs[0][0]  # the strategy flags are the same for every run
    try:
        strategy = distribution.make_strategy(first.distribution_strategy, tpu=first.tpu,
                                              cpu_devices=first.cpu_devices)
        started = PROCESS_START  # the first run's clock starts with the process (imports count)
        for config, reuse in configs:
            if reuse and not FLAGS.overwrite_output_dir and reusable_teacher(config):
                print(f"{config.output_dir}: the dense teacher, finished; reused")
                continue
            run(config, strategy, started, overwrite=FLAGS.overwrite_output_dir,
                keep_checkpoints=FLAGS.keep_checkpoints)
            started = time.time()  # the next run's clock starts where this one ends
    except (bert_keras.DownloadError, glue_tasks.DownloadUnavailableError) as e:
        sys.exit(f"error: {e}\nOffline, pass --init_checkpoint FOLDER (a TF1, Hugging Face or converted BERT) "
                 "and --glue_dir FOLDER (GLUE's original files) or --tfds_manual_dir FOLDER.")
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.DeadlineExceededError) as e:
        if first.distribution_strategy != "multi_worker_mirrored":
            raise
        sys.exit(f"error: lost contact with another worker ({type(e).__name__}: {e.message!r}).\nRestart every "
                 "worker with the same command: training resumes from the last checkpoint in backup/ of the "
                 "run's --output_dir.")
    except distribution.StrategyError as e:
        sys.exit(f"error: --distribution_strategy {e}")
    except (RunError, run_folder.RunFolderError, run_config.ConfigError, export.ExportError,
            bert_keras.CheckpointError,
            glue_tasks.MalformedFileError, FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    app.run(main)
