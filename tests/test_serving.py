"""bert_keras.serving: the exported SavedModel serves raw text for one-sentence, pair and regression tasks."""

import os

import numpy as np
import pytest
import tensorflow as tf

import bert_keras
import glue_tasks
from bert_keras.serving import export_text_classifier


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
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel.FromString(open(os.path.join(path, "saved_model.pb"), "rb").read())
    functions = [f.signature.name for f in proto.meta_graphs[0].graph_def.library.function]
    assert not [name for name in functions if "call_and_return_conditional_losses" in name], functions
