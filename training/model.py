"""The task model a RunConfig trains: BERT's classifier, pruned as configured, compiled with BERT's
optimizer and the task's loss (or the distillation loss, with a teacher)."""

import dataclasses

import tf_keras as keras

import bert_keras
import pruning_schedules
from training import losses, optimization


@dataclasses.dataclass
class TrainingModel:
    model: keras.Model  # compiled; its encoder's pruned kernels wrapped by tfmot
    pruned_layers: list  # names of the wrapped layers; empty for a dense run
    learning_rate: optimization.WarmupLinearDecay


def pruning_schedule(config, plan):
    """The tfmot schedule of a pruned run: its begin and end steps default to the plan's."""
    begin, end = config.pruning_begin_step, config.pruning_end_step
    if begin is None or end is None:
        default_begin, default_end = pruning_schedules.default_pruning_steps(
            plan.total_steps, plan.warmup_steps, config.pruning_frequency)
        begin = default_begin if begin is None else begin
        end = default_end if end is None else end
    return pruning_schedules.make_schedule(
        config.pruning_schedule, config.target_sparsity, begin_step=begin, end_step=end,
        frequency=config.pruning_frequency, initial_sparsity=config.initial_sparsity)


def prune(encoder, config, schedule):
    """(encoder with tfmot's wrappers on the layers `config` prunes, their names); as it was if dense."""
    if not config.pruned:
        return encoder, []
    names = pruning_schedules.select_layers(encoder, pooler=config.prune_pooler,
                                            word_embeddings=config.prune_word_embeddings,
                                            patterns=config.prune_layers)
    return pruning_schedules.prune_encoder(encoder, names, schedule, block_size=config.block_size,
                                           sparsity_m_by_n=config.sparsity_m_by_n), names


def build_training_model(config, pretrained, task, plan):
    """The compiled classifier over `pretrained`'s encoder; called under the strategy's scope."""
    schedule = pruning_schedule(config, plan) if config.pruned else None
    encoder, pruned_layers = prune(pretrained.encoder, config, schedule)
    model = bert_keras.build_classifier(encoder, task.num_outputs, pretrained.config.hidden_dropout_prob,
                                        name=f"bert_{task.tfds_name}")
    learning_rate = optimization.WarmupLinearDecay(config.learning_rate, plan.warmup_steps, plan.total_steps)
    loss = (losses.distillation_loss(task, config.distill_alpha, config.distill_temperature) if config.teacher
            else losses.task_loss(task))
    model.compile(optimizer=optimization.make_optimizer(learning_rate, config.weight_decay), loss=loss,
                  jit_compile=config.xla)
    # A step's logged loss is already the global batch's (Keras metrics synchronise their replicas);
    # tf_keras' "auto" would add it up once per worker under multi_worker_mirrored.
    model.distribute_reduction_method = "first"
    return TrainingModel(model, pruned_layers, learning_rate)
