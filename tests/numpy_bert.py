"""An independent float64 NumPy BERT, written from the paper's equations (Devlin et al.,
2018; Vaswani et al., 2017), reading Google's TF1 variable names directly.

It shares no code with bert_keras, so that a mistake there cannot hide here.
"""

import math

import numpy as np


def gelu(x, approximate):
    if approximate:  # Google's modeling.py
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def bert_forward(w, num_layers, num_heads, word_ids, mask, type_ids, approximate_gelu=True):
    """w: {TF1 name (with 'bert/'): array}. Returns (sequence_output, pooled_output, all layers)."""
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    g = lambda name: w["bert/" + name]  # noqa: E731
    batch, seq = word_ids.shape
    x = (g("embeddings/word_embeddings")[word_ids]
         + g("embeddings/position_embeddings")[:seq][None]
         + g("embeddings/token_type_embeddings")[type_ids])
    x = layer_norm(x, g("embeddings/LayerNorm/gamma"), g("embeddings/LayerNorm/beta"))
    hidden = x.shape[-1]
    d = hidden // num_heads
    adder = (1.0 - mask[:, None, None, :].astype(np.float64)) * -10000.0
    layers = []
    for i in range(num_layers):
        s = f"encoder/layer_{i}/"
        dense = lambda v, scope: v @ g(scope + "/kernel") + g(scope + "/bias")  # noqa: E731
        heads = lambda v: v.reshape(batch, seq, num_heads, d).transpose(0, 2, 1, 3)  # noqa: E731
        q = heads(dense(x, s + "attention/self/query"))
        k = heads(dense(x, s + "attention/self/key"))
        v = heads(dense(x, s + "attention/self/value"))
        probs = softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + adder)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        x = layer_norm(x + dense(context, s + "attention/output/dense"),
                       g(s + "attention/output/LayerNorm/gamma"), g(s + "attention/output/LayerNorm/beta"))
        h = gelu(dense(x, s + "intermediate/dense"), approximate_gelu)
        x = layer_norm(x + dense(h, s + "output/dense"),
                       g(s + "output/LayerNorm/gamma"), g(s + "output/LayerNorm/beta"))
        layers.append(x)
    pooled = np.tanh(x[:, 0] @ g("pooler/dense/kernel") + g("pooler/dense/bias"))
    return x, pooled, layers
