"""The BERT encoder as one flat functional tf_keras model, with the TF Hub BERT interface.

Inputs: int32 [batch, seq] `input_word_ids`, `input_mask`, `input_type_ids`.
Outputs: `sequence_output` [batch, seq, H], `pooled_output` [batch, H] and
`encoder_outputs`, a list of one [batch, seq, H] per transformer layer.

Every weight matrix pruning may target (query, key, value, attention output,
intermediate, output, pooler) is a 2-D `Dense` kernel of the original checkpoint's shape,
at the top level of the graph, so that tfmot can wrap it through `clone_model` or
`prune_low_magnitude` and step it with `UpdatePruningStep`. Layer names follow Google's
variable scopes (`encoder/layer_3/attention/self/query` is the layer `layer_3_attention_query`);
weight_map.py lists them.

LayerNorm runs in float32 under mixed precision (and so every layer's output is float32),
softmax too (layers.py).
"""

import tf_keras as keras

from bert_keras import layers
from bert_keras.config import BertConfig

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
# The Dense layers of each transformer layer, whose kernels pruning targets.
LAYER_KERNELS = ("attention_query", "attention_key", "attention_value", "attention_output",
                 "intermediate", "output")


def kernel_layer_names(config: BertConfig, pooler=True):
    """Names of the Dense layers whose 2-D kernels pruning may target, in graph order."""
    names = [f"layer_{i}_{kind}" for i in range(config.num_hidden_layers) for kind in LAYER_KERNELS]
    return names + ["pooler"] if pooler else names


def build_encoder(config: BertConfig, name="bert_encoder"):
    """A randomly initialised encoder for `config`, under the current dtype policy."""
    H = config.hidden_size

    def init():  # a new instance per weight: Keras warns when one is reused
        return keras.initializers.TruncatedNormal(stddev=config.initializer_range)

    def dense(units, name, activation=None):
        return keras.layers.Dense(units, activation=activation, kernel_initializer=init(), name=name)

    def layer_norm(name):
        return keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, dtype="float32", name=name)

    inputs = {n: keras.Input(shape=(None,), dtype="int32", name=n) for n in INPUT_NAMES}

    # Embeddings: word + position + token type, then LayerNorm and dropout.
    words = keras.layers.Embedding(config.vocab_size, H, embeddings_initializer=init(),
                                   name="word_embeddings")(inputs["input_word_ids"])  # (batch, seq, H)
    positions = layers.PositionEmbedding(config.max_position_embeddings, initializer=init(),
                                         name="position_embeddings")(words)  # (batch, seq, H)
    types = keras.layers.Embedding(config.type_vocab_size, H, embeddings_initializer=init(),
                                   name="token_type_embeddings")(inputs["input_type_ids"])  # (batch, seq, H)
    x = keras.layers.Add(name="embeddings_sum")([words, positions, types])
    x = layer_norm("embeddings_layer_norm")(x)
    x = keras.layers.Dropout(config.hidden_dropout_prob, name="embeddings_dropout")(x)

    encoder_outputs = []
    for i in range(config.num_hidden_layers):
        p = f"layer_{i}_"
        # Self-attention: x = LayerNorm(x + Dropout(Dense(Attention(Q x, K x, V x))))
        query = dense(H, p + "attention_query")(x)  # (batch, seq, H)
        key = dense(H, p + "attention_key")(x)
        value = dense(H, p + "attention_value")(x)
        context = layers.DotProductAttention(
            config.num_attention_heads, config.attention_probs_dropout_prob,
            name=p + "attention")([query, key, value, inputs["input_mask"]])  # (batch, seq, H)
        attention = dense(H, p + "attention_output")(context)
        attention = keras.layers.Dropout(config.hidden_dropout_prob, name=p + "attention_dropout")(attention)
        x = keras.layers.Add(name=p + "attention_residual")([x, attention])
        x = layer_norm(p + "attention_layer_norm")(x)
        # Feed-forward: x = LayerNorm(x + Dropout(Dense(act(Dense(x)))))
        hidden = dense(config.intermediate_size, p + "intermediate",
                       activation=layers.activation(config.hidden_act))(x)  # (batch, seq, I)
        output = dense(H, p + "output")(hidden)  # (batch, seq, H)
        output = keras.layers.Dropout(config.hidden_dropout_prob, name=p + "output_dropout")(output)
        x = keras.layers.Add(name=p + "output_residual")([x, output])
        x = layer_norm(p + "output_layer_norm")(x)
        encoder_outputs.append(x)

    first_token = layers.FirstToken(name="first_token")(x)  # (batch, H)
    pooled = dense(H, "pooler", activation="tanh")(first_token)  # (batch, H)
    outputs = {"sequence_output": x, "pooled_output": pooled, "encoder_outputs": encoder_outputs}
    return keras.Model(inputs=inputs, outputs=outputs, name=name)
