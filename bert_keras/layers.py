"""The BERT pieces Keras has no layer for, each without prunable weights.

Every weight matrix that pruning targets lives in a plain `Dense` at the top of the
encoder's functional graph (see encoder.py); these layers only hold what pruning leaves
alone. They implement tfmot's `PrunableLayer` (with no prunable weights) so that
`prune_low_magnitude` accepts the whole encoder.
"""

import math

import tensorflow as tf
import tf_keras as keras
import tensorflow_model_optimization as tfmot

# Google's modeling.py adds this to the scores of masked keys (exp(-10000) is 0 in float32).
MASK_ADDER = -10000.0


# Both GELUs compute in float32 whatever the dtype policy: TensorFlow's bfloat16 GELU is ~2x slower
# than a float32 one with the two casts (benchmarks/kernel_speed.py), and the result
# is closer to float32's. Under float32 the casts are no-ops.
@keras.utils.register_keras_serializable(package="bert_keras")
def gelu(x):
    """GELU's exact erf form, as Hugging Face's BERT ("gelu")."""
    return tf.cast(tf.nn.gelu(tf.cast(x, tf.float32), approximate=False), x.dtype)


@keras.utils.register_keras_serializable(package="bert_keras")
def gelu_approximate(x):
    """GELU's tanh approximation, as Google's modeling.py trained BERT with."""
    return tf.cast(tf.nn.gelu(tf.cast(x, tf.float32), approximate=True), x.dtype)


def activation(name):
    """A Keras activation from a BertConfig.hidden_act name."""
    return {"gelu": gelu, "gelu_approximate": gelu_approximate}.get(name) or keras.activations.get(name)


class _NothingToPrune(tfmot.sparsity.keras.PrunableLayer):
    def get_prunable_weights(self):
        return []


@keras.utils.register_keras_serializable(package="bert_keras")
class PositionEmbedding(keras.layers.Layer, _NothingToPrune):
    """Learned absolute position embeddings, the first `seq` rows of a [max_length, H] table.

    Call on the word embeddings [batch, seq, H]; returns the position embeddings
    broadcast to [batch, seq, H].
    """

    def __init__(self, max_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            "embeddings", shape=[self.max_length, input_shape[-1]], initializer=self.initializer)
        super().build(input_shape)

    def call(self, inputs):
        seq_length = tf.shape(inputs)[1]
        return tf.broadcast_to(self.embeddings[:seq_length], tf.shape(inputs))  # (batch, seq, H)

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length,
                "initializer": keras.initializers.serialize(self.initializer)}


@keras.utils.register_keras_serializable(package="bert_keras")
class DotProductAttention(keras.layers.Layer, _NothingToPrune):
    """Multi-head scaled dot-product attention over projected queries, keys and values.

    Call on [query, key, value, input_mask]: the [batch, seq_q, H] queries and [batch, seq, H]
    keys and values (the outputs of the query/key/value Dense layers; seq_q <= seq, the first
    tokens' queries) and the int [batch, seq] mask (1 for a real token, 0 for padding). Returns
    the per-head contexts joined back to [batch, seq_q, H].
    Scores and softmax run in float32 whatever the compute dtype.
    """

    def __init__(self, num_heads, dropout_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.dropout_rate = dropout_rate
        self.dropout = keras.layers.Dropout(dropout_rate)

    def call(self, inputs, training=None):
        query, key, value, input_mask = inputs
        batch, query_seq, key_seq = tf.shape(query)[0], tf.shape(query)[1], tf.shape(key)[1]
        hidden = query.shape[-1]
        head_size = hidden // self.num_heads

        def split_heads(x, seq):  # (batch, seq, H) -> (batch, heads, seq, head_size)
            return tf.transpose(tf.reshape(x, [batch, seq, self.num_heads, head_size]), [0, 2, 1, 3])

        # Batched matmuls over (batch, heads), as nanoGPT: on a CPU the same products as einsums
        # ("bqnd,bknd->bnqk") take 1.3-1.6x as long, forward and backward (benchmarks/README.md).
        query = split_heads(query, query_seq)  # (batch, heads, seq_q, head_size)
        key, value = split_heads(key, key_seq), split_heads(value, key_seq)  # (batch, heads, seq_k, head_size)
        scores = tf.matmul(query, key, transpose_b=True)  # (batch, heads, seq_q, seq_k)
        scores = tf.cast(scores, tf.float32) * (1.0 / math.sqrt(head_size))
        # expand_dims, not [:, None, None, :]: TensorFlow Lite's builtin strided slice adds no axes.
        mask = tf.expand_dims(tf.expand_dims(tf.cast(input_mask, tf.float32), 1), 1)  # (batch, 1, 1, seq_k)
        scores += (1.0 - mask) * MASK_ADDER
        probs = tf.cast(tf.nn.softmax(scores, axis=-1), self.compute_dtype)
        probs = self.dropout(probs, training=training)
        context = tf.transpose(tf.matmul(probs, value), [0, 2, 1, 3])  # (batch, seq_q, heads, head_size)
        return tf.reshape(context, [batch, query_seq, hidden])

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads,
                "dropout_rate": self.dropout_rate}


@keras.utils.register_keras_serializable(package="bert_keras")
class BiasOnly(keras.layers.Layer, _NothingToPrune):
    """What a Dense layer whose every input was pruned away outputs: its bias, at every position.

    Call on [batch, seq, any]; returns the [units] bias broadcast to [batch, seq, units].
    The weight is named `bias`, as the Dense's it replaces.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.bias = self.add_weight("bias", shape=[self.units], initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        shape = tf.concat([tf.shape(inputs)[:-1], [self.units]], axis=0)
        return tf.broadcast_to(tf.cast(self.bias, self.compute_dtype), shape)

    def compute_output_shape(self, input_shape):
        return input_shape[:-1] + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.utils.register_keras_serializable(package="bert_keras")
class FirstToken(keras.layers.Layer, _NothingToPrune):
    """The hidden state of the first token ([CLS]): [batch, seq, H] -> [batch, H]."""

    def call(self, inputs):
        return inputs[:, 0, :]

    def compute_output_shape(self, input_shape):
        return input_shape[:1] + input_shape[2:]


@keras.utils.register_keras_serializable(package="bert_keras")
class LeadingTokens(keras.layers.Layer, _NothingToPrune):
    """The first `count` tokens' hidden states: [batch, seq, H] -> [batch, count, H] (all if seq < count)."""

    def __init__(self, count, **kwargs):
        super().__init__(**kwargs)
        self.count = count

    def call(self, inputs):
        return inputs[:, :self.count, :]

    def get_config(self):
        return {**super().get_config(), "count": self.count}
