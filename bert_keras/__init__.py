"""A BERT encoder in tf_keras (Keras 2), loaded from Google's or Hugging Face's checkpoints."""

import os

# TensorFlow's environment, set before anything here imports it; entry points import bert_keras
# before TensorFlow. Keras 2 (tf_keras) everywhere: tfmot and tensorflow-hub do not support Keras 3.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow runs oneDNN's CPU kernels by default only on CPUs with AVX-512 VNNI/BF16 or AMX; on AVX2
# ones they train faster than its Eigen kernels too (benchmarks/README.md). TF_ENABLE_ONEDNN_OPTS=0 opts out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from bert_keras.classifier import build_classifier, float32_copy  # noqa: E402
from bert_keras.config import BertConfig, ConfigError  # noqa: E402
from bert_keras.download import GOOGLE_CHECKPOINTS, DownloadError, download_checkpoint  # noqa: E402
from bert_keras.encoder import INPUT_NAMES, build_encoder, kernel_layer_names, with_output_range  # noqa: E402
from bert_keras.loading import CheckpointError, PretrainedEncoder, load_encoder, save_converted  # noqa: E402
from bert_keras.preprocessing import BertPreprocessor, PreprocessorError  # noqa: E402

__all__ = ["build_classifier", "float32_copy", "BertConfig", "ConfigError", "GOOGLE_CHECKPOINTS", "DownloadError",
           "download_checkpoint", "INPUT_NAMES", "build_encoder", "kernel_layer_names", "with_output_range", "CheckpointError",
           "PretrainedEncoder", "load_encoder", "save_converted", "BertPreprocessor", "PreprocessorError"]
