"""load_encoder: a pretrained BERT encoder with its config, vocab and lower-casing.

Sources, told apart by the files in a folder:
- Google's TF1 release: `bert_config.json`, `bert_model.ckpt.*`, `vocab.txt`;
- a Hugging Face BERT: `config.json`, `model.safetensors`, `vocab.txt` (no torch needed);
- what `python -m bert_keras.convert` wrote: `bert_keras_config.json`, `encoder.*`, `vocab.txt`;
- or the name of a checkpoint Google released, downloaded once (download.py).

Every tensor is accounted for: optimizer slots, `global_step` and the pretraining heads
are skipped on purpose; anything else missing, unexpected or of the wrong shape is an
error that lists the names and shapes. Nothing falls back to random weights.
"""

import dataclasses
import glob
import json
import os

import numpy as np
import tensorflow as tf
import tf_keras as keras

from bert_keras import download
from bert_keras.config import BertConfig, ConfigError
from bert_keras.encoder import build_encoder
from bert_keras.weight_map import hf_name, weight_map

CONVERTED_CONFIG = "bert_keras_config.json"
CONVERTED_WEIGHTS = "encoder"  # tf_keras checkpoint prefix inside a converted folder
VOCAB = "vocab.txt"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or does not fit its config."""


@dataclasses.dataclass
class PretrainedEncoder:
    """An encoder with its weights, and what a tokenizer for it needs."""

    encoder: keras.Model
    config: BertConfig
    vocab_file: str
    lower_case: bool
    source: str


def load_encoder(source, *, lower_case=None, checkpoint_dir=None):
    """Loads the encoder in `source` (a folder, or a name in download.GOOGLE_CHECKPOINTS).

    lower_case: overrides what the source says (Hugging Face's tokenizer_config.json,
      our converted config) or, for Google's checkpoints, what the vocab shows (a cased
      vocab holds upper-case tokens).
    checkpoint_dir: where named checkpoints are downloaded (default: the repo's checkpoints/).
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        folder = source
    elif source in download.GOOGLE_CHECKPOINTS:
        folder = download.download_checkpoint(source, checkpoint_dir)
    else:
        raise CheckpointError(
            f"{source!r} is neither a folder nor the name of a checkpoint Google released "
            f"(one of: {', '.join(download.GOOGLE_CHECKPOINTS)})")
    try:
        loader = {"converted": _load_converted, "tf1": _load_tf1, "hf": _load_hf}[_detect_format(folder)]
        pretrained = loader(folder)
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    if lower_case is not None:
        pretrained.lower_case = bool(lower_case)
    pretrained.source = source
    return pretrained


def _detect_format(folder):
    has = lambda name: os.path.isfile(os.path.join(folder, name))  # noqa: E731
    if has(CONVERTED_CONFIG):
        return "converted"
    if has("bert_config.json"):
        return "tf1"
    if has("config.json"):
        return "hf"
    raise CheckpointError(
        f"{folder}: holds no BERT checkpoint (found {sorted(os.listdir(folder))}). Expected "
        "bert_config.json + bert_model.ckpt.* + vocab.txt (Google's TF1 release), "
        "config.json + model.safetensors + vocab.txt (Hugging Face), or "
        f"{CONVERTED_CONFIG} + {CONVERTED_WEIGHTS}.* + vocab.txt (python -m bert_keras.convert)")


# --- Google's TF1 checkpoints ---------------------------------------------------------

def _load_tf1(folder):
    config_file = os.path.join(folder, "bert_config.json")
    config = BertConfig.from_google_json(config_file)
    vocab_file = _checked_vocab(folder, config, config_file)
    tensors = read_tf1_checkpoint(os.path.join(folder, "bert_model.ckpt"))
    encoder = build_encoder(config)
    assign_weights(encoder, config, tensors, lambda name: ("bert/" + name, False),
                   f"{folder}/bert_model.ckpt (with {config_file})")
    return PretrainedEncoder(encoder, config, vocab_file, _vocab_is_uncased(vocab_file), folder)


def _skipped_tf1(name):
    """What a TF1 BERT checkpoint holds besides the encoder, skipped on purpose."""
    return (name == "global_step" or name.startswith("cls/")
            or name.endswith("/adam_m") or name.endswith("/adam_v"))


def read_tf1_checkpoint(prefix):
    """{variable name: array} of a TF1 checkpoint, without optimizer slots and heads."""
    if not os.path.isfile(prefix + ".index"):
        raise CheckpointError(f"{prefix}.index: no such file (expected a TF1 checkpoint "
                              f"written by google-research/bert)")
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = [n for n in reader.get_variable_to_shape_map() if not _skipped_tf1(n)]
        return {n: reader.get_tensor(n).astype(np.float32) for n in names}
    except (tf.errors.OpError, ValueError, IndexError) as e:  # IndexError: a truncated data file
        files = sorted(glob.glob(prefix + ".*"))
        message = getattr(e, "message", str(e)).splitlines()[0]
        raise CheckpointError(f"{prefix}: cannot read the checkpoint ({', '.join(files)}): {message}") from None


# --- Hugging Face folders --------------------------------------------------------------

def _load_hf(folder):
    config_file = os.path.join(folder, "config.json")
    config = BertConfig.from_hf_json(config_file)
    vocab_file = _checked_vocab(folder, config, config_file)
    weights_file = os.path.join(folder, "model.safetensors")
    tensors = read_safetensors(weights_file)
    prefix = "bert." if any(n.startswith("bert.") for n in tensors) else ""

    def source_name(name):
        hf, transpose = hf_name(name)
        return prefix + hf, transpose

    encoder = build_encoder(config)
    assign_weights(encoder, config, tensors, source_name, f"{weights_file} (with {config_file})")
    lower_case = _hf_lower_case(folder)
    if lower_case is None:
        lower_case = _vocab_is_uncased(vocab_file)
    return PretrainedEncoder(encoder, config, vocab_file, lower_case, folder)


def _skipped_hf(name):
    """Pretraining heads and the position-ids buffer: not weights of the encoder."""
    return name.startswith("cls.") or name.endswith("embeddings.position_ids")


def read_safetensors(path):
    """{tensor name: float32 array} of a Hugging Face BERT, LayerNorm names as today's."""
    if not os.path.isfile(path):
        others = [f for f in ("pytorch_model.bin", "tf_model.h5") if os.path.isfile(os.path.join(os.path.dirname(path), f))]
        hint = f" (found {others}: save the model with safe_serialization=True)" if others else ""
        raise CheckpointError(f"{path}: no such file{hint}")
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        raw = load_file(path)
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: cannot read the safetensors file: {e}") from None
    tensors = {}
    for name, value in raw.items():
        if _skipped_hf(name):
            continue
        if ".LayerNorm." in name:  # checkpoints older than transformers 4 say gamma/beta
            name = name.replace(".gamma", ".weight").replace(".beta", ".bias")
        tensors[name] = value.astype(np.float32)
    return tensors


def _hf_lower_case(folder):
    path = os.path.join(folder, "tokenizer_config.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f).get("do_lower_case")
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable JSON file ({e})") from None
    return None if value is None else bool(value)


# --- Our converted format ----------------------------------------------------------------

def _load_converted(folder):
    meta_file = os.path.join(folder, CONVERTED_CONFIG)
    try:
        with open(meta_file, encoding="utf-8") as f:
            meta = json.load(f)
        config = BertConfig.from_dict(meta["config"], source=meta_file)
        lower_case = bool(meta["lower_case"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{meta_file}: not a bert_keras config ({e!r})") from None
    vocab_file = _checked_vocab(folder, config, meta_file)
    prefix = os.path.join(folder, CONVERTED_WEIGHTS)
    if not os.path.isfile(prefix + ".index"):
        raise CheckpointError(f"{prefix}.index: no such file")
    encoder = build_encoder(config)
    try:
        encoder.load_weights(prefix).assert_consumed()
    except (tf.errors.OpError, ValueError, AssertionError) as e:
        message = getattr(e, "message", str(e)).splitlines()[0]
        raise CheckpointError(f"{prefix}: does not hold the encoder of {meta_file}: {message}") from None
    return PretrainedEncoder(encoder, config, vocab_file, lower_case, folder)


def save_converted(pretrained, folder):
    """Writes `pretrained` as a folder that load_encoder reads back."""
    os.makedirs(folder, exist_ok=True)
    pretrained.encoder.save_weights(os.path.join(folder, CONVERTED_WEIGHTS))
    with open(pretrained.vocab_file, "rb") as src, open(os.path.join(folder, VOCAB), "wb") as dst:
        dst.write(src.read())
    meta = {"config": pretrained.config.to_dict(), "lower_case": pretrained.lower_case,
            "converted_from": pretrained.source}
    with open(os.path.join(folder, CONVERTED_CONFIG), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)


# --- Shared checks ------------------------------------------------------------------------

def assign_weights(encoder, config, tensors, source_name, where):
    """Copies `tensors` into `encoder` after checking that each fits exactly one weight.

    source_name(tf1_name) -> (name in `tensors`, transpose?); `where` names the files.
    """
    missing, wrong_shape, assignments, used = [], [], [], set()
    for layer_name, names in weight_map(config):
        layer = encoder.get_layer(layer_name)
        values = []
        for tf1_name, weight in zip(names, layer.weights, strict=True):
            name, transpose = source_name(tf1_name)
            expected = tuple(weight.shape)
            if name not in tensors:
                missing.append(f"{name} {list(expected)}")
                continue
            used.add(name)
            value = tensors[name].T if transpose else tensors[name]
            if value.shape != expected:
                wrong_shape.append(f"{name}: {list(value.shape)} in the checkpoint, "
                                   f"{list(expected)} in the config{' (transposed)' if transpose else ''}")
            values.append(value)
        assignments.append((layer, values))
    unexpected = [f"{n} {list(tensors[n].shape)}" for n in sorted(set(tensors) - used)]
    if missing or unexpected or wrong_shape:
        parts = [f"{title} ({len(items)}):\n  " + "\n  ".join(items)
                 for title, items in (("missing", missing), ("unexpected", unexpected),
                                      ("wrong shape", wrong_shape)) if items]
        raise CheckpointError(f"{where}: the checkpoint does not match the config\n" + "\n".join(parts))
    for layer, values in assignments:
        layer.set_weights(values)


def _checked_vocab(folder, config, config_file):
    path = os.path.join(folder, VOCAB)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such file (the WordPiece vocabulary)")
    try:
        with open(path, encoding="utf-8") as f:
            size = len(f.read().splitlines())
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not a readable UTF-8 vocabulary ({e})") from None
    if size != config.vocab_size:  # a cut vocabulary would make most words [UNK]
        raise CheckpointError(f"{path}: {size} tokens, but {config_file} says vocab_size="
                              f"{config.vocab_size}; the vocabulary and the checkpoint must match")
    return path


def _vocab_is_uncased(vocab_file):
    """An uncased vocab has no upper-case token besides the [SPECIAL] ones."""
    with open(vocab_file, encoding="utf-8") as f:
        tokens = f.read().splitlines()
    return not any(t != t.lower() for t in tokens if not (t.startswith("[") and t.endswith("]")))
