r"""The peer of train.py: Hugging Face transformers' PyTorch BERT fine-tuned on one GLUE task, BERT's recipe.

  HF_HUB_OFFLINE=1 python benchmarks/hf_finetune_glue.py --init_checkpoint DIR --task rte --glue_dir ../shared/glue

Same weights (a Hugging Face BERT folder), same examples (the project's own GLUE reader), same
hyper-parameters as google-research/bert's run_classifier.py: AdamW (betas 0.9/0.999, epsilon 1e-6,
weight decay 0.01 except on biases and LayerNorm), linear warm-up over `warmup_proportion` of the steps
then linear decay to 0, gradient norm clipped at 1.0, dropout from the checkpoint's config. One plain
PyTorch loop, no Trainer. Batches are padded to their longest example. Evaluates each dev split once at
the end, with GLUE's metrics over the whole split, and prints one JSON line (also written to
`output_dir/eval_results.json`).

Known differences from google-research/bert's optimization.py that remain: torch's AdamW applies Adam's
bias correction (BERT's AdamWeightDecayOptimizer does not), and after warm-up the rate decays from the
peak over the remaining steps (`get_linear_schedule_with_warmup`) rather than along BERT's
`init_lr * (1 - step / total)` line.
"""

import datetime
import json
import math
import os
import platform
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # glue_tasks imports TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags, logging  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from benchmarks import hf_peer  # noqa: E402

from glue_tasks.readers import read_split  # noqa: E402
from glue_tasks.specs import get_task  # noqa: E402

flags.DEFINE_string("init_checkpoint", None, "A Hugging Face BERT folder (config.json, weights, vocab).",
                    required=True)
flags.DEFINE_string("task", "rte", "GLUE task, as tfds names it (rte, mrpc, stsb, sst2, cola, mnli, ...).")
flags.DEFINE_string("glue_dir", "../shared/glue", "A folder in the original GLUE layout.")
flags.DEFINE_string("output_dir", None, "If set, eval_results.json is written here.")
flags.DEFINE_float("learning_rate", 2e-5, "Peak learning rate of AdamW.")
flags.DEFINE_float("num_train_epochs", 3.0, "Epochs of training.")
flags.DEFINE_integer("max_steps", None, "If set, stop after this many steps (and schedule over them).")
flags.DEFINE_integer("train_batch_size", 32, "Training batch size.")
flags.DEFINE_integer("eval_batch_size", 64, "Evaluation batch size.")
flags.DEFINE_integer("max_seq_length", 128, "Pairs are truncated (longest first) to this many tokens.")
flags.DEFINE_float("warmup_proportion", 0.1, "Share of the steps with a linear warm-up of the rate.")
flags.DEFINE_float("weight_decay", 0.01, "Decoupled weight decay, except on biases and LayerNorm.")
flags.DEFINE_integer("seed", 0, "Seeds the classifier's initialisation, dropout and shuffling.")
flags.DEFINE_integer("num_threads", os.cpu_count(), "torch intra-op threads.")
flags.DEFINE_bool("bf16", False, "Run forward passes under torch.autocast(bfloat16).")
flags.DEFINE_integer("log_every", 50, "Log the training loss every this many steps.")
FLAGS = flags.FLAGS


def tokenize(tokenizer, spec, examples):
    """Token ids of every example, unpadded: {input_ids, token_type_ids, attention_mask} lists of lists."""
    texts = [examples[field].tolist() for field in spec.text_fields]
    return tokenizer(*texts, truncation=True, max_length=FLAGS.max_seq_length, padding=False)


def make_batch(encodings, labels, indices, pad_id):
    """Tensors of the examples at `indices`, padded to the longest of them."""
    length = max(len(encodings["input_ids"][i]) for i in indices)
    batch = {}
    for name, pad in (("input_ids", pad_id), ("token_type_ids", 0), ("attention_mask", 0)):
        batch[name] = torch.tensor([encodings[name][i] + [pad] * (length - len(encodings[name][i]))
                                    for i in indices], dtype=torch.long).to(hf_peer.device())
    return batch, torch.from_numpy(labels[indices]).to(hf_peer.device())


def evaluate(model, spec, encodings, labels, pad_id):
    """GLUE's metrics over the whole split, and the mean loss per example."""
    model.eval()
    outputs, loss_sum = [], 0.0
    with torch.no_grad():
        for start in range(0, len(labels), FLAGS.eval_batch_size):
            indices = np.arange(start, min(start + FLAGS.eval_batch_size, len(labels)))
            batch, batch_labels = make_batch(encodings, labels, indices, pad_id)
            with hf_peer.autocast("bfloat16" if FLAGS.bf16 else "float32"):
                logits = model(**batch).logits.float()
            loss_sum += hf_peer.loss_fn(logits, batch_labels, spec.is_regression).item() * len(indices)
            outputs.append(logits.squeeze(-1) if spec.is_regression else logits.argmax(-1))
    predictions = torch.cat(outputs).cpu().numpy()
    return spec.compute_metrics(labels, predictions), loss_sum / len(labels)


def main(argv):
    del argv
    torch.set_num_threads(FLAGS.num_threads)
    torch.manual_seed(FLAGS.seed)
    spec = get_task(FLAGS.task)
    dev_splits = [split for split in spec.splits if split.startswith("validation")]

    tokenizer = transformers.BertTokenizer.from_pretrained(FLAGS.init_checkpoint)
    model = hf_peer.load_model(FLAGS.init_checkpoint, 1 if spec.is_regression else len(spec.labels),
                               spec.is_regression)
    pad_id = tokenizer.pad_token_id

    train = read_split(spec, "train", FLAGS.glue_dir)
    train_encodings, train_labels = tokenize(tokenizer, spec, train), train["label"]
    dev = {split: read_split(spec, split, FLAGS.glue_dir) for split in dev_splits}
    dev_encodings = {split: tokenize(tokenizer, spec, examples) for split, examples in dev.items()}

    steps_per_epoch = math.ceil(len(train_labels) / FLAGS.train_batch_size)
    total_steps = math.ceil(steps_per_epoch * FLAGS.num_train_epochs)
    if FLAGS.max_steps:
        total_steps = min(total_steps, FLAGS.max_steps)
    warmup_steps = int(total_steps * FLAGS.warmup_proportion)
    optimizer, scheduler = hf_peer.make_optimizer(model, FLAGS.learning_rate, FLAGS.weight_decay, warmup_steps,
                                                  total_steps)
    precision = "bfloat16" if FLAGS.bf16 else "float32"
    scaler = hf_peer.grad_scaler(precision)
    logging.info("%s: %d train examples, %d steps (%d per epoch, %d warm-up), dev %s", spec.glue_name,
                 len(train_labels), total_steps, steps_per_epoch, warmup_steps,
                 {split: len(examples["label"]) for split, examples in dev.items()})

    shuffle = torch.Generator().manual_seed(FLAGS.seed)
    losses, epoch_losses, examples_seen, step = [], [], 0, 0
    model.train()
    start = time.perf_counter()
    while step < total_steps:
        order = torch.randperm(len(train_labels), generator=shuffle).numpy()
        epoch_losses = []
        for first in range(0, len(order), FLAGS.train_batch_size):
            if step >= total_steps:
                break
            indices = order[first:first + FLAGS.train_batch_size]
            batch, labels = make_batch(train_encodings, train_labels, indices, pad_id)
            loss = hf_peer.training_step(model, optimizer, scheduler, scaler, batch, labels,
                                         is_regression=spec.is_regression, precision=precision)
            step += 1
            examples_seen += len(indices)
            losses.append(loss.item())
            epoch_losses.append(losses[-1])
            if step % FLAGS.log_every == 0 or step == total_steps:
                logging.info("step %d/%d loss %.4f (mean of last %d: %.4f) lr %.3g elapsed %.1f s", step,
                             total_steps, losses[-1], min(len(losses), FLAGS.log_every),
                             np.mean(losses[-FLAGS.log_every:]), scheduler.get_last_lr()[0],
                             time.perf_counter() - start)
    train_time = time.perf_counter() - start

    start = time.perf_counter()
    metrics, eval_loss = {}, {}
    for split in dev_splits:
        metrics[split], eval_loss[split] = evaluate(model, spec, dev_encodings[split], dev[split]["label"], pad_id)
    eval_time = time.perf_counter() - start

    results = {
        "task": spec.tfds_name,
        "metrics": metrics,
        "eval_loss": eval_loss,
        "train_loss": float(np.mean(epoch_losses)),  # mean over the steps of the last (possibly partial) epoch
        "train_loss_last_50_steps": float(np.mean(losses[-50:])),
        "global_step": step,
        "train_examples": len(train_labels),
        "train_time_s": round(train_time, 2),
        "eval_time_s": round(eval_time, 2),
        "examples_per_s": round(examples_seen / train_time, 2),
        "hparams": {name: FLAGS[name].value for name in (
            "init_checkpoint", "learning_rate", "num_train_epochs", "max_steps", "train_batch_size",
            "eval_batch_size", "max_seq_length", "warmup_proportion", "weight_decay", "seed", "bf16")}
        | {"total_steps": total_steps, "warmup_steps": warmup_steps, "adam_epsilon": 1e-6,
           "max_grad_norm": 1.0},
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "machine": {"arch": platform.machine(), "cpu_count": os.cpu_count()},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    line = json.dumps(results)
    print(line, flush=True)
    if FLAGS.output_dir:
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        with open(os.path.join(FLAGS.output_dir, "eval_results.json"), "w") as f:
            f.write(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    app.run(main)
