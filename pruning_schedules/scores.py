"""Loss-aware pruning scores: the training loss' gradients over a few batches, and tfmot ranking by them.

tfmot ranks a kernel's weights by magnitude. `fisher` ranks them instead by the optimal brain surgeon's
saliency under a diagonal empirical Fisher, w^2 (mean over batches of (dL/dw)^2 + damping) / 2 (LeCun
et al. 1990, Hassibi & Stork 1993): the loss a weight's removal costs to second order, oBERT's score
(Kurtic et al. 2022) at block size 1. The masks stay tfmot's: `rank_by` hands a wrapper's mask update
the score instead of the kernel, so thresholds, blocks, schedules and strip_pruning work as before, and
`FisherPruningStep` (tfmot's UpdatePruningStep, plus the scores) recomputes the scores before each update.
Ranked globally (`GlobalShare`), every kernel's scores are ranked together, as oBERT ranks them, and each
kernel's sparsity at an update is its share of the weights below the one threshold.
structured.taylor_scores (heads and neurons) shares `loss_gradients`.
"""

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

LOSS_SCALE = 2.0 ** 15  # the first loss scale under mixed_float16 (Keras' initial one)
DAMPING = 0.01  # of a kernel's mean Fisher diagonal, added to each entry (GPTQ's relative dampening)
MAX_LAYER_SPARSITY = 0.99  # global ranking's cap on one kernel


def loss_gradients(model, batches, variables, loss):
    """Yields, for each (features, labels) batch, [dL/dv as float32 NumPy for v in `variables`].

    L is `loss` of the model in inference mode (no dropout): for fisher the task's on the labels (a student
    that starts as its teacher has a distillation loss of zero and no gradient), for taylor the run's.
    Under mixed_float16 (a LossScaleOptimizer) the loss is scaled by LOSS_SCALE, halved until no gradient
    overflows. Under a strategy of several replicas `batches` is a tf.data.Dataset of global batches,
    split between the replicas as training splits them; their gradients add up to the batch's.
    """
    strategy = model.distribute_strategy
    scale = LOSS_SCALE if isinstance(model.optimizer, keras.mixed_precision.LossScaleOptimizer) else 1.0

    def replica_gradients(features, labels, scale):
        with tf.GradientTape() as tape:
            value = loss(labels, model(features, training=False)) * scale
        # An embedding's gradient comes as IndexedSlices: made dense, to be summed and squared.
        return [tf.cast(tf.convert_to_tensor(g), tf.float32) / scale for g in tape.gradient(value, variables)]

    if strategy.num_replicas_in_sync > 1:
        if not isinstance(batches, tf.data.Dataset):
            raise ValueError(f"scoring under {strategy.num_replicas_in_sync} replicas: batches must be a "
                             f"tf.data.Dataset (split between them), not {type(batches).__name__}")
        batches = strategy.experimental_distribute_dataset(batches)
    count = 0
    for features, labels in batches:
        while True:  # a float16 backward pass may overflow: halve the scale until it does not
            per_replica = strategy.run(replica_gradients, args=(features, labels, scale))
            gradients = [np.asarray(strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None)) for g in per_replica]
            finite = all(np.all(np.isfinite(g)) for g in gradients)
            if finite or scale <= 1:
                break
            scale /= 2
        if not finite:
            raise FloatingPointError("the loss' gradient is not finite on a scoring batch (the loss itself may "
                                     "be; see the training loss)")
        count += 1
        yield gradients
    if not count:
        raise ValueError("no batches to score on")


def find_wrappers(model, wrapper_class=PruneLowMagnitude):
    """{wrapped layer's name: its `wrapper_class` wrapper} in `model` and the models nested in it."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, wrapper_class):
            found[layer.layer.name] = layer
        elif isinstance(layer, keras.Model):
            found.update(find_wrappers(layer, wrapper_class))
    return found


def pruned_weights(model):
    """{wrapped layer's name: the weight tfmot prunes (the kernel, or the embedding matrix)} of `model`."""
    return {name: wrapper.pruning_vars[0][0] for name, wrapper in find_wrappers(model).items()}


def fisher_diagonals(model, batches, loss):
    """{wrapped layer's name: the mean over `batches` of (dL/dw)^2} for each `pruned_weights` w of `model`,
    as float32 NumPy: the empirical Fisher's diagonal."""
    weights = pruned_weights(model)
    squares, count = None, 0
    for gradients in loss_gradients(model, batches, list(weights.values()), loss):
        batch_squares = [np.square(g) for g in gradients]
        squares = batch_squares if squares is None else [s + b for s, b in zip(squares, batch_squares)]
        count += 1
    return {name: s / count for name, s in zip(weights, squares)}


def fisher_scores(model, batches, loss):
    """{wrapped layer's name: w^2 (F + DAMPING x mean(F)) / 2}, F its `fisher_diagonals`. A pruned weight
    scores 0 (the forward passes that computed F masked its kernel)."""
    weights = pruned_weights(model)
    return {name: np.square(np.asarray(tf.cast(weights[name], tf.float32))) * (f + DAMPING * f.mean()) / 2
            for name, f in fisher_diagonals(model, batches, loss).items()}


def global_sparsities(kernels, target_sparsity):
    """{layer name: sparsity}: each kernel's share of the weights below one global threshold of |value|.

    Magnitude pruning ranks each kernel on its own, so every kernel loses the same share; ranked
    together, a kernel of small weights loses more and one of large weights less, and the pruned
    kernels as a whole reach `target_sparsity` (Gale et al., 2019, "The State of Sparsity"), also where
    a kernel is capped at MAX_LAYER_SPARSITY.

    Args:
      kernels: {layer name: array}. What is ranked: the weights the run starts from, or their scores.
      target_sparsity: float in [0, 1). The share of all their weights to prune.
    """
    if not 0.0 <= target_sparsity < 1.0:
        raise ValueError(f"target_sparsity={target_sparsity}: expected a fraction in [0, 1)")
    magnitudes = {name: np.abs(np.asarray(k, np.float32)).ravel() for name, k in kernels.items()}
    to_prune = target_sparsity * sum(m.size for m in magnitudes.values())
    # Capped below 1: tfmot keeps at least one weight of a kernel, and a kernel of nothing but zeros would cut
    # the network. What a capped kernel cannot take, the others do: ranked again without it, until none is over.
    capped = {}
    while True:
        rest = {name: m for name, m in magnitudes.items() if name not in capped}
        everything = np.sort(np.concatenate(list(rest.values())))
        share_of_rest = (to_prune - sum(MAX_LAYER_SPARSITY * magnitudes[n].size for n in capped)) / everything.size
        threshold = everything[min(int(share_of_rest * everything.size), everything.size - 1)]  # smallest kept
        shares = {name: float(np.mean(m < threshold)) for name, m in rest.items()}
        over = [name for name, share in shares.items() if share > MAX_LAYER_SPARSITY]
        if not over or len(over) == len(rest):
            return {**dict.fromkeys(capped, MAX_LAYER_SPARSITY),
                    **{name: min(share, MAX_LAYER_SPARSITY) for name, share in shares.items()}}
        capped.update(dict.fromkeys(over))


class GlobalShare(tfmot.sparsity.keras.PruningSchedule):
    """One kernel's schedule under global Fisher ranking: when its mask changes, `timing`'s (the run's
    schedule); to what sparsity, `share`: a variable that FisherPruningStep sets before each update to the
    kernel's part of one ranking of every pruned kernel's scores to `timing`'s sparsity."""

    def __init__(self, timing, share):
        self.timing, self.share = timing, share

    def __call__(self, step):
        return self.timing(step)[0], tf.convert_to_tensor(self.share)

    def get_config(self):
        return {"class_name": type(self).__name__, "config": {"timing": self.timing.get_config()}}


def rank_by(pruning, score):
    """Makes tfmot's mask update of one wrapper rank `score` (a variable of the weight's shape, >= 0)
    instead of the weight's magnitude. `pruning`: the wrapper's `pruning_obj` (pruning_impl.Pruning), whose
    `_maybe_update_block_mask(weight)` (blocks pooled, then the top share kept) is where magnitude enters.
    A score of all zeros (never set) would keep every weight, so it fails the update instead."""
    update = pruning._maybe_update_block_mask

    def update_by_score(weight):
        value = tf.convert_to_tensor(score)
        with tf.control_dependencies([tf.debugging.assert_positive(
                tf.reduce_max(value), message=f"{score.name}: no score set before this mask update of "
                f"{weight.name} (FisherPruningStep sets them)")]):
            return update(tf.identity(value))

    pruning._maybe_update_block_mask = update_by_score


class FisherPruningStep(tfmot.sparsity.keras.UpdatePruningStep):
    """tfmot's UpdatePruningStep that also sets `scores` ({layer name: variable}, which `rank_by` handed the
    wrappers) to `fisher_scores` over `score_batches` ((features, labels) training batches, the same at every
    update: a resumed run ranks as the uninterrupted one) and `loss` before each batch whose step updates
    the masks."""

    def __init__(self, schedule, scores, score_batches, loss, shares=None):
        if score_batches is None:
            raise ValueError("FisherPruningStep needs score_batches, the training batches it scores the weights on")
        super().__init__()
        self.schedule, self.scores, self.score_batches, self.loss = schedule, scores, score_batches, loss
        self.shares = shares  # global ranking: {layer name: the sparsity variable of its GlobalShare}

    def on_train_batch_begin(self, batch, logs=None):
        super().on_train_batch_begin(batch, logs)
        step = tf.constant(int(self.model.optimizer.iterations.numpy()) + 1, tf.int64)  # the wrappers' count
        should_prune, sparsity = self.schedule(step)
        if bool(should_prune):
            values = fisher_scores(self.model, self.score_batches, self.loss)
            for name, value in values.items():
                self.scores[name].assign(value)
            if self.shares:
                for name, share in global_sparsities(values, float(sparsity)).items():
                    self.shares[name].assign(share)
