"""A BERT encoder in tf_keras (Keras 2), loaded from Google's or Hugging Face's checkpoints."""

import os

# TensorFlow's environment, set before anything here imports it; entry points import bert_keras
# before TensorFlow. Keras 2 (tf_keras) everywhere: tfmot and tensorflow-hub do not support Keras 3.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow runs oneDNN's CPU kernels by default only on CPUs with AVX-512 VNNI/BF16 or AMX; on AVX2
# ones they train faster than its Eigen kernels too (benchmarks/README.md). TF_ENABLE_ONEDNN_OPTS=0 opts out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def _import_tensorflow():
    """Imports TensorFlow; under TF_CPP_MIN_LOG_LEVEL=3 (no C++ logging, train.py's default) without the
    lines its native code writes to stderr before its logging is set up, which ignore that setting.
    An import error still shows: Python raises it after stderr is back."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        import tensorflow  # noqa: F401
        return
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        import tensorflow  # noqa: F401
        import tensorflow_text  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


_import_tensorflow()

from bert_keras.classifier import build_classifier, float32_copy  # noqa: E402
from bert_keras.config import BertConfig, ConfigError  # noqa: E402
from bert_keras.download import GOOGLE_CHECKPOINTS, DownloadError, download_checkpoint  # noqa: E402
from bert_keras.encoder import INPUT_NAMES, build_encoder, kernel_layer_names, with_output_range  # noqa: E402
from bert_keras.loading import CheckpointError, PretrainedEncoder, load_encoder, save_converted  # noqa: E402
from bert_keras.preprocessing import BertPreprocessor, PreprocessorError  # noqa: E402
from bert_keras.serving import TextClassifier  # noqa: E402

__all__ = ["build_classifier", "float32_copy", "BertConfig", "ConfigError", "GOOGLE_CHECKPOINTS", "DownloadError",
           "download_checkpoint", "INPUT_NAMES", "build_encoder", "kernel_layer_names", "with_output_range", "CheckpointError",
           "PretrainedEncoder", "load_encoder", "save_converted", "BertPreprocessor", "PreprocessorError", "TextClassifier"]
