r"""train.py's peer: transformers' PyTorch BertForSequenceClassification with BERT's recipe.

  HF_HUB_OFFLINE=1 python benchmarks/peer.py --init_checkpoint DIR --task rte --glue_dir ../shared/glue \
      [--output_dir DIR] [--mixed_precision float32|bfloat16|float16|auto] [--num_train_epochs 3] [--seed 0]

As a program: fine-tunes on one GLUE task and scores every dev split with GLUE's metrics (accuracy.py's
peer side); prints one JSON line, also written to OUTPUT_DIR/eval_results.json. As a module: the
step that training_speed.py times on train.py's own batches.

Same weights (a Hugging Face BERT folder), same examples (the project's GLUE reader), train.py's
hyper-parameter flags and defaults: AdamW (betas 0.9/0.999, epsilon 1e-6, weight decay except on
biases and LayerNorm; torch's fused kernel, the default of transformers' Trainer), linear warm-up
then linear decay, gradient norm clipped at 1.0, the forward pass under torch.autocast when a
16-bit type is asked (float16 scales the loss, as Keras' mixed_float16), the loss in float32. On a
CUDA GPU when torch sees one. One plain PyTorch loop, no Trainer; batches are random and padded to
their longest example, as transformers pads them.

Differences from google-research/bert's optimization.py that remain: torch's AdamW applies Adam's
bias correction (BERT's AdamWeightDecayOptimizer does not), and after warm-up the rate decays from
the peak over the remaining steps (`get_linear_schedule_with_warmup`), not along BERT's
`init_lr * (1 - step / total)` line.
"""

import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root
from benchmarks import common  # noqa: E402  (first: TensorFlow's environment)

from absl import app, flags, logging  # noqa: E402
import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402

import glue_tasks  # noqa: E402
from training import config as run_config  # noqa: E402
from training.precision import choose_policy  # noqa: E402

FLAGS = flags.FLAGS


def load_model(init_checkpoint, num_labels, is_regression):
    """BertForSequenceClassification on a Hugging Face BERT folder, with a fresh head, on device()."""
    return transformers.BertForSequenceClassification.from_pretrained(
        init_checkpoint, num_labels=num_labels,
        problem_type="regression" if is_regression else "single_label_classification").to(device())


def loss_fn(logits, labels, is_regression):
    """Mean loss in float32: cross-entropy, or squared error for STS-B (as BertForSequenceClassification)."""
    if is_regression:
        return F.mse_loss(logits.float().squeeze(-1), labels)
    return F.cross_entropy(logits.float(), labels)


def make_optimizer(model, learning_rate, weight_decay, warmup_steps, total_steps):
    """(AdamW, its linear warm-up/decay scheduler); no decay on biases and LayerNorm, as BERT's optimizer."""
    no_decay = {id(p) for module in model.modules() if isinstance(module, torch.nn.LayerNorm)
                for p in module.parameters(recurse=False)}
    no_decay |= {id(p) for name, p in model.named_parameters() if name.endswith("bias")}
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if id(p) not in no_decay], "weight_decay": weight_decay},
              {"params": [p for p in params if id(p) in no_decay], "weight_decay": 0.0}]
    # fused: one kernel a parameter group, transformers' Trainer default ("adamw_torch_fused") with torch >= 2.8.
    optimizer = torch.optim.AdamW(groups, lr=learning_rate, betas=(0.9, 0.999), eps=1e-6, fused=True)
    return optimizer, transformers.get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)


PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def precision_of(mixed_precision):
    """The peer's compute dtype ("float32", "bfloat16", "float16") for a train.py --mixed_precision value."""
    return keras.mixed_precision.Policy(choose_policy(mixed_precision)).compute_dtype


def device():
    """Where the peer runs: the CUDA GPU when torch sees one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize():
    """Waits for the GPU's queued work (a no-op on the CPU), so that a clock read after it is honest."""
    if device().type == "cuda":
        torch.cuda.synchronize()


def autocast(precision):
    """torch.autocast to `precision` ("float32": off, "bfloat16", "float16") on device()."""
    dtype = PRECISIONS[precision]
    return torch.autocast(device().type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def grad_scaler(precision):
    """Dynamic loss scaling for float16, off otherwise (a disabled GradScaler passes everything through)."""
    return torch.amp.GradScaler(device().type, enabled=precision == "float16")


# train.py's feature names -> BertForSequenceClassification's argument names.
FEATURE_NAMES = {"input_word_ids": "input_ids", "input_type_ids": "token_type_ids", "input_mask": "attention_mask"}


def to_torch(features, labels, is_regression):
    """One of train.py's batches (numpy features and labels) as the peer's (batch, labels) on device()."""
    batch = {FEATURE_NAMES[name]: torch.from_numpy(value).long().to(device()) for name, value in features.items()}
    return batch, torch.from_numpy(labels).to(torch.float32 if is_regression else torch.long).to(device())


def training_step(model, optimizer, scheduler, scaler, batch, labels, *, is_regression, precision):
    """One step on `batch` ({input_ids, token_type_ids, attention_mask} tensors on device()); returns the loss."""
    with autocast(precision):
        logits = model(**batch).logits
    loss = loss_fn(logits, labels, is_regression)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)  # clip the true gradients
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer)  # skipped when float16 gradients overflowed, as Keras' LossScaleOptimizer
    scaler.update()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


# --- The fine-tuning program (accuracy.py's peer side) ---

def tokenize(tokenizer, task, examples, max_seq_length):
    """Token ids of every example, unpadded: {input_ids, token_type_ids, attention_mask} lists of lists."""
    texts = [examples[field].tolist() for field in task.text_fields]
    return tokenizer(*texts, truncation=True, max_length=max_seq_length, padding=False)


def make_batch(encodings, labels, indices, pad_id):
    """Tensors of the examples at `indices`, padded to the longest of them."""
    length = max(len(encodings["input_ids"][i]) for i in indices)
    batch = {}
    for name, pad in (("input_ids", pad_id), ("token_type_ids", 0), ("attention_mask", 0)):
        batch[name] = torch.tensor([encodings[name][i] + [pad] * (length - len(encodings[name][i]))
                                    for i in indices], dtype=torch.long).to(device())
    return batch, torch.from_numpy(labels[indices]).to(device())


def evaluate(model, task, encodings, labels, pad_id, batch_size, precision):
    """GLUE's metrics over the whole split, and the mean loss per example."""
    model.eval()
    outputs, loss_sum = [], 0.0
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            indices = np.arange(start, min(start + batch_size, len(labels)))
            batch, batch_labels = make_batch(encodings, labels, indices, pad_id)
            with autocast(precision):
                logits = model(**batch).logits.float()
            loss_sum += loss_fn(logits, batch_labels, task.is_regression).item() * len(indices)
            outputs.append(logits.squeeze(-1) if task.is_regression else logits.argmax(-1))
    predictions = torch.cat(outputs).cpu().numpy()
    return task.compute_metrics(labels, predictions), loss_sum / len(labels)


def fine_tune():
    """Trains on FLAGS.task's training split, then scores its dev splits; returns the results."""
    torch.set_num_threads(FLAGS.num_threads)
    torch.manual_seed(FLAGS.seed)
    task = glue_tasks.get_task(FLAGS.task)
    precision = precision_of(FLAGS.mixed_precision)
    tokenizer = transformers.BertTokenizer.from_pretrained(FLAGS.init_checkpoint)
    model = load_model(FLAGS.init_checkpoint, task.num_outputs, task.is_regression)
    pad_id = tokenizer.pad_token_id

    train = glue_tasks.read_split(task, "train", FLAGS.glue_dir)
    train_encodings, train_labels = tokenize(tokenizer, task, train, FLAGS.max_seq_length), train["label"]
    dev = {split: glue_tasks.read_split(task, split, FLAGS.glue_dir) for split in task.dev_splits}
    dev_encodings = {split: tokenize(tokenizer, task, examples, FLAGS.max_seq_length)
                     for split, examples in dev.items()}

    steps_per_epoch = math.ceil(len(train_labels) / FLAGS.train_batch_size)
    total_steps = math.ceil(steps_per_epoch * FLAGS.num_train_epochs)
    if FLAGS.max_steps:
        total_steps = min(total_steps, FLAGS.max_steps)
    warmup_steps = int(total_steps * FLAGS.warmup_proportion)
    optimizer, scheduler = make_optimizer(model, FLAGS.learning_rate, FLAGS.weight_decay, warmup_steps, total_steps)
    scaler = grad_scaler(precision)
    logging.info("%s: %d train examples, %d steps (%d per epoch, %d warm-up), %s", task.glue_name,
                 len(train_labels), total_steps, steps_per_epoch, warmup_steps, precision)

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
            loss = training_step(model, optimizer, scheduler, scaler, batch, labels,
                                 is_regression=task.is_regression, precision=precision)
            step += 1
            examples_seen += len(indices)
            losses.append(loss.item())
            epoch_losses.append(losses[-1])
            if step % FLAGS.log_steps == 0 or step == total_steps:
                logging.info("step %d/%d loss %.4f lr %.3g elapsed %.1f s", step, total_steps, losses[-1],
                             scheduler.get_last_lr()[0], time.perf_counter() - start)
    train_time = time.perf_counter() - start

    start = time.perf_counter()
    metrics, eval_loss = {}, {}
    for split in task.dev_splits:
        metrics[split], eval_loss[split] = evaluate(model, task, dev_encodings[split], dev[split]["label"], pad_id,
                                                    FLAGS.eval_batch_size, precision)
    return {
        "task": task.tfds_name, "metrics": metrics, "eval_loss": eval_loss,
        "train_loss": float(np.mean(epoch_losses)),  # over the steps of the last (possibly partial) epoch
        "global_step": step, "train_examples": len(train_labels),
        "train_time_s": round(train_time, 2), "eval_time_s": round(time.perf_counter() - start, 2),
        "examples_per_s": round(examples_seen / train_time, 2), "precision": precision,
        "threads": torch.get_num_threads(),
        "hparams": {name: FLAGS[name].value for name in HPARAMS} | {
            "total_steps": total_steps, "warmup_steps": warmup_steps, "adam_epsilon": 1e-6, "max_grad_norm": 1.0}}


HPARAMS = ("init_checkpoint", "learning_rate", "num_train_epochs", "max_steps", "train_batch_size",
           "eval_batch_size", "max_seq_length", "warmup_proportion", "weight_decay", "seed", "mixed_precision")


def define_flags():
    """The program's flags (defined only when run as one: training_speed.py imports this module)."""
    run_config.define_flags(("task", "glue_dir", "output_dir") + HPARAMS, init_checkpoint=None,
                               glue_dir="../shared/glue", output_dir=None, mixed_precision="float32")
    flags.adopt_module_key_flags(common)  # listed by --help
    flags.mark_flag_as_required("init_checkpoint")  # a Hugging Face BERT folder
    flags.DEFINE_integer("num_threads", os.cpu_count(), "torch intra-op threads.")
    flags.DEFINE_integer("log_steps", 50, "Log the training loss every N steps.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    results = common.print_json(fine_tune())
    if FLAGS.output_dir:
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        with open(os.path.join(FLAGS.output_dir, "eval_results.json"), "w") as f:
            f.write(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    define_flags()
    app.run(main)
