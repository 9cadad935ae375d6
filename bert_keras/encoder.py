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

`with_output_range` wires the same layers into a second graph whose last layer computes only the
first tokens (the classifier's [CLS]); `connect` is that wiring, shared by both.

A structurally pruned config (BertConfig.layer_num_attention_heads / layer_intermediate_sizes) gives each
layer its own number of heads and feed-forward width. A layer with no heads has no query, key, value or
attention: its `attention_output` is a `layers.BiasOnly`, what a Dense whose inputs are all gone still
adds; the same for the feed-forward `output` of a layer with no intermediate neurons.
"""

import re

import tf_keras as keras

from bert_keras import layers
from bert_keras.config import BertConfig

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
# The Dense layers of each transformer layer, whose kernels pruning targets.
LAYER_KERNELS = ("attention_query", "attention_key", "attention_value", "attention_output",
                 "intermediate", "output")
# Every layer of a transformer layer `layer_{i}_{part}`, kernels or not.
LAYER_PARTS = LAYER_KERNELS + ("attention", "attention_dropout", "attention_residual", "attention_layer_norm",
                               "output_dropout", "output_residual", "output_layer_norm")
_TRANSFORMER_LAYER = re.compile(r"layer_\d+_attention_layer_norm")


def kernel_layer_names(config: BertConfig, pooler=True):
    """Names of the Dense layers whose 2-D kernels pruning may target, in graph order."""
    names = []
    for i in range(config.num_hidden_layers):
        kinds = LAYER_KERNELS[:4] if config.heads(i) else ()  # query, key, value, attention output
        kinds += LAYER_KERNELS[4:] if config.intermediate(i) else ()  # intermediate, output
        names += [f"layer_{i}_{kind}" for kind in kinds]
    return names + ["pooler"] if pooler else names


def build_encoder(config: BertConfig, name="bert_encoder", output_range=None):
    """A randomly initialised encoder for `config`, under the current dtype policy.

    output_range: None, or compute the last transformer layer for the first `output_range` tokens
      only (its keys and values still cover every token): `sequence_output` and the last of
      `encoder_outputs` are then [batch, output_range, H], `pooled_output` is unchanged. A
      classifier reads [CLS] alone, so this spares it most of a layer's work, as in tensorflow/models'
      BertEncoderV2(output_range=1).
    """
    H = config.hidden_size

    def init():  # a new instance per weight: Keras warns when one is reused
        return keras.initializers.TruncatedNormal(stddev=config.initializer_range)

    def dense(units, name, activation=None):
        return keras.layers.Dense(units, activation=activation, kernel_initializer=init(), name=name)

    def layer_norm(name):
        return keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, dtype="float32", name=name)

    def dropout(name):
        return keras.layers.Dropout(config.hidden_dropout_prob, name=name)

    # Every layer of the graph, by name, in graph order (connect() wires them).
    made = [
        keras.layers.Embedding(config.vocab_size, H, embeddings_initializer=init(), name="word_embeddings"),
        layers.PositionEmbedding(config.max_position_embeddings, initializer=init(), name="position_embeddings"),
        keras.layers.Embedding(config.type_vocab_size, H, embeddings_initializer=init(),
                               name="token_type_embeddings"),
        keras.layers.Add(name="embeddings_sum"), layer_norm("embeddings_layer_norm"), dropout("embeddings_dropout"),
    ]
    for i in range(config.num_hidden_layers):
        p, heads, width = f"layer_{i}_", config.heads(i), config.intermediate(i)
        attention_width = heads * config.head_size
        if heads:
            made += [
                dense(attention_width, p + "attention_query"), dense(attention_width, p + "attention_key"),
                dense(attention_width, p + "attention_value"),
                layers.DotProductAttention(heads, config.attention_probs_dropout_prob, name=p + "attention"),
                dense(H, p + "attention_output")]
        else:
            made.append(layers.BiasOnly(H, name=p + "attention_output"))
        made += [dropout(p + "attention_dropout"),
                 keras.layers.Add(name=p + "attention_residual"), layer_norm(p + "attention_layer_norm")]
        if width:
            made += [dense(width, p + "intermediate", activation=layers.activation(config.hidden_act)),
                     dense(H, p + "output")]
        else:
            made.append(layers.BiasOnly(H, name=p + "output"))
        made += [dropout(p + "output_dropout"),
                 keras.layers.Add(name=p + "output_residual"), layer_norm(p + "output_layer_norm")]
    made += [layers.FirstToken(name="first_token"), dense(H, "pooler", activation="tanh")]
    return connect({layer.name: layer for layer in made}, name, output_range)


def with_output_range(encoder, output_range):
    """`encoder` (from build_encoder or load_encoder, pruning wrappers and all) as a new functional model
    over the very same layers and weights, its last layer computed for the first `output_range` tokens."""
    by_name = {(layer.layer if isinstance(layer, keras.layers.Wrapper) else layer).name: layer
               for layer in encoder.layers}
    return connect(by_name, encoder.name, output_range)


def connect(by_name, name, output_range=None):
    """The encoder's functional graph over its layers (`by_name`: build_encoder's names, a layer each)."""
    num_layers = sum(1 for n in by_name if _TRANSFORMER_LAYER.fullmatch(n))
    inputs = {n: keras.Input(shape=(None,), dtype="int32", name=n) for n in INPUT_NAMES}

    # Embeddings: word + position + token type, then LayerNorm and dropout.
    words = by_name["word_embeddings"](inputs["input_word_ids"])  # (batch, seq, H)
    positions = by_name["position_embeddings"](words)  # (batch, seq, H)
    types = by_name["token_type_embeddings"](inputs["input_type_ids"])  # (batch, seq, H)
    x = by_name["embeddings_sum"]([words, positions, types])
    x = by_name["embeddings_layer_norm"](x)
    x = by_name["embeddings_dropout"](x)

    encoder_outputs = []
    for i in range(num_layers):
        layer = {kind: by_name.get(f"layer_{i}_{kind}") for kind in LAYER_PARTS}
        # The last layer's queries: every token, or the first output_range (keys and values: every token).
        queries = x
        if output_range is not None and i == num_layers - 1:
            queries = layers.LeadingTokens(output_range, name=f"layer_{i}_output_range")(x)  # (batch, q, H)
        # Self-attention: x = LayerNorm(x + Dropout(Dense(Attention(Q x, K x, V x))))
        if layer["attention"] is not None:
            query = layer["attention_query"](queries)  # (batch, q, heads * head_size)
            key = layer["attention_key"](x)  # (batch, seq, heads * head_size)
            value = layer["attention_value"](x)
            context = layer["attention"]([query, key, value, inputs["input_mask"]])  # (batch, q, heads * head_size)
            attention = layer["attention_dropout"](layer["attention_output"](context))  # (batch, q, H)
        else:  # no heads left: the output Dense's bias alone
            attention = layer["attention_dropout"](layer["attention_output"](queries))
        x = layer["attention_layer_norm"](layer["attention_residual"]([queries, attention]))
        # Feed-forward: x = LayerNorm(x + Dropout(Dense(act(Dense(x)))))
        hidden = x if layer["intermediate"] is None else layer["intermediate"](x)  # (batch, q, I)
        output = layer["output_dropout"](layer["output"](hidden))  # (batch, q, H)
        x = layer["output_layer_norm"](layer["output_residual"]([x, output]))
        encoder_outputs.append(x)

    pooled = by_name["pooler"](by_name["first_token"](x))  # (batch, H)
    outputs = {"sequence_output": x, "pooled_output": pooled, "encoder_outputs": encoder_outputs}
    return keras.Model(inputs=inputs, outputs=outputs, name=name)
