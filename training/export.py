"""The one export of a trained task model, and what it costs on disk.

train.py exports at the end of a run and evaluate.py exports a run's latest checkpoint, both
through `export`: pruning wrappers stripped, the weights copied into a float32 classifier (whatever
the training policy), saved as a SavedModel that serves raw text (bert_keras.serving).
"""

import gzip
import io
import os
import tarfile

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
# tfmot exports no name for this walk over a model's pruning wrappers.
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import collect_prunable_layers

import bert_keras
from bert_keras import slicing
from bert_keras.serving import export_text_classifier
from pruning_schedules import structured
from training import model as task_model
from training import run_folder


def export(path, model, pretrained, task, max_seq_length, encoder_dir=None, xla=False):
    """Saves `model` (the task model, wrapped for pruning or not) at `path`; returns (the float32 copy
    saved, its encoder's BertConfig).

    A structurally pruned model is saved sliced to the heads and neurons its masks keep, and its
    encoder alone as a converted folder at `encoder_dir` (when given), which load_encoder reads.
    xla: the SavedModel's classifier compiled by XLA (bert_keras.serving).
    """
    config = pretrained.config
    if structured.masked_layers(model):
        heads, neurons = structured.kept_groups(model)
        config, serving, encoder = slicing.slice_classifier(model, config, heads, neurons)
        if encoder_dir:
            bert_keras.save_converted(bert_keras.PretrainedEncoder(
                encoder, config, pretrained.vocab_file, pretrained.lower_case, pretrained.source), encoder_dir)
    else:
        stripped = tfmot.sparsity.keras.strip_pruning(model) if collect_prunable_layers(model) else model
        serving = bert_keras.float32_copy(stripped.get_weights(), config, task.num_outputs)
    preprocessor = bert_keras.BertPreprocessor(pretrained.vocab_file, pretrained.lower_case, max_seq_length)
    export_text_classifier(path, serving, preprocessor, task=task.glue_name, text_fields=task.text_fields,
                           label_names=task.labels, xla=xla)
    return serving, config


class ExportError(ValueError):
    """A SavedModel that cannot serve the purpose asked of it; the message says why."""


def load_export(path, task, flag):
    """The SavedModel of a finished train.py run folder, or a SavedModel folder, checked to serve `task`
    with its labels; `flag` names the source in errors (--teacher, --init_from)."""
    saved_model_dir = run_folder.saved_model_dir(path) if run_folder.is_run(path) else path
    if not os.path.isfile(os.path.join(saved_model_dir, "saved_model.pb")):
        raise ExportError(f"{flag} {path}: no SavedModel there; expected a finished train.py run folder or "
                          "its saved_model/")
    module = tf.saved_model.load(saved_model_dir)
    labels = tuple(label.decode() for label in module.label_names.numpy()) or None
    if module.task.numpy().decode() != task.glue_name or labels != task.labels:
        raise ExportError(f"{flag} {path}: a model of {module.task.numpy().decode()} with labels {labels}, not "
                          f"of {task.glue_name} with {task.labels}")
    return module


def init_from_export(model, path, task):
    """Starts `model` (a task model, wrapped for pruning or not) from an export's encoder and head.

    Weights are matched by name (wrappers keep the wrapped layer's names); every weight of the
    model but the pruning wrappers' own must be there, with its shape.
    """
    exported = {v.name: v for v in load_export(path, task, "--init_from").classifier_weights}
    wrappers_own = ("mask", "threshold", "pruning_step", "group_mask")
    own = [w for w in model.weights if w.name.rsplit("/", 1)[-1].split(":")[0] not in wrappers_own]
    missing = [w.name for w in own if w.name not in exported or tuple(exported[w.name].shape) != tuple(w.shape)]
    if missing:
        raise ExportError(f"--init_from {path}: its model does not match this one; missing or of another "
                          f"shape: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    for w in own:
        w.assign(exported[w.name])


def export_kernels(path, task, layer_names, flag):
    """{layer name: its kernel (or embedding matrix)} from an export of `task`, as NumPy arrays."""
    matrices = {v.name.split("/")[0]: v.numpy() for v in load_export(path, task, flag).classifier_weights
                if len(v.shape) == 2 and v.name.split("/")[0] in layer_names}
    missing = sorted(set(layer_names) - set(matrices))
    if missing:
        raise ExportError(f"{flag} {path}: its model has no {', '.join(missing[:5])}")
    return matrices


def restore_latest(run_dir, config, task):
    """(the run's task model at its latest checkpoint, masks applied; its step; the pretrained encoder)."""
    step, checkpoint = run_folder.latest_checkpoint(run_dir)
    if checkpoint is None:
        raise run_folder.RunFolderError(f"{run_dir}: a train.py folder with no checkpoint yet "
                                        f"({run_folder.backup_dir(run_dir)}/chief is empty)")
    pretrained = bert_keras.load_encoder(config.init_checkpoint)
    # Restoring needs the wrappers' variables (masks, thresholds, step), not the schedule's timing.
    encoder, _ = task_model.prune(pretrained.encoder, config, tfmot.sparsity.keras.ConstantSparsity(0.5, 0),
                                  pretrained.config)
    model = bert_keras.build_classifier(encoder, task.num_outputs, 0.0)
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial().assert_existing_objects_matched()
    for wrapper in collect_prunable_layers(model):
        wrapper.pruning_obj.weight_mask_op()  # a backup between mask updates holds unmasked weights
    return model, step, pretrained


# What TensorFlow writes into a SavedModel folder; anything else there (evaluate.py's results) is not the model.
SAVED_MODEL_ENTRIES = ("saved_model.pb", "fingerprint.pb", "variables", "assets", "assets.extra")


class _ByteCounter(io.RawIOBase):
    def __init__(self):
        self.count = 0

    def writable(self):
        return True

    def write(self, data):
        self.count += len(data)
        return len(data)


def _is_matrix(variable):
    """A Dense kernel or an Embedding matrix (what pruning may target)."""
    return len(variable.shape) == 2 and variable.name.rsplit("/", 1)[-1].split(":")[0] in ("kernel", "embeddings")


def footprint(saved_model_dir, variables):
    """What a (pruned) SavedModel costs: parameters, zeros per matrix, bytes on disk and gzip-compressed.

    Unstructured zeros do not shrink a dense file: the honest size of a sparse model is what a
    general-purpose compressor makes of it, here TensorFlow's files as `tar czf` packs them (gzip level 6).

    Args:
      saved_model_dir: str. An exported SavedModel.
      variables: its variables (the exported Keras model's weights, or the loaded
        SavedModel's `classifier_weights`); the floating-point ones are counted.

    Returns:
      A JSON-serialisable dict: "parameters", "zeros", "nonzero", "sparsity"; "matrices", one entry
      per 2-D kernel or embedding matrix {"name", "shape", "size", "zeros", "sparsity"};
      "saved_model_bytes" and "saved_model_gzip_bytes".
    """
    weights = [v for v in variables if v.dtype.is_floating]
    counts = [{"size": int(np.size(v)), "zeros": int(np.count_nonzero(v.numpy() == 0))} for v in weights]
    matrices = [{"name": v.name.rsplit(":", 1)[0], "shape": [int(d) for d in v.shape], **c,
                 "sparsity": c["zeros"] / c["size"]} for v, c in zip(weights, counts) if _is_matrix(v)]
    size, zeros = sum(c["size"] for c in counts), sum(c["zeros"] for c in counts)

    files = []
    for entry in SAVED_MODEL_ENTRIES:
        path = os.path.join(saved_model_dir, entry)
        if os.path.isdir(path):
            files += sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
        elif os.path.isfile(path):
            files.append(path)
    counter = _ByteCounter()
    with gzip.GzipFile(fileobj=counter, mode="wb", compresslevel=6, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w|") as tar:
        for path in files:
            tar.add(path, arcname=os.path.relpath(path, saved_model_dir))
    return {"parameters": size, "zeros": zeros, "nonzero": size - zeros, "sparsity": zeros / size if size else 0.0,
            "matrices": matrices, "saved_model_bytes": sum(os.path.getsize(path) for path in files),
            "saved_model_gzip_bytes": counter.count}
