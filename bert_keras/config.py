"""BertConfig: the encoder's hyper-parameters, read from Google's or Hugging Face's JSON.

One name per quantity (Google's names); the two sources are translated here, at the
checkpoint boundary, and nowhere else.
"""

import dataclasses
import json
import os
from typing import Optional

# Activations by our name. Google's `modeling.py` calls the tanh approximation "gelu";
# Hugging Face calls the exact erf form "gelu" and the approximation "gelu_new".
ACTIVATIONS = ("gelu", "gelu_approximate", "relu", "swish", "tanh", "linear")
_GOOGLE_ACTIVATIONS = {"gelu": "gelu_approximate", "relu": "relu", "tanh": "tanh", "linear": "linear"}
_HF_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "relu": "relu",
    "silu": "swish",
    "swish": "swish",
    "tanh": "tanh",
    "linear": "linear",
}
# Keys of Google's bert_config.json that describe nothing the encoder uses.
_GOOGLE_IGNORED = {"directionality", "pooler_fc_size", "pooler_num_attention_heads",
                   "pooler_num_fc_layers", "pooler_size_per_head", "pooler_type"}


class ConfigError(ValueError):
    """A config file that is missing, unreadable or describes no valid BERT."""


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Hyper-parameters of a BERT encoder (Devlin et al., 2018), in Google's names."""

    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu_approximate"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    # A structurally pruned encoder (bert_keras.slicing): each layer's own number of attention heads
    # (of head_size each) and feed-forward width; None: every layer has the two above.
    layer_num_attention_heads: Optional[tuple[int, ...]] = None
    layer_intermediate_sizes: Optional[tuple[int, ...]] = None

    def __post_init__(self):
        for name in ("layer_num_attention_heads", "layer_intermediate_sizes"):  # JSON gives lists
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(f"hidden_act={self.hidden_act!r}: expected one of {ACTIVATIONS}")
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}={value!r}: expected a positive integer")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"hidden_size={self.hidden_size} is not a multiple of "
                              f"num_attention_heads={self.num_attention_heads}")
        for name, most in (("layer_num_attention_heads", self.num_attention_heads),
                           ("layer_intermediate_sizes", None)):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, tuple) or len(value) != self.num_hidden_layers or not all(
                    isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= (most or v) for v in value):
                bound = f"0 to {most}" if most else ">= 0"
                raise ConfigError(f"{name}={value!r}: expected {self.num_hidden_layers} integers (one a layer), "
                                  f"each {bound}")

    @property
    def head_size(self):
        return self.hidden_size // self.num_attention_heads

    def heads(self, layer):
        """Attention heads of transformer layer `layer` (0 for one whose attention was pruned away)."""
        return self.num_attention_heads if self.layer_num_attention_heads is None else \
            self.layer_num_attention_heads[layer]

    def intermediate(self, layer):
        """Feed-forward width of transformer layer `layer` (0 for one whose feed-forward was pruned away)."""
        return self.intermediate_size if self.layer_intermediate_sizes is None else \
            self.layer_intermediate_sizes[layer]

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values, source="config"):
        """Our own format (what `to_dict` wrote): every key must be a field."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ConfigError(f"{source}: unknown keys {unknown}; expected some of {sorted(fields)}")
        try:
            return cls(**values)
        except TypeError as e:
            raise ConfigError(f"{source}: {e}") from None
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    @classmethod
    def from_google_json(cls, path):
        """Google's `bert_config.json`, as released with the TF1 checkpoints."""
        values = _read_json(path)
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)} - _GOOGLE_IGNORED)
        if unknown:
            raise ConfigError(f"{path}: unknown keys {unknown}")
        values = {k: v for k, v in values.items() if k not in _GOOGLE_IGNORED}
        values["hidden_act"] = _translate_activation(values, _GOOGLE_ACTIVATIONS, path)
        return cls._from_source(values, path)

    @classmethod
    def from_hf_json(cls, path):
        """A Hugging Face `config.json` of a BERT model (`model_type` "bert")."""
        values = _read_json(path)
        if values.get("model_type", "bert") != "bert":
            raise ConfigError(f"{path}: model_type={values['model_type']!r}, expected 'bert'")
        if values.get("position_embedding_type", "absolute") != "absolute":
            raise ConfigError(f"{path}: position_embedding_type="
                              f"{values['position_embedding_type']!r}, expected 'absolute'")
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in fields}  # HF configs carry many generic keys
        values["hidden_act"] = _translate_activation(values, _HF_ACTIVATIONS, path)
        return cls._from_source(values, path)

    @classmethod
    def _from_source(cls, values, path):
        if "vocab_size" not in values:
            raise ConfigError(f"{path}: missing key 'vocab_size'")
        try:
            return cls(**values)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None


def _read_json(path):
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(values).__name__}")
    return values


def _translate_activation(values, table, path):
    act = values.get("hidden_act", "gelu")
    if act not in table:
        raise ConfigError(f"{path}: hidden_act={act!r}, expected one of {sorted(table)}")
    return table[act]
