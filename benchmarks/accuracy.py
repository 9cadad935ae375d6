r"""Dev metrics of train.py (dense and pruned) beside transformers' PyTorch fine-tuning of the same weights.

  HF_HUB_OFFLINE=1 python benchmarks/accuracy.py --init_checkpoint DIR --glue_dir ../shared/glue \
      --tasks rte,mrpc,stsb --sparsities 0,0.5,0.8 [--seeds 0,1] [--num_train_epochs 3] --output_root /tmp/accuracy

For each task and seed: the peer (benchmarks/peer.py, dense) and train.py at each --target_sparsity,
each a program of its own, one after the other, with the same examples, hyper-parameters (train.py's
defaults: learning rate 2e-5, batch 32, max_seq_length 128, warm-up 10%, AdamW with weight decay
0.01), seed and precision. Prints a markdown table and one JSON line. A run whose results exist is
read back, not repeated: an interrupted sweep continues where it stopped.

--recipes recipe,no_teacher,... also runs pruning recipes (RECIPES below) at each sparsity > 0, the
ones that distil from a dense teacher of --teacher_epochs trained first (or read back).
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


# Pruning recipes (--recipes), each a row a sparsity. default: train.py's defaults (PolynomialDecay from
# the end of warm-up to 70% of the run, every 100 steps; BERT's linear learning rate; no teacher).
# recipe: distilled from the dense run of --teacher_epochs and starting from it; peak learning rate 5e-5,
# re-warmed at each mask update, 0.6 / 7 of the run apart from the end of warm-up, the last before 70% of
# the run (8 updates, or 7 where the end rounds down: MRPC and STS-B in 6 epochs); the first update
# to --recipe_initial_sparsity. The others are the recipe less one ingredient, or with one more;
# block: the recipe pruning 1x4 blocks (tfmot's block_size); structured: the recipe removing whole
# heads and neurons (--pruning_structure heads_and_neurons), ranked by their weights' norms; taylor:
# the same ranked by the first-order estimate of their loss (--pruning_score taylor); fisher: the recipe
# ranking single weights by the diagonal Fisher score (--pruning_score fisher) instead of magnitude;
# fisher_global: every kernel's Fisher scores ranked together (--sparsity_ranking global); fisher_no_teacher,
# fisher_linear_lr and fisher_initial_0: the ablations of `fisher`; taylor_global: all layers' heads (and,
# apart, neurons) ranked together, so each layer keeps its own number.
RECIPES = ("default", "recipe", "no_teacher", "linear_lr", "initial_0", "global", "block", "structured", "taylor",
           "fisher", "fisher_global", "fisher_no_teacher", "fisher_linear_lr", "fisher_initial_0", "taylor_global")
# What each recipe changes in `recipe`: the ablations take one ingredient out (no_teacher: the teacher and the
# dense start, in train_py_row) or put one in; <base>_<ablation> is that ablation of `fisher` or `taylor`.
CHANGES = {"linear_lr": {"learning_rate_schedule": "linear"}, "initial_0": {"initial_sparsity": "0"},
           "global": {"sparsity_ranking": "global"}, "block": {"block_size": "1,4"},
           "structured": {"pruning_structure": "heads_and_neurons"},
           "taylor": {"pruning_structure": "heads_and_neurons", "pruning_score": "taylor"},
           "fisher": {"pruning_score": "fisher"}}


def base_and_ablation(recipe):
    """("fisher", "global") for fisher_global; (None, recipe) for a recipe that is no ablation of another."""
    for base in ("fisher", "taylor"):
        if recipe.startswith(f"{base}_"):
            return base, recipe.removeprefix(f"{base}_")
    return None, recipe


def distils(recipe):
    """Whether a recipe distils from the dense teacher and starts from it."""
    return recipe != "default" and base_and_ablation(recipe)[1] != "no_teacher"


def recipe_flags(recipe, epochs, initial_sparsity):
    """(train.py's flags for a pruning recipe of `epochs` epochs, whether it distils from the teacher)."""
    settings = {"learning_rate": "5e-5", "initial_sparsity": f"{initial_sparsity:g}",
                "pruning_end_epoch": f"{0.7 * epochs:g}", "pruning_frequency_epochs": f"{0.6 * epochs / 7:g}",
                "learning_rate_schedule": "rewarm"}
    base, ablation = base_and_ablation(recipe)
    if base:  # <base>_<ablation>: that ablation of `fisher` or `taylor`
        settings.update(CHANGES[base])
    settings.update(CHANGES.get(ablation, {}))
    return [f"--{k}={v}" for k, v in settings.items()], distils(recipe)


def results_row(task, seed, out, recipe, seconds):
    results = run_folder.read_results(out)
    metrics = {k[len("eval_"):]: v for k, v in results.items()
               if k.startswith("eval_") and k not in ("eval_loss", "eval_mm_loss", "eval_time_s")}
    pruned = results["sparsity"].get("pruned")
    return {"task": task, "seed": seed, "runner": "train.py (tf_keras)", "recipe": recipe,
            "sparsity": round(pruned["sparsity"], 4) if pruned else 0.0, "metrics": metrics,
            "global_step": results["global_step"], "wall_s": round(seconds),
            "parameters": results["footprint"]["parameters"],
            "saved_model_bytes": results["footprint"]["saved_model_bytes"]}


def train_py_row(task, seed, sparsity, common_flags, recipe="default"):
    name = f"train.py_{sparsity:g}" if recipe == "default" or not sparsity else f"{recipe}_{sparsity:g}"
    out = os.path.join(run_root(task, seed), name)
    command = [sys.executable, "train.py", f"--task={task}", f"--output_dir={out}", f"--target_sparsity={sparsity:g}",
               *common_flags]
    if recipe != "default" and sparsity:
        extra, distilled = recipe_flags(recipe, FLAGS.num_train_epochs, FLAGS.recipe_initial_sparsity)
        if distilled:
            teacher = teacher_dir(task, seed, common_flags)
            extra += [f"--teacher={teacher}", f"--init_from={teacher}"]
        command += extra
    return results_row(task, seed, out, recipe if sparsity else "dense", run(command, out, run_folder.is_finished))


def teacher_dir(task, seed, common_flags):
    """The dense run of --teacher_epochs that the recipes distil from, trained first if need be."""
    out = os.path.join(FLAGS.output_root, task, f"epochs{FLAGS.teacher_epochs:g}_seed{seed}_{FLAGS.mixed_precision}",
                       "train.py_0")
    epochs = [f for f in common_flags if not f.startswith("--num_train_epochs")]
    run([sys.executable, "train.py", f"--task={task}", f"--output_dir={out}", "--target_sparsity=0", *epochs,
         f"--num_train_epochs={FLAGS.teacher_epochs:g}"], out, run_folder.is_finished)
    return out


def teacher_row(task, seed, common_flags):
    out = teacher_dir(task, seed, common_flags)
    return results_row(task, seed, out, f"dense, {FLAGS.teacher_epochs:g} epochs (the teacher)", 0.0)


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
    flags.DEFINE_list("recipes", ["default"], f"Pruning recipes, each at every sparsity > 0: {', '.join(RECIPES)}.")
    flags.DEFINE_float("teacher_epochs", 3.0, "Epochs of the dense teacher of the recipes that distil.")
    flags.DEFINE_float("recipe_initial_sparsity", 0.5, "The recipes' sparsity at the first mask update.")


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
            if any(distils(r) for r in FLAGS.recipes):
                rows.append(teacher_row(task, seed, common_flags))
            for recipe in FLAGS.recipes:
                rows += [train_py_row(task, seed, float(s), common_flags, recipe) for s in FLAGS.sparsities
                         if float(s) or recipe == FLAGS.recipes[0]]
    print("| task | seed | runner | recipe | encoder sparsity | dev metrics | steps | wall (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(r["metrics"].items()))
        print(f"| {r['task']} | {r['seed']} | {r['runner']} | {r.get('recipe', 'dense')} | {r['sparsity']:.0%} | "
              f"{metrics} | {r['global_step']} "
              f"| {r['wall_s'] or 'read back'} |")
    common.print_json({"rows": rows, "num_train_epochs": FLAGS.num_train_epochs,
                       "mixed_precision": FLAGS.mixed_precision})


if __name__ == "__main__":
    define_flags()
    app.run(main)
