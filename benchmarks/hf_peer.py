"""train.py's peer: transformers' PyTorch BertForSequenceClassification with BERT's recipe, one step at a time.

Shared by hf_finetune_glue.py (accuracy) and train_throughput.py (speed), so both time and
score the same step: AdamW (betas 0.9/0.999, epsilon 1e-6, weight decay except on biases and
LayerNorm; torch's fused kernel, transformers' Trainer default), linear warm-up then linear
decay, gradient norm clipped at 1.0, the forward pass under torch.autocast(bfloat16 or float16) when
asked, the loss in float32. On a CUDA GPU when torch sees one (`device()`), else on the CPU; float16
scales the loss as Keras' mixed_float16 does (torch's GradScaler).
"""

import torch
import torch.nn.functional as F
import transformers


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
