"""The task model a RunConfig trains: BERT's classifier, pruned as configured, compiled with BERT's
optimizer and the task's loss (or the distillation loss, with a teacher)."""

import dataclasses
from typing import Optional

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

import bert_keras
import pruning_schedules
from pruning_schedules import scores, structured
from training import losses, optimization
from training.config import ConfigError


@dataclasses.dataclass
class TrainingModel:
    model: keras.Model  # compiled; its encoder's pruned kernels wrapped (tfmot's or structured.GroupMask)
    pruned_layers: list  # names of the wrapped layers; empty for a dense run
    learning_rate: keras.optimizers.schedules.LearningRateSchedule
    pruning_callback: Optional[keras.callbacks.Callback] = None  # what updates the masks while fitting


DEFAULT_PRUNING_FREQUENCY = 100  # steps between mask updates when no flag gives them


def pruning_steps(config, plan):
    """(begin_step, end_step, frequency) of a pruned run, from its step or epoch settings and defaults.

    Epochs count `plan.steps_per_epoch` steps; an end given in epochs is rounded down to the last
    mask update before it (tfmot reaches the target only on an update). Unset, the begin and end
    default to the end of warm-up and 70% of the run (pruning_schedules.default_pruning_steps), the
    frequency to 100 steps, or with pruning_updates to the interval that fits that many updates.
    """
    def in_steps(epochs):
        return None if epochs is None else round(epochs * plan.steps_per_epoch)

    begin = config.pruning_begin_step if config.pruning_begin_step is not None else in_steps(
        config.pruning_begin_epoch)
    end = config.pruning_end_step
    if config.pruning_frequency:
        frequency = config.pruning_frequency
    elif config.pruning_frequency_epochs:
        frequency = max(1, in_steps(config.pruning_frequency_epochs))
    elif config.pruning_updates:  # the interval that fits them between the begin and end, given or default
        begin = plan.warmup_steps if begin is None else begin
        stop = end if end is not None else in_steps(config.pruning_end_epoch)
        stop = plan.total_steps * pruning_schedules.DEFAULT_END_PERCENT // 100 if stop is None else stop
        frequency = max(1, (stop - begin) // (config.pruning_updates - 1))
        end = begin + (config.pruning_updates - 1) * frequency  # the last update (rounded down)
    else:
        frequency = DEFAULT_PRUNING_FREQUENCY
    if end is None and config.pruning_end_epoch is not None:
        start = begin if begin is not None else plan.warmup_steps
        end = start + max(1, (in_steps(config.pruning_end_epoch) - start) // frequency) * frequency
    if begin is None or end is None:
        default_begin, default_end = pruning_schedules.default_pruning_steps(
            plan.total_steps, plan.warmup_steps, frequency)
        begin = default_begin if begin is None else begin
        end = default_end if end is None else end
    if config.pruning_schedule == "polynomial_decay" and end > plan.total_steps:
        raise ConfigError(f"pruning end step {end} (--pruning_end_step / --pruning_end_epoch) is after the "
                          f"run's last step, {plan.total_steps}: the run would end short of its target sparsity")
    return begin, end, frequency


def mask_update_steps(config, plan):
    """The pruning steps at which polynomial_decay changes the masks: begin, begin + frequency, ..., end."""
    begin, end, frequency = pruning_steps(config, plan)
    return list(range(begin, end + 1, frequency))


def pruning_schedule(config, plan, target_sparsity=None):
    """The tfmot schedule of a pruned run, to `target_sparsity` (default: the config's); with another
    target (global ranking: a layer's own), the initial sparsity is scaled in proportion."""
    begin, end, frequency = pruning_steps(config, plan)
    target = config.target_sparsity if target_sparsity is None else target_sparsity
    initial = config.initial_sparsity * target / config.target_sparsity
    return pruning_schedules.make_schedule(config.pruning_schedule, target, begin_step=begin, end_step=end,
                                           frequency=frequency, initial_sparsity=initial)


def select(encoder, config):
    """The names of the encoder's layers that `config` prunes."""
    return pruning_schedules.select_layers(encoder, pooler=config.prune_pooler,
                                           word_embeddings=config.prune_word_embeddings, patterns=config.prune_layers)


def prune(encoder, config, schedule, bert_config=None, weight_scores=None):
    """(encoder with wrappers on the layers `config` prunes, their names); as it was if dense.
    `schedule`: one tfmot schedule, or one a layer name (unused by structured pruning, whose masks a
    callback sets). `bert_config`: the encoder's, which structured pruning needs. `weight_scores`: what
    the masks rank instead of magnitudes (pruning_score fisher)."""
    if not config.pruned:
        return encoder, []
    if config.pruning_structure == "heads_and_neurons":
        return structured.wrap_encoder(encoder, bert_config)
    names = select(encoder, config)
    return pruning_schedules.prune_encoder(encoder, names, schedule, block_size=config.block_size,
                                           sparsity_m_by_n=config.sparsity_m_by_n, scores=weight_scores), names


def training_loss(config, task):
    """The loss a run trains: the distillation loss with a teacher, the task's otherwise."""
    return (losses.distillation_loss(task, config.distill_alpha, config.distill_temperature) if config.teacher
            else losses.task_loss(task))


def build_training_model(config, pretrained, task, plan, dense_kernels=None, score_batches=None):
    """The compiled classifier over `pretrained`'s encoder; called under the strategy's scope.

    dense_kernels: {layer name: kernel} that a global sparsity ranking ranks (the weights training
    starts from, --init_from's when given); default: the pretrained encoder's. score_batches: the
    training batches --pruning_score taylor (heads and neurons, on the run's loss) or fisher (weights, on
    the task's loss and labels) scores on.
    """
    timing = schedule = pruning_schedule(config, plan) if config.pruned else None
    structure = config.pruned and config.pruning_structure == "heads_and_neurons"
    fisher = config.pruned and config.pruning_score == "fisher"
    names = select(pretrained.encoder, config) if config.pruned and not structure else []
    weight_scores = shares = None  # fisher: a score variable a pruned layer; global fisher: its sparsity too
    if fisher:
        weight_scores = {name: tf.Variable(tf.zeros(pretrained.encoder.get_layer(name).weights[0].shape),
                                           trainable=False, name=f"fisher_score_{name}") for name in names}
    if fisher and config.sparsity_ranking == "global":  # one ranking of every kernel's scores at each update
        shares = {name: tf.Variable(0.0, trainable=False, name=f"global_share_{name}") for name in names}
        schedule = {name: scores.GlobalShare(timing, share) for name, share in shares.items()}
    elif config.pruned and config.sparsity_ranking == "global" and not structure:  # of the dense magnitudes
        kernels = dense_kernels or {name: pretrained.encoder.get_layer(name).get_weights()[0] for name in names}
        schedule = {name: pruning_schedule(config, plan, sparsity) for name, sparsity in
                    pruning_schedules.global_sparsities(kernels, config.target_sparsity).items()}
    encoder, pruned_layers = prune(pretrained.encoder, config, schedule, pretrained.config, weight_scores)
    pruning_callback = None
    if structure:
        # taylor scores on the loss the run trains (the teacher's with distillation: measured better on SST-2
        # than the task's, 0.8704 against 0.8578 at 75%); fisher on the task's (benchmarks/README.md)
        pruning_callback = structured.StructuredPruning(schedule, config.sparsity_ranking, config.pruning_score,
                                                        score_batches, training_loss(config, task))
    elif fisher:
        pruning_callback = scores.FisherPruningStep(timing, weight_scores, score_batches, losses.task_loss(task),
                                                    shares)
    elif config.pruned:
        pruning_callback = tfmot.sparsity.keras.UpdatePruningStep()
    model = bert_keras.build_classifier(encoder, task.num_outputs, pretrained.config.hidden_dropout_prob,
                                        name=f"bert_{task.tfds_name}")
    if config.learning_rate_schedule == "rewarm":
        # The mask update of pruning step u happens in the batch whose optimizer step is u - 1.
        learning_rate = optimization.WarmupRewarmDecay(config.learning_rate, plan.warmup_steps, plan.total_steps,
                                                       [u - 1 for u in mask_update_steps(config, plan)])
    else:
        learning_rate = optimization.WarmupLinearDecay(config.learning_rate, plan.warmup_steps, plan.total_steps)
    loss = training_loss(config, task)
    model.compile(optimizer=optimization.make_optimizer(learning_rate, config.weight_decay), loss=loss,
                  jit_compile=config.xla)
    # A step's logged loss is already the global batch's (Keras metrics synchronise their replicas);
    # tf_keras' "auto" would add it up once per worker under multi_worker_mirrored.
    model.distribute_reduction_method = "first"
    return TrainingModel(model, pruned_layers, learning_rate, pruning_callback)
