"""What gets pruned: the encoder's layers chosen by name, wrapped by tfmot through `clone_model`.

By default every transformer kernel (query, key, value, attention output, intermediate, output of
each layer), the matrices BERT pruning papers prune; the pooler and the word embeddings only on
request. The task head lives outside the encoder and is never pruned.
"""

import functools
import numbers
import re


import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude
from tf_keras.src.mixed_precision.autocast_variable import enable_auto_cast_variables

from bert_keras.encoder import LAYER_KERNELS
from pruning_schedules.scores import rank_by

POOLER = "pooler"
WORD_EMBEDDINGS = "word_embeddings"
# bert_keras.kernel_layer_names without the pooler: `layer_{i}_{kind}`.
_TRANSFORMER_KERNEL = re.compile(r"layer_\d+_(?:" + "|".join(LAYER_KERNELS) + ")")


def _prunable_names(encoder):
    """Names of the encoder's Dense layers and its word embeddings, in graph order."""
    return [layer.name for layer in encoder.layers
            if isinstance(layer, keras.layers.Dense) or layer.name == WORD_EMBEDDINGS]


def select_layers(encoder, *, pooler=False, word_embeddings=False, patterns=None):
    """Names of the encoder's layers to prune, in graph order.

    Patterns replace the default set and the two flags add to whichever set that is, so each
    argument means one thing whatever the others say.

    Args:
      encoder: keras.Model. A flat functional encoder from `bert_keras.build_encoder` / `load_encoder`.
      pooler: bool. Also prune the pooler's kernel (the classifier reads the pooled output through it).
      word_embeddings: bool. Also prune the word-embedding matrix.
      patterns: list of str, or None. Regular expressions; when given (non-empty), the selection is
        every prunable layer (a Dense layer or the word embeddings) whose whole name matches one of
        them, instead of the default transformer kernels.

    Raises:
      ValueError: a pattern that matches no prunable layer or does not compile (the message lists
        the prunable layers), or an encoder with no transformer kernels (a task model, say).
    """
    prunable = _prunable_names(encoder)
    if isinstance(patterns, str):
        raise ValueError(f"patterns={patterns!r}: expected a list of regular expressions, not one string")
    if patterns:
        chosen = set()
        for pattern in patterns:
            try:
                regex = re.compile(pattern)
            except re.error as e:
                raise ValueError(f"layer pattern {pattern!r} is not a regular expression: {e}") from None
            matches = {name for name in prunable if regex.fullmatch(name)}
            if not matches:
                raise ValueError(f"layer pattern {pattern!r} matches no prunable layer of {encoder.name!r} "
                                 f"(full match); the prunable layers are: {', '.join(prunable)}")
            chosen |= matches
    else:
        chosen = {name for name in prunable if _TRANSFORMER_KERNEL.fullmatch(name)}
        if not chosen:
            raise ValueError(f"{encoder.name!r} has no BERT transformer kernels (layer_<i>_<kind> Dense layers): "
                             "pass the encoder itself, not a model that nests it")
    for wanted, name in ((pooler, POOLER), (word_embeddings, WORD_EMBEDDINGS)):
        if wanted and name not in prunable:
            raise ValueError(f"{encoder.name!r} has no {name!r} layer")
        if wanted:
            chosen.add(name)
    return [name for name in prunable if name in chosen]


def _positive_pair(value, name):
    """`value` as a tuple of two Python ints >= 1 (tfmot rejects NumPy ints), or a ValueError."""
    try:
        pair = tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
                                 for v in pair):
        raise ValueError(f"{name}={value!r}: expected two positive integers, like (1, 4)")
    return int(pair[0]), int(pair[1])


def _check_structure_fits(layer, block_size, sparsity_m_by_n):
    """Raise unless tfmot can give this layer's 2-D weight exactly the requested structure.

    tfmot checks only that the weight is 2-D. A block spanning a whole dimension crashes at the first
    training step (the pooled weights get squeezed to 1-D: "Input tensor must be rank 2"); blocks or
    m-by-n groups that do not tile the weight are padded, and the sparsity misses its target. So
    each block side must divide its dimension at least twice, and n must divide the input
    dimension (the kernel's first axis, along which tfmot groups n consecutive weights).
    """
    weight = layer.kernel if isinstance(layer, keras.layers.Dense) else layer.embeddings
    shape = tuple(int(d) for d in weight.shape)
    if block_size is not None and block_size != (1, 1):
        if len(shape) != 2 or any(d % b or d // b < 2 for d, b in zip(shape, block_size)):
            raise ValueError(f"block_size={block_size} does not tile layer {layer.name!r}: its weight has shape "
                             f"{shape}, and each block side must divide its dimension at least twice")
    if sparsity_m_by_n is not None:
        n = sparsity_m_by_n[1]
        if len(shape) != 2 or shape[0] % n:
            raise ValueError(f"sparsity_m_by_n={sparsity_m_by_n} does not fit layer {layer.name!r}: its weight has "
                             f"shape {shape}, and n={n} must divide the first (input) dimension")


def prune_encoder(encoder, layer_names, schedule, *, block_size=None, sparsity_m_by_n=None, scores=None):
    """A copy of `encoder` whose named layers tfmot prunes during training, tfmot's documented way.

    `clone_model` with a `clone_function` that wraps exactly `layer_names` in `prune_low_magnitude`
    and returns every other layer as it is. Returning the same layer instances keeps the pretrained
    weights without a copy, so the clone shares its variables with `encoder`: pruning zeros the
    original encoder's kernels too. Note that with `sparsity_m_by_n` tfmot ignores the schedule's
    timing and target: it sets the m-by-n masks once, at the first training step (pruning_impl.py).

    Args:
      encoder: keras.Model. A flat functional encoder from bert_keras.
      layer_names: list of str. Dense or Embedding layers of `encoder` (`select_layers` gives them).
      schedule: tfmot PruningSchedule (`make_schedule` gives one), or a dict of one a layer name
        (`global_sparsities` gives each layer its own target).
      block_size: (height, width) or None. Prune whole blocks, as (1, 4); each side must divide the
        weight's dimension at least twice.
      sparsity_m_by_n: (m, n) or None. m zeros in every n consecutive input weights, as (2, 4); m < n,
        and n must divide the input dimension. Not together with `block_size`.
      scores: {layer name: variable of its weight's shape} or None. What each layer's mask update ranks
        instead of its weights' magnitudes (scores.rank_by; scores.FisherPruningStep sets them).

    Returns:
      keras.Model with the encoder's inputs and outputs; the chosen layers are `PruneLowMagnitude`
      wrappers named `prune_low_magnitude_<name>`.
    """
    names = set(layer_names)
    schedules = schedule if isinstance(schedule, dict) else dict.fromkeys(names, schedule)
    if set(schedules) != names:
        raise ValueError(f"schedule: one a pruned layer expected; missing {sorted(names - set(schedules))}, "
                         f"extra {sorted(set(schedules) - names)}")
    for value in schedules.values():
        if not isinstance(value, tfmot.sparsity.keras.PruningSchedule):
            raise ValueError(f"schedule={value!r}: expected a tfmot PruningSchedule")
    if block_size is not None and sparsity_m_by_n is not None:
        raise ValueError("give block_size or sparsity_m_by_n, not both: tfmot would silently ignore block_size")
    if block_size is not None:
        block_size = _positive_pair(block_size, "block_size")
    if sparsity_m_by_n is not None:
        sparsity_m_by_n = _positive_pair(sparsity_m_by_n, "sparsity_m_by_n")
        if sparsity_m_by_n[0] >= sparsity_m_by_n[1]:
            raise ValueError(f"sparsity_m_by_n={sparsity_m_by_n}: m zeros in every n weights needs m < n")

    if not names:
        raise ValueError("no layers to prune")
    layers = {layer.name: layer for layer in encoder.layers}
    for name in sorted(names):
        if not isinstance(layers.get(name), (keras.layers.Dense, keras.layers.Embedding)):
            raise ValueError(f"{name!r} is not a Dense or Embedding layer of {encoder.name!r}; its prunable layers "
                             f"are: {', '.join(_prunable_names(encoder))}")
        _check_structure_fits(layers[name], block_size, sparsity_m_by_n)

    params = {"sparsity_m_by_n": sparsity_m_by_n}
    if block_size is not None:
        params["block_size"] = block_size

    def clone_function(layer):
        if layer.name not in names:
            return layer
        # Under mixed precision an Embedding keeps its matrix out of autocasting, but the wrapper's mask
        # autocasts, and tfmot's weight * mask fails (float32 * float16); a wrapper in the matrix's own
        # dtype fixes that, and the Embedding still casts its output to the compute dtype.
        dtype = {"dtype": layer.dtype} if isinstance(layer, keras.layers.Embedding) else {}
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedules[layer.name], **params,
                                                        **dtype)

    if scores is not None and (set(scores) != names or sparsity_m_by_n is not None):
        raise ValueError(f"scores: one a pruned layer expected (and no sparsity_m_by_n); got {sorted(scores)}")
    pruned = keras.models.clone_model(encoder, clone_function=clone_function)
    for layer in pruned.layers:
        if isinstance(layer, PruneLowMagnitude):
            if scores is not None:
                rank_by(layer.pruning_obj, scores[layer.layer.name])
            _mask_in_variable_dtype(layer.pruning_obj)
    return pruned


def _mask_in_variable_dtype(pruning):
    """Makes tfmot's mask ops read kernels in their own dtype (float32), not the compute dtype.

    tfmot runs `kernel = kernel * mask` and the mask update inside the wrapper's call, where Keras
    reads a mixed-precision variable in float16 or bfloat16: alone, every forward pass would round the
    float32 kernel to 16 bits (fine-tuning updates of ~1e-5 then vanish), the magnitudes would be
    ranked in 16 bits (ties: kernels a few weights short of the target), and under a distribution
    strategy the 16-bit product fails to assign to the float32 variable. `pruning` is the wrapper's
    `pruning_obj` (tfmot's pruning_impl.Pruning).
    """
    for name in ("weight_mask_op", "conditional_mask_update"):
        setattr(pruning, name, functools.partial(_without_autocast, getattr(pruning, name)))


def _without_autocast(method):
    with enable_auto_cast_variables(None):
        return method()
