"""A fine-tuned classifier exported as a SavedModel that serves raw text.

Signatures:
- `serving_default`: the task's text fields (tf.string [batch], named as tfds names them) ->
  `probabilities` float32 [batch, classes], `logits` float32 [batch, classes], `label_id` int32
  [batch] and `label` (the label's string as GLUE writes it) [batch]; for regression `score`
  float32 [batch].
- `serve_token_ids`: `input_word_ids`, `input_mask`, `input_type_ids` int32 [batch, seq] -> the same.

Exported with `xla=True`, the classifier runs compiled by XLA (`tf.function(jit_compile=True)`): one
fused program instead of ~1,000 operations dispatched one by one, which is most of a single
request's time on a CPU. XLA compiles once for each input shape, on its first call, so
`serving_default` pads each request to the first of `xla_lengths` that holds it (16, 32, 64, ...
up to the preprocessor's max_seq_length); `serve_token_ids` compiles for the shapes it is given.

The SavedModel also records `task`, `label_names` and `text_fields` as variables, so a reader can
check it is serving the task it expects, and `classifier_weights`, the classifier's weights.
Loading it needs TensorFlow and `import tensorflow_text` (for the in-graph WordPiece ops), nothing
of this project.
"""

import functools

import tensorflow as tf

from bert_keras.encoder import INPUT_NAMES


XLA_SHORTEST = 16  # tokens: the first padded length of an XLA export


def xla_lengths(max_seq_length):
    """The lengths an XLA export pads requests to: 16, 32, 64, ... and max_seq_length, the last."""
    lengths = [min(XLA_SHORTEST, max_seq_length)]
    while lengths[-1] < max_seq_length:
        lengths.append(min(2 * lengths[-1], max_seq_length))
    return lengths


class _TextClassifier(tf.Module):
    def __init__(self, classifier, preprocessor, task, text_fields, label_names, xla):
        super().__init__()
        # The weights, not the Keras model: tf.saved_model.save would have Keras trace every layer's
        # call into the SavedModel, functions no signature calls, at 3x the export's time. A partial
        # is not tracked; the signatures capture the weights, saved through this list.
        self.classifier_weights = list(classifier.weights)
        self._classifier = functools.partial(classifier, training=False)
        if xla:
            self._classifier = tf.function(self._classifier, jit_compile=True)
        self.preprocessor = preprocessor
        self.task = tf.Variable(task, trainable=False)
        self.text_fields = tf.Variable(list(text_fields), trainable=False)
        self.label_names = tf.Variable(list(label_names or []), dtype=tf.string, trainable=False)
        self._regression = not label_names

    def outputs(self, features):
        logits = tf.cast(self._classifier(features), tf.float32)  # (batch, classes)
        if self._regression:
            return {"score": logits[:, 0]}
        probabilities = tf.nn.softmax(logits, axis=-1)
        label_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"probabilities": probabilities, "logits": logits, "label_id": label_id,
                "label": tf.gather(self.label_names, label_id)}


def export_text_classifier(path, classifier, preprocessor, *, task, text_fields, label_names, xla=False):
    """Saves `classifier` (token ids -> logits [batch, classes]) behind `preprocessor` at `path`.

    label_names: the classes' strings, in id order; None or empty for regression (one output).
    xla: run the classifier compiled by XLA, requests padded to `xla_lengths`.
    """
    module = _TextClassifier(classifier, preprocessor, task, text_fields, label_names, xla)
    text_specs = [tf.TensorSpec([None], tf.string, name=field) for field in text_fields]
    id_specs = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in INPUT_NAMES}
    lengths = tf.constant(xla_lengths(preprocessor.max_seq_length), tf.int32)

    @tf.function(input_signature=text_specs)
    def serve_text(*texts):
        # Padded to the request's longest text, not to max_seq_length: a short sentence served
        # alone costs its own length (padding never changes a real token's output). Under XLA, to
        # the first of a few lengths that holds it: one compilation each.
        packed = module.preprocessor.pack_ragged(list(texts))
        length = None  # the longest text's
        if xla:
            longest = tf.cast(tf.reduce_max(packed["input_word_ids"].row_lengths()), tf.int32)
            length = tf.gather(lengths, tf.searchsorted(lengths, longest[None])[0])
        return module.outputs(module.preprocessor.pad(packed, length))  # (batch, length)

    @tf.function(input_signature=[id_specs])
    def serve_token_ids(features):
        return module.outputs(features)

    module.serve_text, module.serve_token_ids = serve_text, serve_token_ids
    tf.saved_model.save(module, path, signatures={"serving_default": serve_text,
                                                  "serve_token_ids": serve_token_ids})


class TextClassifier:
    """An export of `export_text_classifier`, loaded, as a Python call on lists of strings.

        classifier = bert_keras.TextClassifier("out/sst2/saved_model")
        classifier(["a wonderful film", "dull"])["label"]     # ["1", "0"]
        classifier(["A man plays."], ["Someone makes music."])  # a sentence-pair task: one list a field

    Returns NumPy arrays: `label` (the label strings), `label_id`, `probabilities` [n, classes] and
    `logits`; or `score` for regression. Needs TensorFlow and tensorflow_text, nothing else.
    """

    def __init__(self, path):
        import tensorflow_text  # noqa: F401 (the WordPiece ops of the preprocessor)

        self._module = tf.saved_model.load(path)
        self._serve = self._module.signatures["serving_default"]
        self.task = self._module.task.numpy().decode()
        self.text_fields = tuple(field.decode() for field in self._module.text_fields.numpy())
        self.labels = tuple(label.decode() for label in self._module.label_names.numpy()) or None

    def __call__(self, *texts):
        if len(texts) != len(self.text_fields):
            raise ValueError(f"{self.task} takes {len(self.text_fields)} list(s) of texts "
                             f"({', '.join(self.text_fields)}), got {len(texts)}")
        outputs = {k: v.numpy() for k, v in self._serve(**{
            field: tf.constant(list(values), tf.string) for field, values in zip(self.text_fields, texts)}).items()}
        if "label" in outputs:
            outputs["label"] = [label.decode() for label in outputs["label"]]
        return outputs
