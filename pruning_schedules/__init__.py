"""Magnitude pruning for the BERT encoder: tfmot schedules, the layers to prune, a sparsity report."""

import bert_keras  # noqa: F401  (first: it sets TensorFlow's environment, Keras 2 for tfmot)
from pruning_schedules.report import format_table, sparsity_report, write_report  # noqa: E402
from pruning_schedules.schedules import (DEFAULT_END_PERCENT, SCHEDULE_KINDS,  # noqa: E402
                                         default_pruning_steps, make_schedule, sparsity_at)
from pruning_schedules.scores import global_sparsities  # noqa: E402
from pruning_schedules.selection import prune_encoder, select_layers  # noqa: E402

__all__ = ["format_table", "sparsity_report", "write_report", "DEFAULT_END_PERCENT", "SCHEDULE_KINDS",
           "default_pruning_steps", "make_schedule", "sparsity_at", "global_sparsities", "prune_encoder",
           "select_layers"]
