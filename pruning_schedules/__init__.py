"""Magnitude pruning for the BERT encoder: schedules from flags, the layers to prune, a sparsity report."""

import os

# Keras 2 (tf_keras) everywhere, as in bert_keras: set before anything imports TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from pruning_schedules.report import footprint, format_table, sparsity_report, write_report  # noqa: E402
from pruning_schedules.schedules import (SCHEDULE_KINDS, default_pruning_steps, make_schedule,  # noqa: E402
                                         sparsity_at)
from pruning_schedules.selection import parse_pair, prune_encoder, select_layers  # noqa: E402

__all__ = ["footprint", "format_table", "sparsity_report", "write_report", "SCHEDULE_KINDS",
           "default_pruning_steps", "make_schedule", "sparsity_at", "parse_pair", "prune_encoder", "select_layers"]
