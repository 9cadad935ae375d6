"""BertConfig from Google's and Hugging Face's JSON, translated at the boundary."""

import json

import pytest

from bert_keras import BertConfig, ConfigError

GOOGLE = {"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
          "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
          "max_position_embeddings": 512, "num_attention_heads": 12, "num_hidden_layers": 12,
          "type_vocab_size": 2, "vocab_size": 30522}


def write(tmp_path, values, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(values))
    return str(path)


def test_google_gelu_is_the_tanh_approximation(tmp_path):
    config = BertConfig.from_google_json(write(tmp_path, GOOGLE))
    assert config.hidden_act == "gelu_approximate"
    assert config.layer_norm_eps == 1e-12 and config.head_size == 64


def test_hf_gelu_is_exact_and_gelu_new_approximate(tmp_path):
    hf = dict(GOOGLE, model_type="bert", architectures=["BertModel"], layer_norm_eps=1e-12, pad_token_id=0)
    assert BertConfig.from_hf_json(write(tmp_path, hf)).hidden_act == "gelu"
    assert BertConfig.from_hf_json(write(tmp_path, dict(hf, hidden_act="gelu_new"))).hidden_act == "gelu_approximate"


def test_round_trip_through_our_dict():
    config = BertConfig(vocab_size=99, hidden_size=32, num_attention_heads=4)
    assert BertConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("change, match", [
    ({"hidden_act": "mish"}, r"hidden_act='mish'"),
    ({"hidden_size": 100}, r"hidden_size=100 is not a multiple of num_attention_heads=12"),
    ({"num_hidden_layers": 0}, r"num_hidden_layers=0: expected a positive integer"),
    ({"hiden_size": 768}, r"unknown keys \['hiden_size'\]"),
])
def test_google_json_errors_name_the_file(tmp_path, change, match):
    path = write(tmp_path, dict(GOOGLE, **change), "bert_config.json")
    with pytest.raises(ConfigError, match=match) as e:
        BertConfig.from_google_json(path)
    assert path in str(e.value)


def test_missing_vocab_size(tmp_path):
    values = dict(GOOGLE)
    del values["vocab_size"]
    with pytest.raises(ConfigError, match=r"bert_config.json: missing key 'vocab_size'"):
        BertConfig.from_google_json(write(tmp_path, values, "bert_config.json"))


def test_hf_rejects_other_architectures(tmp_path):
    with pytest.raises(ConfigError, match=r"model_type='roberta', expected 'bert'"):
        BertConfig.from_hf_json(write(tmp_path, dict(GOOGLE, model_type="roberta")))
    with pytest.raises(ConfigError, match=r"position_embedding_type='relative_key'"):
        BertConfig.from_hf_json(write(tmp_path, dict(GOOGLE, model_type="bert", position_embedding_type="relative_key")))
