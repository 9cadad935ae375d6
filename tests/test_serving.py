"""bert_keras.serving: the exported SavedModel serves raw text for one-sentence, pair and regression tasks."""

import os

import numpy as np
import pytest
import tensorflow as tf

import bert_keras
import glue_tasks
from bert_keras.serving import export_text_classifier, xla_lengths


def saved_functions(path):
    """The function definitions in the SavedModel at `path`."""
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel.FromString(open(os.path.join(path, "saved_model.pb"), "rb").read())
    return proto.meta_graphs[0].graph_def.library.function


@pytest.mark.parametrize("task_name", ["sst2", "stsb"])
def test_export_serves_text_and_token_ids_like_the_keras_model(minilm_dir, tmp_path, task_name):
    """A small random encoder on the real vocabulary: the signatures agree with the Keras model."""
    task = glue_tasks.get_task(task_name)
    config = bert_keras.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=37)
    outputs = 1 if task.is_regression else len(task.labels)
    model = bert_keras.build_classifier(bert_keras.build_encoder(config), outputs, 0.0)
    preprocessor = bert_keras.BertPreprocessor(os.path.join(minilm_dir, "vocab.txt"), True, 32)
    path = str(tmp_path / "saved_model")
    export_text_classifier(path, model, preprocessor, task=task.glue_name, text_fields=task.text_fields,
                           label_names=task.labels)

    texts = [tf.constant(["A cat sat on the mat.", "It rains, and rains."]),
             tf.constant(["A cat sat.", "The sun shines."])][:len(task.text_fields)]
    expected = model(preprocessor(texts)).numpy()  # (2, outputs)
    loaded = tf.saved_model.load(path)
    by_text = loaded.signatures["serving_default"](**dict(zip(task.text_fields, texts)))
    by_ids = loaded.signatures["serve_token_ids"](**preprocessor(texts))
    assert loaded.task.numpy().decode() == task.glue_name
    for served in (by_text, by_ids):
        if task.is_regression:
            assert set(served) == {"score"}
            np.testing.assert_allclose(served["score"], expected[:, 0], atol=1e-5)
        else:
            np.testing.assert_allclose(served["logits"], expected, atol=1e-5)
            np.testing.assert_allclose(served["probabilities"], tf.nn.softmax(expected), atol=1e-6)
            assert [label.decode() for label in served["label"].numpy()] == [
                task.labels[i] for i in expected.argmax(-1)]

    # The classifier's weights, by name, and no Keras layer traces (functions no signature calls,
    # which made the export 3x as long): only the two signatures' functions and what they call.
    assert [(v.name, v.shape) for v in loaded.classifier_weights] == [(v.name, v.shape) for v in model.weights]
    for saved, weight in zip(loaded.classifier_weights, model.weights):
        np.testing.assert_array_equal(saved.numpy(), weight.numpy())
    functions = [f.signature.name for f in saved_functions(path)]
    assert not [name for name in functions if "call_and_return_conditional_losses" in name], functions


def test_xla_lengths():
    assert xla_lengths(128) == [16, 32, 64, 128]
    assert xla_lengths(100) == [16, 32, 64, 100]
    assert xla_lengths(16) == [16] and xla_lengths(10) == [10]


def test_an_xla_export_serves_what_the_keras_model_computes(minilm_dir, tmp_path):
    """Compiled by XLA, requests padded to 16 or 32 tokens (max_seq_length 40: 16, 32, 40): the same
    outputs as the Keras model's on the requests padded to 40, through both signatures."""
    task = glue_tasks.get_task("mrpc")
    config = bert_keras.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=37)
    model = bert_keras.build_classifier(bert_keras.build_encoder(config), 2, 0.0)
    preprocessor = bert_keras.BertPreprocessor(os.path.join(minilm_dir, "vocab.txt"), True, 40)
    path = str(tmp_path / "saved_model")
    export_text_classifier(path, model, preprocessor, task=task.glue_name, text_fields=task.text_fields,
                           label_names=task.labels, xla=True)
    assert any(f.attr["_XlaMustCompile"].b for f in saved_functions(path))

    loaded = tf.saved_model.load(path)
    long = "The quick brown fox jumps over the lazy dog, again and again, every single day of the week."
    for pair in ([["Short."], ["Shorter."]],  # 7 tokens: padded to 16
                 [["A cat sat on the mat.", long], ["It rains.", "Yes."]],  # 27: to 32
                 [[long], [long]]):  # 47, truncated to 40: to 40
        texts = [tf.constant(t) for t in pair]
        features = preprocessor(texts)  # (batch, 40)
        expected = model(features).numpy()
        by_text = loaded.signatures["serving_default"](sentence1=texts[0], sentence2=texts[1])
        by_ids = loaded.signatures["serve_token_ids"](**features)
        for served in (by_text, by_ids):
            np.testing.assert_allclose(served["logits"], expected, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_float32_copy_of_a_mixed_precision_model_computes_in_float32(policy):
    """What train.py exports after mixed-precision training: the same weights, float32 throughout, and
    the training policy left as it was."""
    import tf_keras as keras

    config = bert_keras.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=24)
    keras.mixed_precision.set_global_policy(policy)
    try:
        trained = bert_keras.build_classifier(bert_keras.build_encoder(config), 3, 0.1)
        copy = bert_keras.float32_copy(trained.get_weights(), config, 3)
        assert keras.mixed_precision.global_policy().name == policy
    finally:
        keras.mixed_precision.set_global_policy("float32")

    def compute_dtypes(model):  # of the layers that hold weights (the inputs are int32 ids)
        return {layer.compute_dtype for layer in model.submodules if isinstance(layer, keras.layers.Layer)
                and layer.weights}

    assert policy[6:] in compute_dtypes(trained) and compute_dtypes(copy) == {"float32"}
    for ours, theirs in zip(copy.weights, trained.weights, strict=True):
        assert ours.dtype == tf.float32 and ours.name == theirs.name
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    ids = {"input_word_ids": tf.constant([[2, 7, 9, 3]]), "input_mask": tf.ones([1, 4], tf.int32),
           "input_type_ids": tf.zeros([1, 4], tf.int32)}
    logits = copy(ids)
    assert logits.dtype == tf.float32
    # The float32 copy agrees with the trained model up to the training policy's 16-bit rounding.
    np.testing.assert_allclose(logits, tf.cast(trained(ids), tf.float32), atol=5e-2)
