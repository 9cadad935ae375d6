"""How sparse a model is: zeros in every Dense kernel and Embedding matrix, with totals, as JSON and a table.

The same numbers come out before and after `strip_pruning`: weights are named after the wrapped
layer (never `prune_low_magnitude_...`), and the wrappers' own masks, thresholds and step counters
are left out of the parameter totals.
"""

import json
import os

import numpy as np
import tensorflow as tf
import tf_keras as keras
# tfmot exports no name for its wrapper class nor for this walk over nested models.
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import (PruneLowMagnitude,
                                                                                      collect_prunable_layers)

from pruning_schedules import structured


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
    """A fixed-width table of `sparsity_report`'s result: one row per matrix, then the totals (or
    structured.structure_report's: one row a layer)."""
    if "structure" in report:
        return structured.format_structure_table(report)
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
