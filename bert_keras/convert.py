r"""Converts a pretrained BERT into a tf_keras checkpoint (and, optionally, a TF Hub SavedModel).

  python -m bert_keras.convert SOURCE OUTPUT [--saved_model]

SOURCE is anything `load_encoder` takes: a TF1 checkpoint folder, a Hugging Face folder,
or the name of a checkpoint Google released. OUTPUT (new or empty) gets:
  bert_keras_config.json, encoder.index, encoder.data-*, vocab.txt   (load_encoder reads it)
  saved_model/   with --saved_model: a reusable SavedModel for `hub.KerasLayer`, with the
                 TF Hub BERT inputs and outputs, and `vocab_file` / `do_lower_case` attributes.
The written files are read back and checked against the source before OUTPUT appears.
"""

import os
import shutil
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bert_keras import loading  # noqa: E402
from bert_keras.config import ConfigError  # noqa: E402
from bert_keras.download import DownloadError  # noqa: E402

flags.DEFINE_bool("saved_model", False, "Also export OUTPUT/saved_model, a TF Hub-style reusable SavedModel.")
flags.DEFINE_bool("lower_case", None, "Override the lower-casing the source implies.")
flags.DEFINE_string("checkpoint_dir", None, "Where named checkpoints are downloaded (default: checkpoints/).")
FLAGS = flags.FLAGS


def export_saved_model(pretrained, path):
    """A reusable SavedModel of the encoder, with TF Hub BERT's vocab_file and do_lower_case."""
    encoder = pretrained.encoder
    encoder.vocab_file = tf.saved_model.Asset(pretrained.vocab_file)
    encoder.do_lower_case = tf.Variable(pretrained.lower_case, trainable=False, name="do_lower_case")
    encoder.save(path, include_optimizer=False, save_format="tf")


def _sample_inputs(config):
    ids = np.arange(16, dtype=np.int32).reshape(2, 8) % config.vocab_size
    return {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}


def convert(source, output, *, saved_model=False, lower_case=None, checkpoint_dir=None):
    """Writes OUTPUT as described in the module docstring; OUTPUT must be new or empty."""
    if os.path.exists(output) and (not os.path.isdir(output) or os.listdir(output)):
        raise FileExistsError(f"{output}: exists and is not an empty folder; refusing to overwrite it")
    pretrained = loading.load_encoder(source, lower_case=lower_case, checkpoint_dir=checkpoint_dir)
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{os.path.basename(os.path.abspath(output))}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        loading.save_converted(pretrained, staging)
        x = _sample_inputs(pretrained.config)
        expected = pretrained.encoder(x, training=False)["sequence_output"].numpy()
        reloaded = loading.load_encoder(staging).encoder(x, training=False)["sequence_output"].numpy()
        np.testing.assert_array_equal(reloaded, expected, err_msg="the written checkpoint reads back differently")
        if saved_model:
            export_saved_model(pretrained, os.path.join(staging, "saved_model"))
            served = tf.saved_model.load(os.path.join(staging, "saved_model"))(x, training=False)
            np.testing.assert_allclose(served["sequence_output"].numpy(), expected, atol=1e-6,
                                       err_msg="the SavedModel computes differently")
        if os.path.isdir(output):
            os.rmdir(output)
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return pretrained


def main(argv):
    if len(argv) != 3:
        raise app.UsageError("usage: python -m bert_keras.convert SOURCE OUTPUT [--saved_model]")
    source, output = argv[1:]
    try:
        pretrained = convert(source, output, saved_model=FLAGS.saved_model,
                             lower_case=FLAGS.lower_case, checkpoint_dir=FLAGS.checkpoint_dir)
    except (loading.CheckpointError, ConfigError, DownloadError, FileExistsError) as e:
        sys.exit(f"error: {e}")
    c = pretrained.config
    print(f"Wrote {output}: {c.num_hidden_layers} layers, hidden {c.hidden_size}, "
          f"{pretrained.encoder.count_params():,} parameters, lower_case={pretrained.lower_case}"
          + (", saved_model/" if FLAGS.saved_model else ""))


if __name__ == "__main__":
    app.run(main)
