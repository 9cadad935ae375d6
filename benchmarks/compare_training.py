r"""Issue 7's training table: train.py's step against transformers' on the same batches, back to back.

  HF_HUB_OFFLINE=1 python benchmarks/compare_training.py --init_checkpoint DIR --glue_dir DIR

Runs benchmarks/train_throughput.py once per row, one process after another on this machine:
{float32, the 16-bit type train.py's `--mixed_precision auto` picks here (float16 on a GPU, bfloat16
on a CPU that has it)} x {SST-2's length buckets, fixed 128-token padding} x {train.py, transformers},
and train.py pruned to 50% on SST-2's buckets; `--xla` compiles train.py's rows with XLA (on a GPU).
Prints a Markdown table (examples/s, real tokens/s, share of the matmul peak, ratios against the
peer) and writes every JSON line to --output. `--rounds N` runs every row N times, the rows of a
setting back to back in each round, and reports medians: on a shared 2-core machine one pass of a
row can move by a third from one hour to the next (benchmarks/README.md).
"""

import json
import os
import statistics
import subprocess
import sys

from absl import app, flags

flags.DEFINE_string("init_checkpoint", None, "A Hugging Face BERT folder (both sides load it).", required=True)
flags.DEFINE_string("glue_dir", "../shared/glue", "A folder in the original GLUE layout.")
flags.DEFINE_integer("warmup_steps", 100, "Untimed steps of each SST-2 row.")
flags.DEFINE_integer("steps", 300, "Timed steps of each SST-2 row.")
flags.DEFINE_integer("fixed_warmup_steps", 10, "Untimed steps of each fixed-128 row (one shape warms up fast).")
flags.DEFINE_integer("fixed_steps", 40, "Timed steps of each fixed-128 row.")
flags.DEFINE_list("precisions", ["float32", "auto"], "train.py's --mixed_precision values to run.")
flags.DEFINE_integer("rounds", 1, "Passes over every row; the table gives medians over them.")
flags.DEFINE_bool("xla", False, "train.py's rows with --xla (the peer has no XLA).")
flags.DEFINE_string("output", "/tmp/compare_training.jsonl", "Where the JSON lines go.")
FLAGS = flags.FLAGS

HERE = os.path.dirname(os.path.abspath(__file__))


def resolve_policy(precision):
    """The Keras policy train.py's --mixed_precision=`precision` picks on this machine (in a child process:
    importing train here would define its flags beside these)."""
    code = f"import train; print(train.choose_policy({precision!r}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(HERE), capture_output=True, text=True,
                            env=dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3"))
    if result.returncode:
        raise SystemExit(f"--precisions: cannot resolve {precision!r}:\n{result.stderr[-2000:]}")
    return result.stdout.strip().splitlines()[-1]


def run_row(precision, fixed, framework, sparsity=0.0):
    warmup, steps = (FLAGS.fixed_warmup_steps, FLAGS.fixed_steps) if fixed else (FLAGS.warmup_steps, FLAGS.steps)
    args = [sys.executable, os.path.join(HERE, "train_throughput.py"), f"--init_checkpoint={FLAGS.init_checkpoint}",
            "--task=sst2", f"--glue_dir={FLAGS.glue_dir}", f"--mixed_precision={precision}",
            f"--framework={framework}", f"--warmup_steps={warmup}", f"--steps={steps}",
            f"--target_sparsity={sparsity}", "--fixed_length" if fixed else "--nofixed_length",
            "--xla" if FLAGS.xla and framework == "train.py" else "--noxla"]
    result = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    if result.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    policies = {}  # "auto" may pick float32 (a CPU without bfloat16): run each policy once
    for precision in FLAGS.precisions:
        policies.setdefault(resolve_policy(precision), precision)
    settings = [(precision, fixed) for precision in policies.values() for fixed in (False, True)]
    rounds = {setting: [] for setting in settings}  # each round: the setting's rows, the peer's first
    with open(FLAGS.output, "w") as out:
        for _ in range(FLAGS.rounds):
            for precision, fixed in settings:
                rows = [run_row(precision, fixed, framework) for framework in ("transformers", "train.py")]
                if not fixed:
                    rows.append(run_row(precision, fixed, "train.py", sparsity=0.5))
                for found in rows:
                    out.write(json.dumps(found) + "\n")
                    out.flush()
                rounds[(precision, fixed)].append(rows)
    print("| row | framework | examples/s | tokens/s | share of matmul peak | / peer | / peer, each round |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for passes in rounds.values():
        for i, found in enumerate(passes[0]):
            def median(key):
                return statistics.median(rows[i][key] for rows in passes)
            ratios = [rows[i]["examples_per_s"] / rows[0]["examples_per_s"] for rows in passes]
            name = f"{found['policy']}, {'fixed 128' if found['padding'] == 'fixed' else 'SST-2 buckets'}"
            who = found["framework"] + (f", {found['target_sparsity']:.0%} pruned" if found["target_sparsity"] else "")
            print(f"| {name} | {who} | {median('examples_per_s'):.1f} | {median('tokens_per_s'):,.0f} | "
                  f"{median('flops_share_of_peak'):.0%} of {median('matmul_peak_tflops_per_s') * 1000:.0f} GFLOP/s | "
                  f"{statistics.median(ratios):.2f}x | {', '.join(f'{r:.2f}' for r in ratios)} |")


if __name__ == "__main__":
    app.run(main)
