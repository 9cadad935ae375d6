r"""Dev metrics of train.py (dense and pruned) beside Hugging Face's PyTorch fine-tuning of the same weights.

  python benchmarks/finetune_vs_hf.py --init_checkpoint DIR --glue_dir ../shared/glue \
      --tasks rte,mrpc,stsb --sparsities 0,0.5,0.8 --output_root /tmp/finetune

Both sides use the same examples, hyper-parameters (learning rate 2e-5, `--num_train_epochs`, batch 32,
max_seq_length 128, warm-up 10%, AdamW with weight decay 0.01) and seeds, one run after the other on
this machine, in float32. Prints a markdown table and one JSON line. A run whose results exist is
read back, not repeated, so an interrupted sweep continues where it stopped.
"""

import json
import os
import platform
import subprocess
import sys
import time

from absl import app, flags

flags.DEFINE_string("init_checkpoint", None, "A Hugging Face BERT folder (both sides read it).", required=True)
flags.DEFINE_string("glue_dir", "../shared/glue", "GLUE's original files.")
flags.DEFINE_list("tasks", ["rte", "mrpc", "stsb"], "GLUE tasks.")
flags.DEFINE_list("sparsities", ["0", "0.5", "0.8"], "train.py --target_sparsity values.")
flags.DEFINE_list("seeds", ["0"], "Seeds; each runs every configuration.")
flags.DEFINE_float("num_train_epochs", 3.0, "Epochs, both sides.")
flags.DEFINE_bool("peer", True, "Also run the Hugging Face peer (dense).")
flags.DEFINE_string("output_root", "/tmp/finetune_vs_hf", "Where runs are written.")
FLAGS = flags.FLAGS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(command, output_dir):
    """Runs one fine-tuning (unless its results exist) and returns (eval results, wall seconds)."""
    results_file = os.path.join(output_dir, "eval_results.json")
    start = time.time()
    if not os.path.exists(results_file):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", HF_HUB_OFFLINE="1")
        subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    with open(results_file) as f:
        return json.load(f), time.time() - start


def main(argv):
    del argv
    rows = []
    for task, seed in ((task, seed) for task in FLAGS.tasks for seed in FLAGS.seeds):
        common = [f"--init_checkpoint={FLAGS.init_checkpoint}", f"--glue_dir={FLAGS.glue_dir}", f"--seed={seed}",
                  f"--num_train_epochs={FLAGS.num_train_epochs:g}"]
        run_name = f"epochs{FLAGS.num_train_epochs:g}_seed{seed}"
        if FLAGS.peer:
            out = os.path.join(FLAGS.output_root, task, run_name, "hf")
            results, seconds = run([sys.executable, "benchmarks/hf_finetune_glue.py", f"--task={task}",
                                    f"--output_dir={out}", *common], out)
            rows.append({"task": task, "seed": int(seed), "runner": "transformers (PyTorch)", "sparsity": 0.0,
                         "metrics": results["metrics"]["validation"], "wall_s": round(seconds)})
        for sparsity in FLAGS.sparsities:
            out = os.path.join(FLAGS.output_root, task, run_name, f"ours_{sparsity}")
            results, seconds = run([sys.executable, "train.py", f"--task={task}", f"--output_dir={out}",
                                    f"--target_sparsity={sparsity}", "--mixed_precision=float32", *common], out)
            metrics = {k[len("eval_"):]: v for k, v in results.items()
                       if k.startswith("eval_") and k not in ("eval_loss", "eval_time_s")}
            rows.append({"task": task, "seed": int(seed), "runner": "train.py (tf_keras)",
                         "sparsity": round(results["sparsity"]["pruned"]["sparsity"], 4)
                         if results["sparsity"].get("pruned") else 0.0,
                         "metrics": metrics, "wall_s": round(seconds)})
    print("| task | seed | runner | encoder sparsity | dev metrics | wall (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(r["metrics"].items()))
        print(f"| {r['task']} | {r['seed']} | {r['runner']} | {r['sparsity']:.0%} | {metrics} | {r['wall_s']} |")
    print(json.dumps({"rows": rows, "num_train_epochs": FLAGS.num_train_epochs, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                      "date": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    app.run(main)
