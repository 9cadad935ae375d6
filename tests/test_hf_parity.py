"""The real MiniLM weights: our encoder against Hugging Face transformers' PyTorch BertModel."""

import os

import numpy as np
import pytest

import bert_keras
from conftest import SHARED


def real_pairs(n=8):
    """Sentence pairs from MRPC's dev set (split on tabs only: GLUE text has bare quotes)."""
    with open(os.path.join(SHARED, "glue", "MRPC", "dev.tsv"), encoding="utf-8-sig") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return [(r[3], r[4]) for r in rows[:n]]


@pytest.fixture(scope="module")
def torch_model(minilm_dir):
    import torch
    import transformers

    torch.set_num_threads(2)
    model = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    tokenizer = transformers.BertTokenizer.from_pretrained(minilm_dir)
    return model, tokenizer


def test_minilm_matches_transformers(minilm_dir, torch_model):
    import torch

    model, tokenizer = torch_model
    pretrained = bert_keras.load_encoder(minilm_dir)
    assert pretrained.config.hidden_act == "gelu"  # Hugging Face's "gelu" is the exact erf form
    assert pretrained.lower_case is True
    first, second = zip(*real_pairs())
    batch = tokenizer(list(first), list(second), padding=True, return_tensors="np")
    assert batch["attention_mask"].min() == 0  # padding is exercised
    inputs = {"input_word_ids": batch["input_ids"].astype(np.int32),
              "input_mask": batch["attention_mask"].astype(np.int32),
              "input_type_ids": batch["token_type_ids"].astype(np.int32)}
    with torch.no_grad():
        ref = model(**{k: torch.from_numpy(v) for k, v in batch.items()}, output_hidden_states=True)
    ours = pretrained.encoder(inputs, training=False)

    real = batch["attention_mask"].astype(bool)
    seq_error = np.abs(ours["sequence_output"].numpy() - ref.last_hidden_state.numpy())[real].max()
    pooled_error = np.abs(ours["pooled_output"].numpy() - ref.pooler_output.numpy()).max()
    layer_errors = [np.abs(o.numpy() - r.numpy())[real].max()
                    for o, r in zip(ours["encoder_outputs"], ref.hidden_states[1:], strict=True)]
    print(f"max abs error: sequence {seq_error:.2e}, pooled {pooled_error:.2e}, layers {max(layer_errors):.2e}")
    assert seq_error < 1e-4 and pooled_error < 1e-4 and max(layer_errors) < 1e-4


def test_hf_bert_prefix_and_heads(tmp_path, minilm_dir):
    """A BertForPreTraining-style file: `bert.` prefix and `cls.` heads (skipped)."""
    from safetensors.numpy import load_file, save_file

    tensors = {"bert." + k: v for k, v in load_file(os.path.join(minilm_dir, "model.safetensors")).items()}
    tensors["cls.predictions.bias"] = np.zeros(30522, np.float32)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    for name in ("config.json", "vocab.txt"):
        (tmp_path / name).write_bytes(open(os.path.join(minilm_dir, name), "rb").read())
    ids = np.array([[101, 7592, 2088, 102]], np.int32)
    inputs = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    a = bert_keras.load_encoder(str(tmp_path)).encoder(inputs)["pooled_output"].numpy()
    b = bert_keras.load_encoder(minilm_dir).encoder(inputs)["pooled_output"].numpy()
    np.testing.assert_array_equal(a, b)


def test_hf_missing_tensor_is_an_error(tmp_path, minilm_dir):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(os.path.join(minilm_dir, "model.safetensors"))
    del tensors["encoder.layer.5.output.dense.weight"]
    save_file(tensors, str(tmp_path / "model.safetensors"))
    for name in ("config.json", "vocab.txt"):
        (tmp_path / name).write_bytes(open(os.path.join(minilm_dir, name), "rb").read())
    with pytest.raises(bert_keras.CheckpointError,
                       match=r"model.safetensors \(with .*config.json\): the checkpoint does not match(.|\n)*"
                             r"missing \(1\):\n  encoder.layer.5.output.dense.weight \[1536, 384\]"):
        bert_keras.load_encoder(str(tmp_path))


def test_hf_corrupt_file_is_named(tmp_path, minilm_dir):
    for name in ("config.json", "vocab.txt"):
        (tmp_path / name).write_bytes(open(os.path.join(minilm_dir, name), "rb").read())
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(bert_keras.CheckpointError, match=r"model.safetensors: cannot read"):
        bert_keras.load_encoder(str(tmp_path))
