r"""Serving raw text: train.py's SavedModel against transformers' pipeline, same weights, same texts.

  HF_HUB_OFFLINE=1 python benchmarks/serving_speed.py --init_checkpoint DIR --glue_dir DIR [--requests 200]
      [--structured_sparsities 0.5,0.75] [--encoders RUN/encoder,...] [--tflite] [--xla]

Our side: the SST-2 task model train.py builds on the encoder in --init_checkpoint (a Hugging Face
BERT folder), its head seeded, exported by `training.export.export` (the export of train.py and
evaluate.py), loaded back with tf.saved_model.load and called through `serving_default` on raw
strings. The peer: transformers' "text-classification" pipeline (BertForSequenceClassification,
PyTorch, its fast tokenizer) holding the same encoder, pooler and head weights. Both serve float32
on all cores, in this one process: our models first, the peer after them.

Two sets of texts: SST-2's dev sentences ("sst2"), and the training sentences joined 16 at a time
("long", truncated by both sides at --max_seq_length). Rows: batch-1 latency (median and 90th
percentile over --requests single requests, after --warmup_requests) and batch throughput
(examples/s over the whole set, after one untimed pass over its first batches). The two sides'
probabilities are compared on every text (`max_abs_probability_difference`). With
--structured_sparsities, our model with that share of each layer's heads and neurons sliced out
(`--pruning_structure heads_and_neurons`'s export) is served on the same texts too, interleaved with
our dense one (in blocks of 20 requests or 4 batches, the order rotating: a slower minute of a shared
machine slows every model alike), its speed-up over it, and each model's parameters and SavedModel
bytes. --encoders does the same for encoders a structured train.py run sliced (its `encoder/` folder,
each layer with the heads and neurons the run kept): an SST-2 model on each, its head seeded, so that
a run of any task, its layers of unequal widths included, is timed on the same texts. With --tflite,
each model's TensorFlow Lite files (training.tflite: float, dynamic range, full integer) and their
batch-1 latency on the token ids of the SST-2 rows and of the 128-token ones ("long") against the
SavedModel's `serve_token_ids` on the same ids (the tokenizer left out on both sides), and against
the dense model's file of the same kind (`speedup_over_dense`). With --xla, each of our
models is also exported with its classifier compiled by XLA (`train.py --export_xla`) and served
interleaved with the others. Every model first serves the batch-1 requests and the batched set once,
untimed: an XLA export compiles for each shape on its first call. Prints one JSON line.
"""

import gzip
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root
from benchmarks import common  # noqa: E402  (first: TensorFlow's environment)

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401  (the SavedModel's WordPiece ops)
import tf_keras as keras  # noqa: E402

import bert_keras  # noqa: E402
import glue_tasks  # noqa: E402
from pruning_schedules import structured  # noqa: E402
from training import export, tflite  # noqa: E402
from training.config import RunConfig  # noqa: E402
from training.model import build_training_model  # noqa: E402
from training.optimization import plan_steps  # noqa: E402

FLAGS = flags.FLAGS
TASK = glue_tasks.get_task("sst2")


def texts_to_serve():
    """{"sst2": SST-2's dev sentences, "long": training sentences joined 16 at a time}."""
    dev = list(glue_tasks.read_split(TASK, "validation", FLAGS.glue_dir)["sentence"])
    train = list(glue_tasks.read_split(TASK, "train", FLAGS.glue_dir)["sentence"])
    long = [" ".join(train[i:i + 16]) for i in range(0, 16 * FLAGS.long_texts, 16)]
    return {"sst2": dev, "long": long}


def export_ours(path, structured_sparsity=0.0, xla_path=None, encoder=None):
    """train.py's SST-2 model on the encoder, its head seeded, exported as train.py exports; the float32 copy.

    structured_sparsity > 0: that share of each layer's heads and neurons masked (the smallest norms of
    the pretrained weights, as a structured run's first update ranks them) and sliced out by the export.
    encoder: a sliced encoder folder to build on instead of --init_checkpoint's.
    """
    pruning = {}
    if structured_sparsity:
        pruning = dict(target_sparsity=structured_sparsity, pruning_structure="heads_and_neurons",
                       pruning_begin_step=0, pruning_end_step=1, pruning_frequency=1)
    config = RunConfig(task=TASK.tfds_name, init_checkpoint=encoder or FLAGS.init_checkpoint,
                       max_seq_length=FLAGS.max_seq_length, seed=FLAGS.seed, **pruning)
    keras.utils.set_random_seed(config.seed)
    pretrained = bert_keras.load_encoder(config.init_checkpoint)
    trained = build_training_model(config, pretrained, TASK, plan_steps(config, steps_per_epoch=1))
    if structured_sparsity:
        structured.update_masks(trained.model, structured_sparsity)
    if xla_path:  # the same model, its classifier compiled by XLA (train.py --export_xla)
        export.export(xla_path, trained.model, pretrained, TASK, config.max_seq_length, xla=True)
    return export.export(path, trained.model, pretrained, TASK, config.max_seq_length)[0]


def peer_pipeline(model):
    """transformers' text-classification pipeline with the same encoder and our model's head."""
    import torch
    import transformers

    from benchmarks import peer

    pipeline_model = peer.load_model(FLAGS.init_checkpoint, TASK.num_outputs, is_regression=False)
    kernel, bias = model.get_layer("classifier").get_weights()  # [H, 2], [2]
    with torch.no_grad():
        pipeline_model.classifier.weight.copy_(torch.from_numpy(kernel.T))
        pipeline_model.classifier.bias.copy_(torch.from_numpy(bias))
    pipeline_model.eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(FLAGS.init_checkpoint)
    pipe = transformers.pipeline("text-classification", model=pipeline_model, tokenizer=tokenizer, device="cpu")

    def classify(texts, batch_size):
        """P(class 1) of each text."""
        results = pipe(texts, batch_size=batch_size, truncation=True, max_length=FLAGS.max_seq_length, top_k=None)
        return np.array([next(r["score"] for r in result if r["label"] == "LABEL_1") for result in results])

    return classify


def our_classifier(path):
    serve = tf.saved_model.load(path).signatures["serving_default"]

    def classify(texts, batch_size):
        out = [serve(sentence=tf.constant(texts[i:i + batch_size]))["probabilities"].numpy()[:, 1]
               for i in range(0, len(texts), batch_size)]
        return np.concatenate(out)

    return classify


def saved_model_bytes(path):
    footprint = export.footprint(path, [])
    return {"saved_model_bytes": footprint["saved_model_bytes"], "saved_model_gzip_bytes":
            footprint["saved_model_gzip_bytes"]}


# Models take turns in blocks of this many requests (batches): a model's first call after another's finds the
# caches holding the other's weights, a cost that serving one model does not pay and that would fall hardest
# on the smallest model, whose weights could stay in cache.
REQUEST_BLOCK, BATCH_BLOCK = 20, 4


def measure(classifiers, texts):
    """Each of `classifiers` ({name: classify}) on `texts`, interleaved: batch-1 latency (ms: median, p90)
    and throughput in batches (examples/s), the models taking turns block by block in rotating order, so
    that a slower minute of a shared machine slows every model alike.
    Returns ({name: row}, {name: P(class 1) of each text})."""
    requests = texts[:FLAGS.warmup_requests + FLAGS.requests]
    for classify in classifiers.values():  # warm-up: every shape the rows will meet
        for text in requests:
            classify([text], 1)
        classify(texts, FLAGS.batch_size)
    latencies, _ = interleaved(classifiers, [[text] for text in requests[FLAGS.warmup_requests:]], 1, REQUEST_BLOCK)
    batches = [texts[i:i + FLAGS.batch_size] for i in range(0, len(texts), FLAGS.batch_size)]
    seconds, probabilities = interleaved(classifiers, batches, FLAGS.batch_size, BATCH_BLOCK)
    rows = {name: {"latency_ms_median": round(1000 * float(np.median(latencies[name])), 2),
                   "latency_ms_p90": round(1000 * float(np.percentile(latencies[name], 90)), 2),
                   "batch_examples_per_s": round(len(texts) / sum(seconds[name]), 1)} for name in classifiers}
    return rows, {name: np.concatenate(p) for name, p in probabilities.items()}


def interleaved(classifiers, inputs, batch_size, block):
    """({name: seconds of each input}, {name: its outputs}): the inputs in blocks of `block`, each block
    classified by every model in turn, the first model of the turn rotating from block to block."""
    names = list(classifiers)
    seconds, outputs = {name: [] for name in names}, {name: [] for name in names}
    for b, first in enumerate(range(0, len(inputs), block)):
        for name in names[b % len(names):] + names[:b % len(names)]:
            for texts in inputs[first:first + block]:
                start = time.perf_counter()
                outputs[name].append(classifiers[name](texts, batch_size))
                seconds[name].append(time.perf_counter() - start)
    return seconds, outputs


def latencies_s(call, requests):
    """Seconds of each `call(request)` after the first --warmup_requests, untimed."""
    for request in requests[:FLAGS.warmup_requests]:
        call(request)
    seconds = []
    for request in requests[FLAGS.warmup_requests:]:
        start = time.perf_counter()
        call(request)
        seconds.append(time.perf_counter() - start)
    return seconds


def median_ms(call, requests):
    return round(1000 * float(np.median(latencies_s(call, requests))), 2)


def tflite_row(saved_model_path, texts, directory, dense=None):
    """Batch-1 latency on token ids (tokenised beforehand: no tokenizer on either side) of the SavedModel's
    serve_token_ids and of each TensorFlow Lite file made from it, with the files' sizes; and
    tokenizer.tflite's latency on the raw texts (what serving raw text in TensorFlow Lite adds).
    dense: the dense model's row, each file then also timed against the dense file of its kind."""
    pretrained = bert_keras.load_encoder(FLAGS.init_checkpoint)
    preprocessor = bert_keras.BertPreprocessor(pretrained.vocab_file, pretrained.lower_case, FLAGS.max_seq_length)

    def ids(text, length=None):
        padded = preprocessor.pad(preprocessor.pack_ragged([tf.constant([text])]), length)
        return {name: value.numpy() for name, value in padded.items()}

    count = FLAGS.warmup_requests + FLAGS.requests
    requests = [ids(text) for text in texts["sst2"][:count]]
    long_requests = [ids(text) for text in texts["long"][:count]]  # 128 tokens (--max_seq_length)
    representative = [ids(text, FLAGS.max_seq_length) for text in texts["long"][:tflite.REPRESENTATIVE_EXAMPLES]]
    serve = tf.saved_model.load(saved_model_path).signatures["serve_token_ids"]

    def serve_ids(features):
        return serve(**{k: tf.constant(v) for k, v in features.items()})

    def latency(call, requests, saved_model_ms, dense_file):
        """A file's median latency on `requests`, against its SavedModel's and the dense model's file's."""
        ms = median_ms(call, requests)
        found = {"latency_ms_median": ms, "speedup_over_saved_model": round(saved_model_ms / ms, 2)}
        if dense_file:
            found["speedup_over_dense"] = round(dense_file["latency_ms_median"] / ms, 2)
        return found

    saved_model_ms = median_ms(serve_ids, requests)
    long_saved_model_ms = median_ms(serve_ids, long_requests)
    row = {"saved_model_token_ids_ms": saved_model_ms, "long": {"saved_model_token_ids_ms": long_saved_model_ms}}
    for quantization, path in tflite.export(directory, saved_model_path, tflite.QUANTIZATIONS,
                                            vocab_file=pretrained.vocab_file, lower_case=pretrained.lower_case,
                                            max_seq_length=FLAGS.max_seq_length, task=TASK.glue_name,
                                            text_fields=TASK.text_fields, label_names=TASK.labels,
                                            representative=representative).items():
        with open(path, "rb") as f:
            data = f.read()
        classifier = tflite.TFLiteClassifier(path)
        row[quantization] = {**latency(classifier, requests, saved_model_ms, dense and dense[quantization]),
                             "bytes": len(data), "gzip_bytes": len(gzip.compress(data, 6, mtime=0))}
        row["long"][quantization] = latency(classifier, long_requests, long_saved_model_ms,
                                            dense and dense["long"][quantization])
    tokenizer = tflite.TFLiteTextClassifier(os.path.join(directory, "float.tflite"))
    row["tokenizer_latency_ms_median"] = median_ms(lambda text: tokenizer.tokenize([text]), texts["sst2"][:count])
    return row


def speedups(row, baseline, name):
    """`row`'s batch-1 latency and batch throughput as speed-ups over `baseline`'s."""
    return {f"latency_speedup_over_{name}": round(baseline["latency_ms_median"] / row["latency_ms_median"], 2),
            f"throughput_speedup_over_{name}": round(row["batch_examples_per_s"] / baseline["batch_examples_per_s"], 2)}


def define_flags():
    flags.DEFINE_string("init_checkpoint", None, "A Hugging Face BERT folder (both sides load it).", required=True)
    flags.DEFINE_string("glue_dir", "../shared/glue", "A folder in the original GLUE layout (SST-2's texts).")
    flags.DEFINE_integer("max_seq_length", 128, "Both sides truncate at this many tokens.")
    flags.DEFINE_integer("batch_size", 32, "Batch size of the throughput rows.")
    flags.DEFINE_integer("requests", 200, "Timed batch-1 requests per row.")
    flags.DEFINE_integer("warmup_requests", 20, "Untimed batch-1 requests first.")
    flags.DEFINE_integer("long_texts", 256, "How many 16-sentence texts the 'long' rows use.")
    flags.DEFINE_integer("seed", 0, "Seeds the classifier head.")
    flags.DEFINE_bool("tflite", False, "Also convert each model to TensorFlow Lite (float, dynamic range, full "
                      "integer) and time batch 1 on token ids against the SavedModel's serve_token_ids.")
    flags.DEFINE_list("structured_sparsities", [], "Also serve the model with this share of each layer's heads and "
                      "neurons sliced out (e.g. 0.5,0.75), against our dense one.")
    flags.DEFINE_list("encoders", [], "Also serve an SST-2 model on each of these encoders sliced by a structured "
                      "train.py run (RUN/encoder), against our dense one.")
    flags.DEFINE_bool("xla", False, "Also serve each of our models exported with its classifier compiled by XLA.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    texts = texts_to_serve()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"0": os.path.join(tmp, "saved_model")}
        paths.update({s: os.path.join(tmp, f"structured_{s}") for s in FLAGS.structured_sparsities})
        encoders = {f"encoder{i}": folder for i, folder in enumerate(FLAGS.encoders)}  # keys: not a float
        paths.update({name: os.path.join(tmp, name) for name in encoders})
        # --xla: each model's XLA export beside it, served with the others, not in the sizes or TFLite rows.
        xla_paths = {sparsity: path + "_xla" for sparsity, path in paths.items()} if FLAGS.xla else {}
        models = {name: export_ours(path, 0.0 if name in encoders else float(name), xla_paths.get(name),
                                    encoders.get(name)) for name, path in paths.items()}
        sizes = {sparsity: {"parameters": models[sparsity].count_params(), **saved_model_bytes(path)}
                 for sparsity, path in paths.items()}
        ours = {sparsity: our_classifier(path) for sparsity, path in paths.items()}
        ours.update({f"{sparsity}_xla": our_classifier(path) for sparsity, path in xla_paths.items()})
        peer = peer_pipeline(models["0"])
        rows = {}
        for name, batch in texts.items():
            our_rows, our_p = measure(ours, batch)
            peer_rows, peer_p = measure({"peer": peer}, batch)  # after ours: TensorFlow and torch not interleaved
            dense, peer_row = our_rows["0"], peer_rows["peer"]
            rows[name] = {
                "texts": len(batch), "saved_model": dense, "transformers_pipeline": peer_row,
                "latency_ratio_peer_over_ours": round(peer_row["latency_ms_median"] / dense["latency_ms_median"], 2),
                "throughput_ratio_ours_over_peer": round(
                    dense["batch_examples_per_s"] / peer_row["batch_examples_per_s"], 2),
                "max_abs_probability_difference": float(np.abs(our_p["0"] - peer_p["peer"]).max())}
            for model, row in our_rows.items():
                if model == "0":
                    continue
                sparsity, xla = model.removesuffix("_xla"), model.endswith("_xla")
                key = ("saved_model" if sparsity == "0" else sparsity if sparsity in encoders
                       else f"structured_{sparsity}") + ("_xla" if xla else "")
                rows[name][key] = {**row, **speedups(row, dense, "dense")}
                if xla and sparsity != "0":
                    rows[name][key].update(speedups(row, our_rows["0_xla"], "dense_xla"))
                if xla:
                    rows[name][key]["max_abs_probability_difference_to_plain"] = float(  # its export without XLA
                        np.abs(our_p[model] - our_p[sparsity]).max())
        lite = {}
        if FLAGS.tflite:  # the dense model ("0") first: every other file is timed against its file of the same kind
            for sparsity, path in paths.items():
                lite[sparsity] = tflite_row(path, texts, os.path.join(tmp, f"tflite_{sparsity}"), lite.get("0"))
    common.print_json({"checkpoint": FLAGS.init_checkpoint, "batch_size": FLAGS.batch_size,
                       "max_seq_length": FLAGS.max_seq_length, "rows": rows, "sizes": sizes, "encoders": encoders,
                       **({"tflite": lite} if FLAGS.tflite else {})})


if __name__ == "__main__":
    define_flags()
    app.run(main)
