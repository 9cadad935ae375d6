"""BERT's optimisation, as google-research/bert's optimization.py: AdamW with weight decay, a
learning rate warmed up linearly then decayed linearly to zero, and the run's step plan."""

import dataclasses
import math

import tensorflow as tf
import tf_keras as keras


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """How long a run is: its optimizer steps, epochs and warm-up steps."""

    steps_per_epoch: int
    total_steps: int
    epochs: int
    warmup_steps: int


def plan_steps(config, steps_per_epoch):
    """The StepPlan of a RunConfig whose training set makes `steps_per_epoch` batches an epoch."""
    total = math.ceil(steps_per_epoch * config.num_train_epochs)
    if config.max_steps:
        total = min(total, config.max_steps)
    return StepPlan(steps_per_epoch=steps_per_epoch, total_steps=total, epochs=math.ceil(total / steps_per_epoch),
                    warmup_steps=int(total * config.warmup_proportion))


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """BERT's learning rate: linear warm-up to `peak`, then linear decay to 0 at `total_steps`."""

    def __init__(self, peak, warmup_steps, total_steps):
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = step / max(self.warmup_steps, 1)
        decay = (self.total_steps - step) / max(self.total_steps - self.warmup_steps, 1)
        return self.peak * tf.maximum(tf.minimum(warmup, decay), 0.0)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


class WarmupRewarmDecay(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate that re-warms after each mask update of a pruned run (oBERT's cyclic rate).

    Linear warm-up to `peak`; from then on a cycle per mask update: back at `peak` at each of
    `restart_steps`, then a linear decay to `floor` x peak just before the next restart; after the
    last restart, a linear decay to 0 at `total_steps`, the phase at the final sparsity. Each cut in
    the weights meets a rate high enough to recover from it, and the rate has settled before the next.
    """

    def __init__(self, peak, warmup_steps, total_steps, restart_steps, floor=0.1):
        self.peak, self.warmup_steps, self.total_steps, self.floor = peak, warmup_steps, total_steps, floor
        self.restart_steps = sorted({int(s) for s in restart_steps})
        # Each cycle: [start, end) decaying from peak to end_value x peak; the first starts with warm-up's end.
        starts = [warmup_steps] + [s for s in self.restart_steps if warmup_steps < s < total_steps]
        self._starts = tf.constant(starts, tf.float32)
        self._ends = tf.constant(starts[1:] + [total_steps], tf.float32)
        self._end_values = tf.constant([floor] * (len(starts) - 1) + [0.0], tf.float32)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        cycle = tf.maximum(tf.searchsorted(self._starts, step[None], side="right")[0] - 1, 0)
        start, end = tf.gather(self._starts, cycle), tf.gather(self._ends, cycle)
        progress = (step - start) / tf.maximum(end - start, 1.0)
        decayed = self.peak * tf.maximum(1.0 - (1.0 - tf.gather(self._end_values, cycle)) * progress, 0.0)
        warmup = self.peak * step / max(self.warmup_steps, 1)
        return tf.where(step < self.warmup_steps, warmup, decayed)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "restart_steps": self.restart_steps, "floor": self.floor}


class AdamW(keras.optimizers.AdamW):
    """Keras' AdamW, with the weight decay inside the XLA-compiled update, which is one function for
    every dense gradient.

    Keras decays every variable in a pass of its own before the updates (two multiplies and a
    subtraction over each weight, outside the XLA-compiled update); here the same decay, by
    `learning_rate * weight_decay` before Adam's step, is part of the compiled update.
    """

    def _apply_weight_decay(self, variables):
        pass  # in update_step

    def _distributed_apply_gradients_fn(self, distribution, grads_and_vars, **kwargs):
        """Every dense gradient's update in one XLA-compiled function; sparse ones as Keras does them.

        Keras compiles one function a variable (its `key` argument keeps them apart), a hundred
        traces and XLA compiles before a BERT's first step; one function for them all is compiled
        once. Under a strategy it runs once on each replica's device, on that replica's copies of
        the variables, as Keras' do.
        """
        # Under a strategy a gradient is a PerReplica, never an IndexedSlices: ask a replica's value.
        dense, sparse = [], []
        for gradient, variable in grads_and_vars:
            replica_value = distribution.experimental_local_results(gradient)[0]
            (sparse if isinstance(replica_value, tf.IndexedSlices) else dense).append((gradient, variable))
        if dense:
            gradients, variables = map(list, zip(*dense))

            def update_replica(first, gradients, variables):
                replica = [c is first for c in distribution.experimental_local_results(variables[0])].index(True)
                local = [distribution.experimental_local_results(v)[replica] for v in variables]
                return self._update_dense_xla(gradients, local, tuple(id(self._var_key(v)) for v in local))

            distribution.extended.update(variables[0], update_replica, args=(gradients, variables), group=False)
        return super()._distributed_apply_gradients_fn(distribution, sparse, **kwargs)  # counts the step

    @tf.function(jit_compile=True, autograph=False)
    def _update_dense_xla(self, gradients, variables, keys):  # keys: one trace per set of variables
        for gradient, variable in zip(gradients, variables):
            self._update_step(gradient, variable)

    def _update_step_xla(self, gradient, variable, key):
        # An embedding's gradient has a row for each distinct token of the batch, a count that
        # changes at nearly every step, and XLA would compile the update anew for each count.
        if isinstance(gradient, tf.IndexedSlices):
            gradient = pad_rows_to_power_of_two(gradient)
        return super()._update_step_xla(gradient, variable, key)

    def update_step(self, gradient, variable):
        if self._use_weight_decay(variable):
            lr = tf.cast(self.learning_rate, variable.dtype)
            variable.assign_sub(variable * (tf.cast(self.weight_decay, variable.dtype) * lr))
        super().update_step(gradient, variable)


def pad_rows_to_power_of_two(slices):
    """`slices` with zero rows at index 0 up to the next power of two: the same sparse update (Adam
    adds zero to those rows), in one of a dozen shapes instead of one shape per row count."""
    rows = tf.shape(slices.indices)[0]
    bits = tf.maximum(rows, 1) - 1
    for shift in (1, 2, 4, 8, 16):  # set every bit below the highest: rows - 1 becomes 2^k - 1
        bits = tf.bitwise.bitwise_or(bits, tf.bitwise.right_shift(bits, shift))
    extra = bits + 1 - rows
    values_padding = tf.concat([[[0, extra]], tf.zeros([tf.rank(slices.values) - 1, 2], tf.int32)], axis=0)
    return tf.IndexedSlices(tf.pad(slices.values, values_padding), tf.pad(slices.indices, [[0, extra]]),
                            slices.dense_shape)


def make_optimizer(schedule, weight_decay):
    """AdamW as BERT's optimization.py: no decay on LayerNorm or biases, gradients clipped at norm 1."""
    optimizer = AdamW(learning_rate=schedule, weight_decay=weight_decay, beta_1=0.9,
                      beta_2=0.999, epsilon=1e-6, global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["layer_norm", "LayerNorm", "bias"])
    # The update XLA-compiled instead of a dozen passes over memory a variable. tf_keras does this
    # only on GPUs, but on a CPU too the fused update takes about half the time.
    optimizer.jit_compile = True
    return optimizer
