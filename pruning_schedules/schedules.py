"""Sparsity schedules from flag values: Zhu & Gupta's gradual pruning (arXiv:1710.01878) or a constant target.

How tfmot steps a schedule (pruning_wrapper.py, pruning_schedule.py): `UpdatePruningStep` sets each
wrapper's step to 0 when training begins and the wrapper adds 1 before it may update its masks, so the
t-th training batch runs at step t (step 0 never happens). Masks change only on steps in
[begin_step, end_step] where (step - begin_step) % frequency == 0, and to the schedule's sparsity at
that step. Nothing special happens at end_step: if end_step - begin_step is not a multiple of
frequency, the last update comes before end_step, below the final sparsity, and PolynomialDecay
never updates again. So `make_schedule` refuses such a pair instead of training a model that
silently ends short of its target, and `default_pruning_steps` only chooses pairs that fit.
"""

import tensorflow as tf
import tensorflow_model_optimization as tfmot

SCHEDULE_KINDS = ("polynomial_decay", "constant")
# The share of the run (in percent) by whose end the default schedule reaches its target.
DEFAULT_END_PERCENT = 70


def make_schedule(kind, target_sparsity, *, begin_step, end_step, frequency=100, initial_sparsity=0.0, power=3):
    """A tfmot pruning schedule from a run's pruning settings.

    Args:
      kind: str. "polynomial_decay": sparsity rises from `initial_sparsity` at `begin_step` to
        `target_sparsity` at `end_step` as s_t = s_f + (s_i - s_f) (1 - (t - t0) / n)^power, fast at
        first, when the most redundant weights go. "constant": `target_sparsity` from `begin_step`
        to the end of the run (tfmot's end_step=-1), the masks recomputed every `frequency` steps.
      target_sparsity: float in [0, 1). The fraction of each pruned kernel that ends up zero.
      begin_step: int >= 0. First step at which masks may change (the first training batch is step 1).
      end_step: int. Step at which polynomial_decay reaches `target_sparsity`; unused by "constant".
        end_step - begin_step must be a positive multiple of `frequency` (see the module docstring).
      frequency: int >= 1. Masks change every `frequency` steps.
      initial_sparsity: float in [0, 1). polynomial_decay's sparsity at `begin_step`.
      power: positive number. polynomial_decay's exponent (3 in Zhu & Gupta).

    Returns:
      A `tfmot.sparsity.keras.PolynomialDecay` or `ConstantSparsity`.

    Raises:
      ValueError: naming the argument whose value cannot give a run that reaches its target.
    """
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {', '.join(SCHEDULE_KINDS)}")
    if not 0.0 <= target_sparsity < 1.0:
        raise ValueError(f"target_sparsity={target_sparsity}: expected a fraction in [0, 1)")
    if begin_step < 0:
        raise ValueError(f"begin_step={begin_step}: expected a step >= 0")
    if frequency < 1:
        raise ValueError(f"frequency={frequency}: expected an integer >= 1")
    if kind == "constant":
        return tfmot.sparsity.keras.ConstantSparsity(target_sparsity, begin_step, end_step=-1, frequency=frequency)

    if not 0.0 <= initial_sparsity < 1.0:
        raise ValueError(f"initial_sparsity={initial_sparsity}: expected a fraction in [0, 1)")
    if not power > 0:
        raise ValueError(f"power={power}: expected a positive exponent")
    if end_step <= begin_step:
        raise ValueError(f"end_step={end_step}: must be after begin_step={begin_step}")
    if (end_step - begin_step) % frequency:
        below = begin_step + (end_step - begin_step) // frequency * frequency
        nearest = [step for step in (below, below + frequency) if step > begin_step]
        raise ValueError(
            f"end_step={end_step}: end - begin ({end_step} - {begin_step}) is not a multiple of "
            f"frequency={frequency}, so tfmot would last update the masks before the end step, short "
            f"of target_sparsity={target_sparsity}; use end_step in {nearest} or change the frequency")
    return tfmot.sparsity.keras.PolynomialDecay(initial_sparsity, final_sparsity=target_sparsity,
                                                begin_step=begin_step, end_step=end_step, power=power,
                                                frequency=frequency)


def default_pruning_steps(total_steps, warmup_steps, frequency=100):
    """(begin_step, end_step) for a run whose flags leave them unset.

    Pruning begins when the learning-rate warm-up ends (before it, updates are too small for
    magnitudes to mean much, and pruning a warming-up model compounds two disturbances), and reaches
    its target by about 70% of the run, so the last 30% or more fine-tunes the model at its final
    sparsity and recovers accuracy. end_step is rounded down to begin_step plus a multiple of
    `frequency` (at least one), so `make_schedule` accepts the pair and the target is reached.

    Args:
      total_steps: int >= 1. Training batches in the whole run.
      warmup_steps: int in [0, total_steps). Learning-rate warm-up steps.
      frequency: int >= 1. The frequency the schedule will use.

    Returns:
      (begin_step, end_step), with end_step <= total_steps.

    Raises:
      ValueError: when not even one pruning interval fits after the warm-up.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps={total_steps}: expected at least one training step")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps={warmup_steps}: expected a value in [0, {total_steps})")
    if frequency < 1:
        raise ValueError(f"frequency={frequency}: expected an integer >= 1")
    begin_step = warmup_steps
    intervals = max(1, (total_steps * DEFAULT_END_PERCENT // 100 - begin_step) // frequency)
    end_step = begin_step + intervals * frequency
    if end_step > total_steps:
        raise ValueError(
            f"frequency={frequency} does not fit a run of {total_steps} steps whose warm-up ends at step "
            f"{warmup_steps}: lower it, or give begin_step and end_step")
    return begin_step, end_step


def sparsity_at(schedule, step):
    """The sparsity `schedule` asks for at `step`, as a float.

    This is the value tfmot would prune to if it updated the masks at `step`; it updates them only
    on the schedule's pruning turns (the module docstring), and ConstantSparsity returns its target
    even before `begin_step`.

    Args:
      schedule: a tfmot `PruningSchedule`.
      step: int. A training step, numbered as the pruning wrappers number them.
    """
    _, sparsity = schedule(tf.constant(step, tf.int64))
    return float(sparsity)
