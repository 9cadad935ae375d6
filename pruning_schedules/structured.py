"""Structured pruning: whole attention heads and whole feed-forward neurons, removed while fine-tuning.

Head h of a layer is columns [h * d, (h + 1) * d) of its query, key and value kernels (and biases)
with the same rows of its attention-output kernel; neuron j is column j of the intermediate kernel
(and bias) with row j of the output kernel. tfmot masks each weight, or each block of one tensor, on
its own: it has no notion of a group that spans four tensors, so the masks here are our own.
`GroupMask` wraps such a Dense layer with one 0/1 mask entry a group and, as tfmot's wrapper does,
writes weights * mask into the layer before each forward pass: the zeros are real, in the weights.
The `StructuredPruning` callback ranks the groups by a score and sets the masks on a tfmot schedule
(PolynomialDecay or ConstantSparsity), at tfmot's steps (schedules.py), so the sparsity a step asks
for is the share of each layer's heads and of its neurons that are gone. The score is the L2 norm of
a group's weights (magnitude), or a first-order estimate of what removing the group costs the loss
(taylor: |dL/dm| for the group's mask entry m, averaged over a few training batches; Molchanov et
al. 2019, and Michel et al. 2019's head importance).

At export `kept_groups` reads the masks and bert_keras.slicing cuts the pruned groups out: a smaller
encoder that computes what the masked one computes.
"""

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tf_keras.src.mixed_precision.autocast_variable import enable_auto_cast_variables

from bert_keras.encoder import LAYER_KERNELS
from pruning_schedules.scores import find_wrappers, loss_gradients

HEAD_PARTS = LAYER_KERNELS[:4]  # query, key, value (columns), attention output (rows)
NEURON_PARTS = LAYER_KERNELS[4:]  # intermediate (columns), output (rows)
RANKINGS = ("per_layer", "global")
SCORES = ("magnitude", "taylor")


@keras.utils.register_keras_serializable(package="pruning_schedules")
class GroupMask(keras.layers.Wrapper):
    """A Dense layer whose kernel is masked by groups of columns (axis 1; the bias too) or rows (axis 0).

    The mask is a non-trainable float32 weight `group_mask` of [groups] entries, 1 kept, 0 pruned,
    saved with the model's checkpoints; each entry covers kernel.shape[axis] // groups columns or rows.
    """

    def __init__(self, layer, groups, axis, **kwargs):
        if not isinstance(layer, keras.layers.Dense):
            raise ValueError(f"GroupMask wraps a Dense layer, not {type(layer).__name__} {layer.name!r}")
        if axis not in (0, 1):
            raise ValueError(f"axis={axis!r}: expected 0 (kernel rows) or 1 (kernel columns)")
        kwargs.setdefault("name", f"group_mask_{layer.name}")
        super().__init__(layer, **kwargs)
        self.groups, self.axis = int(groups), axis

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        size = int(self.layer.kernel.shape[self.axis])
        if self.groups < 1 or size % self.groups:
            raise ValueError(f"{self.layer.name}: {self.groups} groups do not divide its kernel's axis {self.axis} "
                             f"of {size}")
        self.mask = self.add_weight("group_mask", shape=[self.groups], dtype=tf.float32, initializer="ones",
                                    trainable=False)
        super().build(input_shape)

    def masked_weights(self):
        """[(variable, its mask expanded to the variable's shape)]: the kernel, and the bias on axis 1."""
        size = int(self.layer.kernel.shape[self.axis])
        expanded = tf.repeat(tf.convert_to_tensor(self.mask), size // self.groups)  # (size,)
        pairs = [(self.layer.kernel, expanded[None, :] if self.axis == 1 else expanded[:, None])]
        if self.axis == 1 and self.layer.use_bias:
            pairs.append((self.layer.bias, expanded))
        return pairs

    def apply_mask(self):
        # Read and written in float32 (a mixed-precision kernel reads as 16-bit in a layer's call).
        with enable_auto_cast_variables(None):
            for variable, mask in self.masked_weights():
                variable.assign(tf.cast(variable, tf.float32) * mask)

    def call(self, inputs):
        self.apply_mask()
        return self.layer(inputs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis}


def _parts(name):
    """(layer index, part) of `layer_{i}_{part}`, or None."""
    pieces = name.split("_", 2)
    if len(pieces) == 3 and pieces[0] == "layer" and pieces[1].isdigit():
        return int(pieces[1]), pieces[2]
    return None


def wrap_encoder(encoder, config):
    """(a copy of `encoder` whose head and neuron kernels are GroupMask-wrapped, the wrapped names).

    As pruning_schedules.prune_encoder: `clone_model` returning the very layers it does not wrap, so the
    copy shares the encoder's variables.
    """
    if config.layer_num_attention_heads is not None or config.layer_intermediate_sizes is not None:
        raise ValueError(f"{encoder.name!r} is already structurally pruned (its config gives per-layer shapes): "
                         "prune the full encoder it came from")

    def groups_and_axis(name):
        parts = _parts(name)
        if parts is None or parts[1] not in LAYER_KERNELS:
            return None
        groups = config.num_attention_heads if parts[1] in HEAD_PARTS else config.intermediate_size
        return groups, 0 if parts[1] in ("attention_output", "output") else 1

    wrapped = [layer.name for layer in encoder.layers if groups_and_axis(layer.name)]
    if not wrapped:
        raise ValueError(f"{encoder.name!r} has no BERT transformer kernels (layer_<i>_<kind> Dense layers)")

    def clone_function(layer):
        found = groups_and_axis(layer.name)
        return GroupMask(layer, *found) if found else layer

    return keras.models.clone_model(encoder, clone_function=clone_function), wrapped


def masked_layers(model):
    """{wrapped layer's name: GroupMask} in `model` and the models nested in it."""
    return find_wrappers(model, GroupMask)


def _by_layer(wrappers):
    """{layer index: {"heads": [its head wrappers], "neurons": [its neuron wrappers]}}."""
    layers = {}
    for name, wrapper in wrappers.items():
        i, part = _parts(name)
        kind = "heads" if part in HEAD_PARTS else "neurons"
        layers.setdefault(i, {"heads": [], "neurons": []})[kind].append(wrapper)
    return dict(sorted(layers.items()))


def _per_group(values, wrapper):
    """`values` (a float32 tensor shaped as one of `wrapper`'s masked weights) summed over each of its
    groups: (groups,), where the values are (on the device)."""
    groups, shape = wrapper.groups, values.shape
    if len(shape) == 1:  # a bias, grouped along its only axis
        return tf.reduce_sum(tf.reshape(values, [groups, -1]), axis=1)
    if wrapper.axis == 1:
        return tf.reduce_sum(tf.reshape(values, [shape[0], groups, -1]), axis=(0, 2))
    return tf.reduce_sum(tf.reshape(values, [groups, -1, shape[1]]), axis=(1, 2))


def group_scores(wrappers):
    """The L2 norm of each group's weights across `wrappers` (GroupMasks of one group kind of one layer)."""
    squares = 0.0
    for wrapper in wrappers:
        for variable, _ in wrapper.masked_weights():
            squares = squares + _per_group(tf.square(tf.cast(variable, tf.float32)), wrapper)
    return np.sqrt(np.asarray(squares))


def taylor_scores(model, batches, loss):
    """{layer index: {"heads": scores, "neurons": scores}}: each group's mean over `batches` of |dL/dm|.

    m is the group's mask entry, which multiplies all its weights: dL/dm = sum over the group's weights
    (in all four head kernels, or both neuron kernels) of w x dL/dw. L is `loss` (the run's), `batches`
    as in `loss_gradients` (inference mode; loss scaling; replicas). A pruned group scores 0.
    """
    pairs = [(i, kind, wrapper, variable) for i, found in _by_layer(masked_layers(model)).items()
             for kind in ("heads", "neurons") for wrapper in found[kind] for variable, _ in wrapper.masked_weights()]
    totals, count = {}, 0
    for gradients in loss_gradients(model, batches, [variable for *_, variable in pairs], loss):
        derivative = {}
        for (i, kind, wrapper, variable), gradient in zip(pairs, gradients):
            product = tf.cast(variable, tf.float32) * gradient
            derivative[i, kind] = derivative.get((i, kind), 0.0) + _per_group(product, wrapper)
        for key, value in derivative.items():
            totals[key] = totals.get(key, 0.0) + np.abs(np.asarray(value))
        count += 1
    result = {}
    for (i, kind), total in totals.items():
        result.setdefault(i, {})[kind] = total / count
    return result


def _keep_top(scores, kept, count):
    """A 0/1 mask keeping the `count` highest scores among the groups still kept (ties: the lower index)."""
    ranked = np.where(kept, scores, -np.inf)
    order = np.argsort(-ranked, kind="stable")
    mask = np.zeros(len(scores), np.float32)
    mask[order[:count]] = 1.0
    return mask * kept


def update_masks(model, sparsity, ranking="per_layer", scores=None):
    """Sets every GroupMask of `model` so that a `sparsity` share of the heads and of the neurons is gone.

    per_layer: each layer loses round(sparsity x its count) of its heads and of its neurons, those with the
    lowest scores. global: the lowest of all layers' heads (and, separately, neurons) ranked together,
    so layers end with different widths, some perhaps with none. A pruned group stays pruned.
    scores: `taylor_scores`' result, each layer's divided by its L2 norm under global ranking (as Michel
    et al. do: gradients' scales differ between layers); default: the groups' weight norms.
    Returns {"heads": share kept, "neurons": share kept}.
    """
    if ranking not in RANKINGS:
        raise ValueError(f"ranking={ranking!r}: expected one of {', '.join(RANKINGS)}")
    kept_share = {}
    by_layer = _by_layer(masked_layers(model))
    for kind in ("heads", "neurons"):
        layers = [parts[kind] for parts in by_layer.values()]
        if scores is None:
            ranked = [group_scores(wrappers) for wrappers in layers]
        else:
            ranked = [np.asarray(scores[i][kind], np.float64) for i in by_layer]
            if ranking == "global":
                ranked = [s / max(np.linalg.norm(s), 1e-30) for s in ranked]
        kept = [np.asarray(wrappers[0].mask.numpy()) for wrappers in layers]
        if ranking == "per_layer":
            masks = [_keep_top(s, k, len(s) - int(round(sparsity * len(s)))) for s, k in zip(ranked, kept)]
        else:
            total = sum(len(s) for s in ranked)
            flat = _keep_top(np.concatenate(ranked), np.concatenate(kept), total - int(round(sparsity * total)))
            masks = np.split(flat, np.cumsum([len(s) for s in ranked])[:-1])
        for wrappers, mask in zip(layers, masks):
            for wrapper in wrappers:
                wrapper.mask.assign(mask)
        kept_share[kind] = float(np.concatenate(masks).mean())
    return kept_share


def kept_groups(model):
    """({layer index: kept head indices}, {layer index: kept neuron indices}) from `model`'s masks."""
    heads, neurons = {}, {}
    for i, parts in _by_layer(masked_layers(model)).items():
        for kind, found in (("heads", heads), ("neurons", neurons)):
            masks = {tuple(w.mask.numpy()) for w in parts[kind]}
            if len(masks) != 1:
                raise ValueError(f"layer {i}: its {kind}' kernels disagree on which to keep")
            found[i] = [int(j) for j in np.flatnonzero(np.asarray(masks.pop()))]
    return heads, neurons


class StructuredPruning(keras.callbacks.Callback):
    """Updates the GroupMasks on a tfmot schedule, at tfmot's step numbering: the t-th training batch is
    step t, and a mask update at step t happens before that batch's forward pass. Masks the weights
    again at each epoch's end. Puts the numbers of heads and neurons kept into the batch logs
    (TensorBoard's batch_heads_kept, batch_neurons_kept).

    score: "magnitude", or "taylor" with `score_batches` (a few (features, labels) training batches, the
    same at every update: a resumed run ranks as the uninterrupted one) and `score_loss` (the run's).
    """

    def __init__(self, schedule, ranking="per_layer", score="magnitude", score_batches=None, score_loss=None):
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"score={score!r}: expected one of {', '.join(SCORES)}")
        if score == "taylor" and (score_batches is None or score_loss is None):
            raise ValueError("score=taylor needs score_batches and score_loss, the training batches and the loss "
                             "it scores the groups on")
        self.schedule, self.ranking, self.score_loss = schedule, ranking, score_loss
        self.score_batches = score_batches if score == "taylor" else None
        self.kept = None  # (heads, neurons) kept, counted when the masks change, not at every step

    def _count(self):
        heads, neurons = kept_groups(self.model)
        self.kept = sum(map(len, heads.values())), sum(map(len, neurons.values()))

    def on_train_begin(self, logs=None):
        self._count()  # a resumed run's masks come from its backup

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy()) + 1
        should_prune, sparsity = self.schedule(tf.constant(step, tf.int64))
        if bool(should_prune):
            scores = (taylor_scores(self.model, self.score_batches, self.score_loss)
                      if self.score_batches is not None else None)
            update_masks(self.model, float(sparsity), self.ranking, scores)
            self._count()

    def on_epoch_end(self, epoch, logs=None):
        # As tfmot's UpdatePruningStep: the optimizer's last steps moved some pruned weights (Adam's
        # momentum); zero them again, so that the weights saved and exported are the masked ones.
        for wrapper in masked_layers(self.model).values():
            wrapper.apply_mask()

    def on_train_batch_end(self, batch, logs=None):
        if logs is not None:
            logs["heads_kept"], logs["neurons_kept"] = self.kept


def structure_report(full, small, model_name):
    """Each layer's heads and neurons kept, and the share of the pruned kernels' weights that is gone.

    full, small: the BertConfig before and after slicing. "totals" has the shape of
    report.sparsity_report's: "pruned" counts the weights of the heads' and neurons' kernels and biases.
    """
    H, d = full.hidden_size, full.head_size
    layers, size, gone = [], 0, 0
    for i in range(full.num_hidden_layers):
        layers.append({"layer": i, "heads": small.heads(i), "of_heads": full.heads(i),
                       "neurons": small.intermediate(i), "of_neurons": full.intermediate(i)})
        head_weights = 4 * H * d + 3 * d  # query, key, value columns and biases; attention-output rows
        neuron_weights = 2 * H + 1  # an intermediate column and its bias; an output row
        size += full.heads(i) * head_weights + full.intermediate(i) * neuron_weights
        gone += (full.heads(i) - small.heads(i)) * head_weights + \
            (full.intermediate(i) - small.intermediate(i)) * neuron_weights
    pruned = {"weights": 6 * full.num_hidden_layers, "size": size, "zeros": gone, "sparsity": gone / size}
    return {"model": model_name, "structure": "heads_and_neurons", "layers": layers, "totals": {"pruned": pruned}}


def format_structure_table(report):
    """A fixed-width table of `structure_report`'s result."""
    lines = [f"structure of {report['model']}", "layer  heads kept  neurons kept"]
    lines += [f"{e['layer']:>5}  {e['heads']:>4} of {e['of_heads']:<3}  {e['neurons']:>5} of {e['of_neurons']}"
              for e in report["layers"]]
    pruned = report["totals"]["pruned"]
    lines.append(f"removed: {pruned['zeros']:,} of the {pruned['size']:,} weights of the heads and neurons "
                 f"({pruned['sparsity']:.2%})")
    return "\n".join(lines)
