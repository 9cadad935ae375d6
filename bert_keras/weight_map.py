"""Which checkpoint tensor fills which encoder weight: one table, two naming schemes.

`weight_map(config)` lists, for each encoder layer that holds weights, the names of
its weights in Google's TF1 scopes (without the leading `bert/`), in the order of the
layer's `get_weights()`. `hf_name` turns such a name into Hugging Face's, with the one
reshape the port needs (PyTorch `Linear` stores kernels transposed).
"""


def weight_map(config):
    """[(keras layer name, [TF1 names of its weights])] for an encoder of `config`."""
    table = [
        ("word_embeddings", ["embeddings/word_embeddings"]),
        ("position_embeddings", ["embeddings/position_embeddings"]),
        ("token_type_embeddings", ["embeddings/token_type_embeddings"]),
        ("embeddings_layer_norm", ["embeddings/LayerNorm/gamma", "embeddings/LayerNorm/beta"]),
    ]
    dense = lambda scope: [scope + "/kernel", scope + "/bias"]  # noqa: E731
    norm = lambda scope: [scope + "/gamma", scope + "/beta"]  # noqa: E731
    for i in range(config.num_hidden_layers):
        k, s = f"layer_{i}_", f"encoder/layer_{i}/"
        if config.heads(i):
            table += [(k + "attention_query", dense(s + "attention/self/query")),
                      (k + "attention_key", dense(s + "attention/self/key")),
                      (k + "attention_value", dense(s + "attention/self/value")),
                      (k + "attention_output", dense(s + "attention/output/dense"))]
        else:  # a structurally pruned layer without heads keeps the output bias alone (layers.BiasOnly)
            table.append((k + "attention_output", [s + "attention/output/dense/bias"]))
        table.append((k + "attention_layer_norm", norm(s + "attention/output/LayerNorm")))
        if config.intermediate(i):
            table += [(k + "intermediate", dense(s + "intermediate/dense")), (k + "output", dense(s + "output/dense"))]
        else:
            table.append((k + "output", [s + "output/dense/bias"]))
        table.append((k + "output_layer_norm", norm(s + "output/LayerNorm")))
    table.append(("pooler", dense("pooler/dense")))
    return table


def hf_name(tf1_name):
    """(Hugging Face name, whether to transpose) of a TF1 name from `weight_map`.

    'encoder/layer_3/attention/self/query/kernel' -> ('encoder.layer.3.attention.self.query.weight', True)
    'embeddings/LayerNorm/gamma' -> ('embeddings.LayerNorm.weight', False)
    """
    scope, leaf = tf1_name.replace("encoder/layer_", "encoder/layer/").rsplit("/", 1)
    scope = scope.replace("/", ".")
    if leaf in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        return f"{scope}.{leaf}.weight", False
    return f"{scope}.{ {'kernel': 'weight', 'gamma': 'weight', 'beta': 'bias', 'bias': 'bias'}[leaf] }", leaf == "kernel"
