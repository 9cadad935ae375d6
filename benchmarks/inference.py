r"""Serving raw text: the exported SavedModel against transformers' pipeline, same weights, same texts.

  HF_HUB_OFFLINE=1 python benchmarks/inference.py --init_checkpoint DIR --glue_dir DIR [--requests 200]

Our side: the encoder in --init_checkpoint (a Hugging Face BERT folder) with a seeded SST-2 head,
exported as train.py exports it (`export_text_classifier`), loaded back with tf.saved_model.load
and called through `serving_default` on raw strings. The peer: transformers' "text-classification"
pipeline (BertForSequenceClassification, PyTorch, its fast tokenizer) holding the same encoder,
pooler and head weights. Both serve float32 on all cores, in this one process, one after the other.

Two sets of texts: SST-2's dev sentences ("sst2", ~25 tokens), and the training sentences joined
16 at a time ("long", truncated by both sides at 128 tokens). Rows: batch-1 latency (median and
90th percentile over --requests single requests, after --warmup_requests) and batch-32 throughput
(examples/s over the whole set, after one untimed pass over its first batches). The two sides'
probabilities are compared on every text (`max_abs_probability_difference`). Prints one JSON line.
"""

import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as train.py: oneDNN's CPU kernels on AVX2 CPUs too
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401  (the SavedModel's WordPiece ops)
import tf_keras as keras  # noqa: E402

import bert_keras  # noqa: E402
import glue_tasks  # noqa: E402
from bert_keras.serving import export_text_classifier  # noqa: E402
from glue_tasks.readers import read_split  # noqa: E402

flags.DEFINE_string("init_checkpoint", None, "A Hugging Face BERT folder (both sides load it).", required=True)
flags.DEFINE_string("glue_dir", "../shared/glue", "A folder in the original GLUE layout (SST-2's texts).")
flags.DEFINE_integer("max_seq_length", 128, "Both sides truncate at this many tokens.")
flags.DEFINE_integer("batch_size", 32, "Batch size of the throughput rows.")
flags.DEFINE_integer("requests", 200, "Timed batch-1 requests per row.")
flags.DEFINE_integer("warmup_requests", 20, "Untimed batch-1 requests first.")
flags.DEFINE_integer("long_texts", 256, "How many 16-sentence texts the 'long' rows use.")
flags.DEFINE_integer("seed", 0, "Seeds the classifier head.")
FLAGS = flags.FLAGS


def texts_to_serve():
    """{"sst2": SST-2's dev sentences, "long": training sentences joined 16 at a time}."""
    task = glue_tasks.get_task("sst2")
    dev = list(read_split(task, "validation", FLAGS.glue_dir)["sentence"])
    train = list(read_split(task, "train", FLAGS.glue_dir)["sentence"])
    long = [" ".join(train[i:i + 16]) for i in range(0, 16 * FLAGS.long_texts, 16)]
    return {"sst2": dev, "long": long}


def export_ours(path):
    """The encoder + a seeded head, exported as train.py exports; returns the Keras model too."""
    task = glue_tasks.get_task("sst2")
    keras.utils.set_random_seed(FLAGS.seed)
    pretrained = bert_keras.load_encoder(FLAGS.init_checkpoint)
    model = bert_keras.build_classifier(pretrained.encoder, len(task.labels), 0.0)
    preprocessor = bert_keras.BertPreprocessor(pretrained.vocab_file, pretrained.lower_case, FLAGS.max_seq_length)
    export_text_classifier(path, model, preprocessor, task=task.glue_name, text_fields=task.text_fields,
                           label_names=task.labels)
    return model


def peer_pipeline(model):
    """transformers' text-classification pipeline with the same encoder and our model's head."""
    import torch
    import transformers
    from benchmarks import hf_peer

    peer = hf_peer.load_model(FLAGS.init_checkpoint, 2, is_regression=False)
    kernel, bias = model.get_layer("classifier").get_weights()  # [H, 2], [2]
    with torch.no_grad():
        peer.classifier.weight.copy_(torch.from_numpy(kernel.T))
        peer.classifier.bias.copy_(torch.from_numpy(bias))
    peer.eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(FLAGS.init_checkpoint)
    pipe = transformers.pipeline("text-classification", model=peer, tokenizer=tokenizer, device="cpu")
    versions = f"torch {torch.__version__}, transformers {transformers.__version__}"

    def classify(texts, batch_size):
        """P(class 1) of each text."""
        results = pipe(texts, batch_size=batch_size, truncation=True, max_length=FLAGS.max_seq_length, top_k=None)
        return np.array([next(r["score"] for r in result if r["label"] == "LABEL_1") for result in results])

    return classify, versions


def our_classifier(path):
    serve = tf.saved_model.load(path).signatures["serving_default"]

    def classify(texts, batch_size):
        out = [serve(sentence=tf.constant(texts[i:i + batch_size]))["probabilities"].numpy()[:, 1]
               for i in range(0, len(texts), batch_size)]
        return np.concatenate(out)

    return classify


def measure(classify, texts):
    """Latency of single requests (ms: median, p90), throughput in batches (examples/s), P(class 1) of each text."""
    singles = texts[:FLAGS.warmup_requests + FLAGS.requests]
    for text in singles[:FLAGS.warmup_requests]:
        classify([text], 1)
    latencies = []
    for text in singles[FLAGS.warmup_requests:]:
        start = time.perf_counter()
        classify([text], 1)
        latencies.append(time.perf_counter() - start)
    classify(texts[:4 * FLAGS.batch_size], FLAGS.batch_size)  # warm-up: the batch shapes
    start = time.perf_counter()
    probabilities = classify(texts, FLAGS.batch_size)
    seconds = time.perf_counter() - start
    return {"latency_ms_median": round(1000 * float(np.median(latencies)), 2),
            "latency_ms_p90": round(1000 * float(np.percentile(latencies, 90)), 2),
            "batch_examples_per_s": round(len(texts) / seconds, 1)}, probabilities


def main(argv):
    del argv
    texts = texts_to_serve()
    with tempfile.TemporaryDirectory() as tmp:
        model = export_ours(os.path.join(tmp, "saved_model"))
        ours = our_classifier(os.path.join(tmp, "saved_model"))
        peer, versions = peer_pipeline(model)
        rows = {}
        for name, batch in texts.items():
            our_row, our_p = measure(ours, batch)
            peer_row, peer_p = measure(peer, batch)
            rows[name] = {
                "texts": len(batch), "saved_model": our_row, "transformers_pipeline": peer_row,
                "latency_ratio_peer_over_ours": round(peer_row["latency_ms_median"] / our_row["latency_ms_median"], 2),
                "throughput_ratio_ours_over_peer": round(
                    our_row["batch_examples_per_s"] / peer_row["batch_examples_per_s"], 2),
                "max_abs_probability_difference": float(np.abs(our_p - peer_p).max())}
    print(json.dumps({"checkpoint": FLAGS.init_checkpoint, "batch_size": FLAGS.batch_size,
                      "max_seq_length": FLAGS.max_seq_length, "rows": rows,
                      "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                      "versions": f"TF {tf.__version__}, {versions}", "date": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    app.run(main)
