"""Writes original-format BERT checkpoints, as google-research/bert's run_pretraining.py does:
a TF1 graph with modeling.py's variable names, saved by tf.compat.v1.train.Saver."""

import json
import os

import numpy as np
import tensorflow as tf

# Small sizes that all differ (as modeling_test.py does), so a swapped axis cannot pass.
SMALL_CONFIG = {
    "vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 37, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 23, "type_vocab_size": 3,
    "initializer_range": 0.02,
}


def google_variable_shapes(c):
    """{name: shape} of modeling.py's BertModel, listed from its variable scopes."""
    H, I = c["hidden_size"], c["intermediate_size"]
    shapes = {
        "bert/embeddings/word_embeddings": [c["vocab_size"], H],
        "bert/embeddings/token_type_embeddings": [c["type_vocab_size"], H],
        "bert/embeddings/position_embeddings": [c["max_position_embeddings"], H],
        "bert/embeddings/LayerNorm/beta": [H],
        "bert/embeddings/LayerNorm/gamma": [H],
        "bert/pooler/dense/kernel": [H, H],
        "bert/pooler/dense/bias": [H],
    }
    for i in range(c["num_hidden_layers"]):
        p = f"bert/encoder/layer_{i}/"
        for dense, (n_in, n_out) in {"attention/self/query": (H, H), "attention/self/key": (H, H),
                                     "attention/self/value": (H, H), "attention/output/dense": (H, H),
                                     "intermediate/dense": (H, I), "output/dense": (I, H)}.items():
            shapes[p + dense + "/kernel"] = [n_in, n_out]
            shapes[p + dense + "/bias"] = [n_out]
        for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
            shapes[p + norm + "/beta"] = [H]
            shapes[p + norm + "/gamma"] = [H]
    return shapes


def random_values(shapes, seed):
    """Non-trivial values: biases and betas away from 0, gammas away from 1."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in shapes.items():
        if name.endswith("gamma"):
            values[name] = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("beta", "bias")):
            values[name] = rng.normal(0.0, 0.5, shape)
        else:
            values[name] = rng.normal(0.0, 0.3, shape)
    return {k: v.astype(np.float32) for k, v in values.items()}


def write_tf1_checkpoint(folder, config=SMALL_CONFIG, seed=0, values=None, with_training_state=True):
    """Writes bert_config.json, vocab.txt and bert_model.ckpt.*; returns the encoder values."""
    os.makedirs(folder, exist_ok=True)
    if values is None:
        values = random_values(google_variable_shapes(config), seed)
    saved = dict(values)
    if with_training_state:  # what run_pretraining.py leaves beside the encoder
        rng = np.random.default_rng(seed + 1)
        H = config["hidden_size"]
        heads = {"cls/predictions/output_bias": [config["vocab_size"]],
                 "cls/predictions/transform/dense/kernel": [H, H],
                 "cls/seq_relationship/output_weights": [2, H]}
        saved.update({k: rng.normal(size=s).astype(np.float32) for k, s in heads.items()})
        for name in list(saved):
            saved[name + "/adam_m"] = np.zeros_like(saved[name])
            saved[name + "/adam_v"] = np.ones_like(saved[name])
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.Variable(v, name=n) for n, v in saved.items()]
        if with_training_state:
            variables.append(tf.compat.v1.train.get_or_create_global_step())
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, os.path.join(folder, "bert_model.ckpt"), write_meta_graph=False)
    with open(os.path.join(folder, "bert_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [f"tok{i}" for i in range(config["vocab_size"] - len(tokens))]
    with open(os.path.join(folder, "vocab.txt"), "w") as f:
        f.write("\n".join(tokens) + "\n")
    return values
