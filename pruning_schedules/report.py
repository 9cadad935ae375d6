"""How sparse a model is: zeros in every Dense kernel and Embedding matrix, with totals, as JSON and a table;
and what that buys on disk (`footprint`).

The same numbers come out before and after `strip_pruning`: weights are named after the wrapped
layer (never `prune_low_magnitude_...`), and the wrappers' own masks, thresholds and step counters
are left out of the parameter totals.
"""

import gzip
import io
import json
import os
import tarfile

import numpy as np
import tensorflow as tf
import tf_keras as keras
# tfmot exports no name for its wrapper class nor for this walk over nested models.
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import (PruneLowMagnitude,
                                                                                      collect_prunable_layers)


def _leaf_layers(model):
    """The layers of `model` and of the models nested in it, pruning wrappers unwrapped, in graph order."""
    for layer in model.layers:
        if isinstance(layer, PruneLowMagnitude):
            layer = layer.layer
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def _matrices(model):
    """(layer name, weight name, variable) for each 2-D Dense kernel and Embedding matrix, once each."""
    seen = set()
    for layer in _leaf_layers(model):
        if id(layer) in seen or not layer.built:
            continue
        seen.add(id(layer))
        if isinstance(layer, keras.layers.Dense) and len(layer.kernel.shape) == 2:
            yield layer.name, "kernel", layer.kernel
        elif isinstance(layer, keras.layers.Embedding):
            yield layer.name, "embeddings", layer.embeddings


def _total(entries):
    size = sum(entry["size"] for entry in entries)
    zeros = sum(entry["zeros"] for entry in entries)
    return {"weights": len(entries), "size": size, "zeros": zeros, "sparsity": zeros / size if size else 0.0}


def _count(values):
    return {"size": int(values.size), "zeros": int(np.count_nonzero(values == 0))}


def sparsity_report(model, pruned_layer_names=None):
    """Zeros per weight matrix and in total, for a model with or without pruning wrappers.

    Args:
      model: keras.Model. An encoder, or a task model nesting one; pruned or stripped.
      pruned_layer_names: list of str, or None. The layers that were pruned (`select_layers`);
        each must have a reported weight.

    Returns:
      A JSON-serialisable dict: "model" (its name); "weights", one entry per matrix with "name"
      (layer/kernel or layer/embeddings), "layer", "shape", "size", "zeros", "sparsity" and "pruned";
      and "totals" with "pruned" (None without `pruned_layer_names`), "reported" (every listed matrix)
      and "parameters" (every model weight), each {"weights", "size", "zeros", "sparsity"}.
    """
    pruned = set(pruned_layer_names or ())
    weights = []
    for layer_name, weight_name, variable in _matrices(model):
        counts = _count(variable.numpy())
        weights.append({"name": f"{layer_name}/{weight_name}", "layer": layer_name,
                        "shape": [int(d) for d in variable.shape], **counts,
                        "sparsity": counts["zeros"] / counts["size"], "pruned": layer_name in pruned})
    missing = sorted(pruned - {entry["layer"] for entry in weights})
    if missing:
        raise ValueError(f"pruned layers {missing} have no Dense kernel or Embedding matrix in {model.name!r}")

    skip = set()  # the wrappers' masks, thresholds and step counters (strip_pruning drops them), then each counted one
    for wrapper in collect_prunable_layers(model):
        skip.update(id(v) for _, mask, threshold in wrapper.pruning_vars for v in (mask, threshold))
        skip.add(id(getattr(wrapper, "pruning_step", None)))
    parameters = []
    for variable in model.weights:
        if id(variable) not in skip:
            skip.add(id(variable))
            parameters.append(_count(variable.numpy()))

    return {"model": model.name, "weights": weights,
            "totals": {"pruned": _total([e for e in weights if e["pruned"]]) if pruned_layer_names else None,
                       "reported": _total(weights), "parameters": _total(parameters)}}


def format_table(report):
    """A fixed-width table of `sparsity_report`'s result: one row per matrix, then the totals."""
    rows = [(e["name"], "x".join(map(str, e["shape"])), e["size"], e["zeros"], e["sparsity"],
             "yes" if e["pruned"] else "") for e in report["weights"]]
    labels = {"pruned": "pruned matrices", "reported": "all matrices above", "parameters": "all parameters"}
    totals = [(f"{labels[key]} ({total['weights']})", "", total["size"], total["zeros"], total["sparsity"], "")
              for key, total in report["totals"].items() if total is not None]
    header = ("weight", "shape", "size", "zeros", "sparsity", "pruned")
    cells = [(name, shape, f"{size:,}", f"{zeros:,}", f"{sparsity:.2%}", mark)
             for name, shape, size, zeros, sparsity, mark in rows + totals]
    widths = [max(len(str(row[i])) for row in [header] + cells) for i in range(len(header))]

    def line(row):  # text columns left-aligned, numbers right-aligned
        return "  ".join(str(cell).ljust(w) if i in (0, 1, 5) else str(cell).rjust(w)
                         for i, (cell, w) in enumerate(zip(row, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(row) for row in cells]
    return "\n".join([f"sparsity of {report['model']}", line(header), rule] + body[:len(rows)] + [rule]
                     + body[len(rows):])


def write_report(report, directory):
    """Writes `sparsity.json` and `sparsity.txt` (the table) into `directory`, made if missing.

    tf.io.gfile, so that `directory` may also be a bucket path like the rest of a run's output.

    Returns:
      (json path, text path).
    """
    tf.io.gfile.makedirs(directory)
    json_path = os.path.join(directory, "sparsity.json")
    text_path = os.path.join(directory, "sparsity.txt")
    with tf.io.gfile.GFile(json_path, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    with tf.io.gfile.GFile(text_path, "w") as f:
        f.write(format_table(report) + "\n")
    return json_path, text_path


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
    counts = [_count(v.numpy()) for v in weights]
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
