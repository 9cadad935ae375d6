r"""Training speed: train.py's step against transformers' PyTorch peer on the very same batches.

  HF_HUB_OFFLINE=1 python benchmarks/training_speed.py --init_checkpoint DIR --glue_dir DIR [--task sst2] \
      [--framework train.py|transformers] [--mixed_precision auto|float32|bfloat16|float16] [--fixed_length] \
      [--target_sparsity 0.5] [--xla] [--warmup_steps 100 --steps 200]
  HF_HUB_OFFLINE=1 python benchmarks/training_speed.py --compare --init_checkpoint DIR --glue_dir DIR \
      [--precisions float32,auto] [--rounds 3] [--output rows.jsonl]

One row: train.py's side is built as train.py builds it (RunConfig -> training.data.load_run_data
-> plan_steps -> build_training_model -> model.fit, without its logging and backup callbacks);
`--fixed_length` is train.py's `--padding fixed`. The peer (`--framework transformers`,
benchmarks/peer.py) trains on the same weights (a Hugging Face folder) and the same batches, in the
policy's compute dtype. The first `--warmup_steps` steps are not timed (tracing, kernels for each
new shape). Prints one JSON line: examples/s, real tokens/s, and the step's matrix-multiply FLOP
rate against this machine's matmul peak in the step's compute dtype, measured just before.

`--compare`: the whole table, each row in a child process of this script (no kernel cache,
policy or thread pool carried from one row to the next): {each distinct policy of `--precisions`}
x {the task's length buckets, fixed `--max_seq_length`} x {transformers, train.py, and train.py
pruned to `--pruned_sparsity` on the buckets}. A setting's rows run back to back within a round,
and the table gives medians over `--rounds` rounds: on a shared machine a row can move by a third
from one hour to the next, rows run minutes apart move together.
"""

import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root
from benchmarks import common  # noqa: E402  (first: TensorFlow's environment)

from absl import app, flags  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402

import bert_keras  # noqa: E402
import glue_tasks  # noqa: E402
from training import callbacks, data  # noqa: E402
from training import config as run_config  # noqa: E402
from training.config import ConfigError, RunConfig  # noqa: E402
from training.model import build_training_model  # noqa: E402
from training.optimization import plan_steps  # noqa: E402
from training.precision import choose_policy  # noqa: E402

FLAGS = flags.FLAGS
# The RunConfig fields this script takes as flags; a --compare child receives them all, the
# per-row ones (ROW_SET) as its row asks.
CONFIG_FLAGS = ("task", "init_checkpoint", "data_dir", "tfds_manual_dir", "glue_dir", "learning_rate",
                "train_batch_size", "max_seq_length", "warmup_proportion", "weight_decay", "seed", "mixed_precision",
                "xla", "bucket_width", "target_sparsity", "pruning_schedule", "pruning_frequency",
                "pruning_begin_step", "pruning_end_step")
ROW_SET = ("mixed_precision", "target_sparsity", "xla")


def row_config(values, fixed_length, total_steps):
    """The RunConfig of a row: `values` (CONFIG_FLAGS' values), its padding, `total_steps` steps."""
    # As many epochs as steps: at least `total_steps` steps, which max_steps then plans exactly.
    return RunConfig(**values, padding="fixed" if fixed_length else "bucket", max_steps=total_steps,
                     num_train_epochs=float(total_steps))


def prepare(config):
    """(task, policy, pretrained, plan, batches): what train.py has in hand just before it builds the model."""
    task = glue_tasks.get_task(config.task)
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    policy = choose_policy(config.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    pretrained = bert_keras.load_encoder(config.init_checkpoint)
    run_data = data.load_run_data(config, task, pretrained)
    plan = plan_steps(config, run_data.steps_per_epoch)
    return task, policy, pretrained, plan, data.training_batches(config, run_data.train, plan.epochs)


def batch_sizes(batches, first, last, model_config, num_outputs, output_range):
    """Examples, real tokens, padded tokens and training FLOPs of batches [first, last)."""
    examples = real = padded = flops = 0
    for features, _ in batches.skip(first).take(last - first):
        mask = features["input_mask"]
        batch, seq = mask.shape
        examples, real, padded = examples + batch, real + int(tf.reduce_sum(mask)), padded + batch * seq
        flops += common.training_flops(model_config, batch, seq, num_outputs, output_range)
    return {"examples": examples, "tokens": real, "padded_tokens": padded, "flops": flops}


def time_train_py(config, task, pretrained, plan, batches, warmup_steps):
    """(seconds, timed steps, pruned layers) of train.py's model.fit over `batches` after `warmup_steps`."""
    trained = build_training_model(config, pretrained, task, plan)
    timer = common.StepTimer(warmup_steps)
    fit_callbacks = [timer, callbacks.StopAtStep(plan.total_steps)]
    if config.pruned:
        fit_callbacks.insert(0, tfmot.sparsity.keras.UpdatePruningStep())
    trained.model.fit(batches, epochs=plan.epochs, steps_per_epoch=plan.steps_per_epoch, callbacks=fit_callbacks,
                      verbose=0)
    return timer.seconds, timer.timed_steps, len(trained.pruned_layers)


def time_transformers(config, task, plan, batches, warmup_steps, precision):
    """(seconds, timed steps, 0) of the PyTorch peer over the same batches after `warmup_steps`."""
    import torch  # only the peer's rows load PyTorch

    from benchmarks import peer

    torch.manual_seed(config.seed)
    steps = [peer.to_torch(features, labels, task.is_regression)
             for features, labels in batches.take(plan.total_steps).as_numpy_iterator()]
    model = peer.load_model(config.init_checkpoint, task.num_outputs, task.is_regression)
    model.train()
    optimizer, scheduler = peer.make_optimizer(model, config.learning_rate, config.weight_decay, plan.warmup_steps,
                                               plan.total_steps)
    scaler = peer.grad_scaler(precision)
    for i, (features, labels) in enumerate(steps):
        if i == warmup_steps:
            peer.synchronize()
            start = time.perf_counter()
        loss = peer.training_step(model, optimizer, scheduler, scaler, features, labels,
                                  is_regression=task.is_regression, precision=precision)
    loss.item()  # waits for the last step
    return time.perf_counter() - start, len(steps) - warmup_steps, 0


def measure(config, framework, warmup_steps):
    """One row: train.py's step or the peer's, timed on the config's batches after `warmup_steps`."""
    if framework == "transformers" and (config.pruned or config.xla):
        raise app.UsageError("--framework transformers times the dense step only, without XLA")
    task, policy, pretrained, plan, batches = prepare(config)
    precision = keras.mixed_precision.Policy(policy).compute_dtype
    # The batches the timed steps will see; FLOPs as each side computes them: train.py's last layer on
    # [CLS] alone (bert_keras.with_output_range), the peer's on every token.
    sizes = batch_sizes(batches, warmup_steps, plan.total_steps, pretrained.config, task.num_outputs,
                        1 if framework == "train.py" else None)
    peak = common.matmul_peak(precision)
    if framework == "train.py":
        seconds, steps, pruned_layers = time_train_py(config, task, pretrained, plan, batches, warmup_steps)
    else:
        seconds, steps, pruned_layers = time_transformers(config, task, plan, batches, warmup_steps, precision)
    examples, tokens, padded = sizes["examples"], sizes["tokens"], sizes["padded_tokens"]
    return {
        "framework": framework, "task": task.glue_name, "checkpoint": config.init_checkpoint, "policy": policy,
        "padding": config.padding, "bucket_width": config.bucket_width if config.padding == "bucket" else None,
        "xla": config.xla, "target_sparsity": config.target_sparsity, "pruned_layers": pruned_layers,
        "batch_size": config.train_batch_size, "max_seq_length": config.max_seq_length,
        "warmup_steps": warmup_steps, "steps": steps, "examples": examples, "tokens": tokens, "padded_tokens": padded,
        "padding_share": round(1 - tokens / padded, 4), "seconds": round(seconds, 3),
        "step_s": round(seconds / steps, 4), "examples_per_s": round(examples / seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1), "padded_tokens_per_s": round(padded / seconds, 1),
        "flops": sizes["flops"], "tflops_per_s": round(sizes["flops"] / seconds / 1e12, 4),
        "matmul_peak_tflops_per_s": round(peak / 1e12, 4),
        "flops_share_of_peak": round(sizes["flops"] / seconds / peak, 3)}


# --- --compare: the table ---

def distinct_precisions(precisions):
    """{policy: the first --mixed_precision value giving it}: "auto" may pick float32, run once."""
    policies = {}
    for precision in precisions:
        policies.setdefault(choose_policy(precision), precision)
    return policies


def compare(run_row, precisions, rounds, pruned_sparsity):
    """{(policy, fixed): [each round's rows]}; run_row(precision, fixed, framework, sparsity) -> a row's record.

    Each round runs every setting's rows back to back, the peer's first.
    """
    settings = [(policy, precision, fixed) for policy, precision in distinct_precisions(precisions).items()
                for fixed in (False, True)]
    passes = {(policy, fixed): [] for policy, _, fixed in settings}
    for _ in range(rounds):
        for policy, precision, fixed in settings:
            rows = [run_row(precision, fixed, "transformers", 0.0), run_row(precision, fixed, "train.py", 0.0)]
            if not fixed and pruned_sparsity:
                rows.append(run_row(precision, fixed, "train.py", pruned_sparsity))
            passes[(policy, fixed)].append(rows)
    return passes


def summarize(passes):
    """The table's lines: each train.py row against the peer of its round, medians over the rounds."""
    lines = []
    for rounds in passes.values():
        for i, first in enumerate(rounds[0][1:], start=1):
            def median(key, row=i):
                return statistics.median(rows[row][key] for rows in rounds)
            ratios = [rows[i]["examples_per_s"] / rows[0]["examples_per_s"] for rows in rounds]
            shape = f"fixed {first['max_seq_length']}" if first["padding"] == "fixed" else f"{first['task']} buckets"
            pruned = f", {first['target_sparsity']:.0%} pruned" if first["target_sparsity"] else ""
            lines.append({"row": f"{first['policy']}, {shape}{pruned}",
                          "train_py_examples_per_s": median("examples_per_s"),
                          "transformers_examples_per_s": median("examples_per_s", 0),
                          "ratio": statistics.median(ratios), "ratios": ratios,
                          "share_of_peak": median("flops_share_of_peak"),
                          "matmul_peak_gflops_per_s": 1000 * median("matmul_peak_tflops_per_s")})
    return lines


def markdown(lines):
    table = ["| row | train.py ex/s | transformers ex/s | ratio | train.py share of matmul peak | ratio, each round |",
             "| --- | --- | --- | --- | --- | --- |"]
    for line in lines:
        table.append(f"| {line['row']} | {line['train_py_examples_per_s']:.1f} | "
                     f"{line['transformers_examples_per_s']:.1f} | {line['ratio']:.2f}x | "
                     f"{line['share_of_peak']:.0%} of {line['matmul_peak_gflops_per_s']:.0f} GFLOP/s | "
                     f"{', '.join(f'{r:.2f}' for r in line['ratios'])} |")
    return "\n".join(table)


def child_row(precision, fixed, framework, sparsity):
    """A row of the table, measured by this script in a process of its own."""
    warmup, steps = (FLAGS.fixed_warmup_steps, FLAGS.fixed_steps) if fixed else (FLAGS.warmup_steps, FLAGS.steps)
    passed = []
    for name in CONFIG_FLAGS:
        value = FLAGS[name].value
        if name not in ROW_SET and value is not None:
            passed.append(f"--{'' if value else 'no'}{name}" if isinstance(value, bool) else f"--{name}={value}")
    args = [sys.executable, os.path.abspath(__file__), *passed, f"--framework={framework}",
            f"--mixed_precision={precision}", f"--target_sparsity={sparsity}",
            "--fixed_length" if fixed else "--nofixed_length", f"--warmup_steps={warmup}", f"--steps={steps}",
            "--xla" if FLAGS.xla and framework == "train.py" else "--noxla"]
    result = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    if result.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def define_flags():
    """The program's flags (defined only when run as one: the tests import this module beside train.py)."""
    run_config.define_flags(CONFIG_FLAGS, init_checkpoint=None)
    flags.adopt_module_key_flags(common)  # listed by --help
    flags.mark_flag_as_required("init_checkpoint")  # a Hugging Face BERT folder for the peer's rows
    flags.DEFINE_enum("framework", "train.py", ["train.py", "transformers"], "Whose training step to time.")
    flags.DEFINE_bool("fixed_length", False, "Pad every batch to --max_seq_length (train.py's --padding fixed).")
    flags.DEFINE_integer("warmup_steps", 100, "Untimed steps first (with --compare: of the bucket rows).",
                         lower_bound=1)
    flags.DEFINE_integer("steps", 200, "Timed steps (with --compare: of the bucket rows).", lower_bound=1)
    flags.DEFINE_bool("compare", False, "Run the whole table, each row in a child process.")
    flags.DEFINE_list("precisions", ["float32", "auto"], "--compare: the --mixed_precision values to run.")
    flags.DEFINE_integer("rounds", 1, "--compare: passes over every row; the table gives medians.", lower_bound=1)
    flags.DEFINE_float("pruned_sparsity", 0.5, "--compare: train.py's pruned bucket row (0: none).")
    # One shape warms up fast, and a 128-token step is several times a bucket's.
    flags.DEFINE_integer("fixed_warmup_steps", 10, "--compare: untimed steps of the fixed-length rows.", lower_bound=1)
    flags.DEFINE_integer("fixed_steps", 40, "--compare: timed steps of the fixed-length rows.", lower_bound=1)
    flags.DEFINE_string("output", None, "--compare: also write every row's JSON line to this file.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.compare:
        values = {name: FLAGS[name].value for name in CONFIG_FLAGS}
        try:
            config = row_config(values, FLAGS.fixed_length, FLAGS.warmup_steps + FLAGS.steps)
        except ConfigError as e:
            raise app.UsageError(f"--{e}") from None
        common.print_json(measure(config, FLAGS.framework, FLAGS.warmup_steps))
        return
    if FLAGS.output:
        open(FLAGS.output, "w").close()

    def run_row(*row):
        found = child_row(*row)
        if FLAGS.output:  # as each row arrives: an interrupted table keeps its rows
            with open(FLAGS.output, "a") as out:
                out.write(json.dumps(found) + "\n")
        return found

    lines = summarize(compare(run_row, FLAGS.precisions, FLAGS.rounds, FLAGS.pruned_sparsity))
    print(markdown(lines))
    common.print_json({"rows": lines, "rounds": FLAGS.rounds})


if __name__ == "__main__":
    define_flags()
    app.run(main)
