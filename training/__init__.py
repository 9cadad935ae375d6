"""The fine-tuning machinery as a library: the run configuration, precision, optimizer, losses, the task
model, strategies, callbacks, the run folder, export, evaluation and the summary of runs.

No module here reads command-line flags: train.py turns its flags into a `RunConfig`, and everything
here takes that config (or plain arguments).
"""

import bert_keras  # noqa: F401  (first: it sets TensorFlow's environment, Keras 2 and oneDNN)
from training.config import ConfigError, RunConfig  # noqa: E402

__all__ = ["ConfigError", "RunConfig"]
