"""The task model: a BERT encoder, dropout and a dense head on `pooled_output`, as BERT's run_classifier.py.

training.model compiles it for fine-tuning; training.export rebuilds it to restore a checkpoint.
`float32_copy` gives the model that is exported: float32 whatever the training policy, no dropout, no wrappers.
"""

import tf_keras as keras

from bert_keras.encoder import INPUT_NAMES, build_encoder, with_output_range


def build_classifier(encoder, num_outputs, dropout_rate, name="bert_classifier"):
    """Token ids -> float32 logits [batch, num_outputs] (one output: a regression score).

    The classifier holds `encoder`'s layers and weights (shared, pruning wrappers included) in a
    graph whose last transformer layer computes [CLS] alone, the one token the head reads
    (encoder.with_output_range): the same logits for a sixth less work on a 6-layer encoder.
    """
    features = {n: keras.Input((None,), dtype="int32", name=n) for n in INPUT_NAMES}
    pooled = with_output_range(encoder, 1)(features)["pooled_output"]  # (batch, H)
    pooled = keras.layers.Dropout(dropout_rate, name="classifier_dropout")(pooled)
    logits = keras.layers.Dense(  # float32 logits under any policy: a numerically safe loss
        num_outputs, dtype="float32", name="classifier",
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))(pooled)
    return keras.Model(features, logits, name=name)


def float32_copy(weights, config, num_outputs, name="bert_classifier"):
    """A float32 classifier for `config` holding `weights` (a trained model's, wrappers stripped)."""
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        model = build_classifier(build_encoder(config), num_outputs, 0.0, name)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    model.set_weights(weights)
    return model
