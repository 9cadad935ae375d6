r"""Dev metrics of train.py (dense and pruned) beside transformers' PyTorch fine-tuning of the same weights.

  HF_HUB_OFFLINE=1 python benchmarks/accuracy.py --init_checkpoint DIR --glue_dir ../shared/glue \
      --tasks rte,mrpc,stsb --sparsities 0,0.5,0.8 [--seeds 0,1] [--num_train_epochs 3] --output_root /tmp/accuracy

For each task and seed: the peer (benchmarks/peer.py, dense) and train.py at each --target_sparsity,
each a program of its own, one after the other, with the same examples, hyper-parameters (train.py's
defaults: learning rate 2e-5, batch 32, max_seq_length 128, warm-up 10%, AdamW with weight decay
0.01), seed and precision. Prints a markdown table and one JSON line. A run whose results exist is
read back, not repeated: an interrupted sweep continues where it stopped.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root
from benchmarks import common  # noqa: E402  (first: TensorFlow's environment)

from absl import app, flags  # noqa: E402

from training import run_folder  # noqa: E402

FLAGS = flags.FLAGS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(command, output_dir, finished):
    """Runs one fine-tuning program unless `finished(output_dir)`; returns its wall seconds (0 if read back)."""
    if finished(output_dir):
        return 0.0
    start = time.time()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", HF_HUB_OFFLINE="1")
    subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.time() - start


def run_root(task, seed):
    """The folder of a task and seed's runs: what else changes the runs names it too."""
    return os.path.join(FLAGS.output_root, task, f"epochs{FLAGS.num_train_epochs:g}_seed{seed}_{FLAGS.mixed_precision}")


def peer_row(task, seed, common_flags):
    out = os.path.join(run_root(task, seed), "transformers")
    results_file = os.path.join(out, "eval_results.json")
    seconds = run([sys.executable, "benchmarks/peer.py", f"--task={task}", f"--output_dir={out}", *common_flags], out,
                  lambda folder: os.path.isfile(results_file))
    with open(results_file) as f:
        results = json.load(f)
    metrics = {k: v for split in results["metrics"].values() for k, v in split.items()}  # MNLI: both dev splits
    return {"task": task, "seed": seed, "runner": "transformers (PyTorch)", "sparsity": 0.0, "metrics": metrics,
            "global_step": results["global_step"], "wall_s": round(seconds)}


def train_py_row(task, seed, sparsity, common_flags):
    out = os.path.join(run_root(task, seed), f"train.py_{sparsity:g}")
    seconds = run([sys.executable, "train.py", f"--task={task}", f"--output_dir={out}",
                   f"--target_sparsity={sparsity:g}", *common_flags], out, run_folder.is_finished)
    results = run_folder.read_results(out)
    metrics = {k[len("eval_"):]: v for k, v in results.items()
               if k.startswith("eval_") and k not in ("eval_loss", "eval_mm_loss", "eval_time_s")}
    pruned = results["sparsity"].get("pruned")
    return {"task": task, "seed": seed, "runner": "train.py (tf_keras)",
            "sparsity": round(pruned["sparsity"], 4) if pruned else 0.0, "metrics": metrics,
            "global_step": results["global_step"], "wall_s": round(seconds)}


def define_flags():
    flags.DEFINE_string("init_checkpoint", None, "A Hugging Face BERT folder (both sides read it).", required=True)
    flags.DEFINE_string("glue_dir", "../shared/glue", "GLUE's original files.")
    flags.DEFINE_list("tasks", ["rte", "mrpc", "stsb"], "GLUE tasks.")
    flags.DEFINE_list("sparsities", ["0", "0.5", "0.8"], "train.py --target_sparsity values.")
    flags.DEFINE_list("seeds", ["0"], "Seeds; each runs every configuration.")
    flags.DEFINE_float("num_train_epochs", 3.0, "Epochs, both sides.")
    flags.DEFINE_enum("mixed_precision", "float32", ["float32", "bfloat16", "float16"], "Both sides.")
    flags.DEFINE_bool("peer", True, "Also run the transformers peer (dense).")
    flags.DEFINE_string("output_root", "/tmp/accuracy", "Where runs are written (and read back from).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    rows = []
    for task in FLAGS.tasks:
        for seed in (int(s) for s in FLAGS.seeds):
            common_flags = [f"--init_checkpoint={FLAGS.init_checkpoint}", f"--glue_dir={FLAGS.glue_dir}",
                            f"--seed={seed}", f"--num_train_epochs={FLAGS.num_train_epochs:g}",
                            f"--mixed_precision={FLAGS.mixed_precision}"]
            if FLAGS.peer:
                rows.append(peer_row(task, seed, common_flags))
            rows += [train_py_row(task, seed, float(s), common_flags) for s in FLAGS.sparsities]
    print("| task | seed | runner | encoder sparsity | dev metrics | steps | wall (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(r["metrics"].items()))
        print(f"| {r['task']} | {r['seed']} | {r['runner']} | {r['sparsity']:.0%} | {metrics} | {r['global_step']} "
              f"| {r['wall_s'] or 'read back'} |")
    common.print_json({"rows": rows, "num_train_epochs": FLAGS.num_train_epochs,
                       "mixed_precision": FLAGS.mixed_precision})


if __name__ == "__main__":
    define_flags()
    app.run(main)
