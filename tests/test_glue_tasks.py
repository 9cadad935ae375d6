"""glue_tasks: the task table, GLUE's metrics, tfds vs GLUE's original files, reader errors, submissions.

The real-data tests read ../shared/glue (GLUE's files) and build tfds's own GLUE datasets offline from
../shared/tfds_manual (GLUE's download files), then compare the two example by example.
"""

import os
import time

import numpy as np
import pytest
import requests
import scipy.stats
import sklearn.metrics
import tensorflow as tf
import tensorflow_datasets as tfds

import glue_tasks
from conftest import SHARED

GLUE_DIR = os.path.join(SHARED, "glue")
TFDS_MANUAL = os.path.join(SHARED, "tfds_manual")
# The tasks whose GLUE files and tfds download files both lie in ../shared: every split is compared.
BOTH_SOURCES = ("cola", "mrpc", "stsb", "rte", "wnli", "ax")
BOTH_SOURCES_SPLITS = [(name, split) for name in BOTH_SOURCES for split in glue_tasks.get_task(name).splits]


@pytest.fixture(scope="session")
def tfds_data_dir(tmp_path_factory):
    """A tfds data_dir with glue/{cola,mrpc,stsb,rte,wnli,ax} built by `load` from tfds_manual, offline."""
    for name in BOTH_SOURCES:
        for file in glue_tasks.get_task(name).download_files:
            assert os.path.isfile(os.path.join(TFDS_MANUAL, file)), f"missing fixture {TFDS_MANUAL}/{file}"
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    seconds = {}
    for name in BOTH_SOURCES:
        start = time.perf_counter()
        glue_tasks.load(name, glue_tasks.get_task(name).splits[0], data_dir=data_dir, manual_dir=TFDS_MANUAL)
        seconds[name] = time.perf_counter() - start
    print("tfds builds from tfds_manual:", ", ".join(f"{name} {s:.2f} s" for name, s in seconds.items()),
          f"(total {sum(seconds.values()):.1f} s)")
    return data_dir


def write(folder, relative_path, text, bom=False):
    path = os.path.join(folder, relative_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        f.write(text)
    return path


def index_column(path):
    """GLUE's `index` column of a test file, read on its own."""
    with open(path, encoding="utf-8") as f:
        return [int(line.split("\t")[0]) for line in f.read().splitlines()[1:]]


def by_idx(dataset):
    return {int(example["idx"]): example for example in dataset.as_numpy_iterator()}


# --- The table. ---

def test_task_names_and_lookup():
    assert glue_tasks.TASK_NAMES == ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli", "ax")
    for tfds_name, glue_name in [("cola", "CoLA"), ("sst2", "SST-2"), ("stsb", "STS-B"), ("mnli", "MNLI"),
                                 ("ax", "AX"), ("qqp", "QQP")]:
        spec = glue_tasks.get_task(tfds_name)
        assert (spec.tfds_name, spec.glue_name) == (tfds_name, glue_name)
        assert glue_tasks.get_task(glue_name) is spec and glue_tasks.get_task(glue_name.lower()) is spec
        assert glue_tasks.get_task(spec) is spec
    assert glue_tasks.get_task("mnli").splits == ("train", "validation_matched", "validation_mismatched",
                                                  "test_matched", "test_mismatched")
    assert glue_tasks.get_task("ax").splits == ("test",)
    assert {name: spec.metrics for name, spec in zip(glue_tasks.TASK_NAMES, glue_tasks.TASKS)} == {
        "cola": ("matthews_corrcoef",), "sst2": ("accuracy",), "mrpc": ("f1", "accuracy"),
        "qqp": ("f1", "accuracy"), "stsb": ("pearson", "spearman"), "mnli": ("accuracy",),
        "qnli": ("accuracy",), "rte": ("accuracy",), "wnli": ("accuracy",), "ax": ("matthews_corrcoef",)}


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(glue_tasks.UnknownTaskError) as error:
        glue_tasks.get_task("sst")
    assert isinstance(error.value, ValueError)
    for spec in glue_tasks.TASKS:
        assert spec.tfds_name in str(error.value) and spec.glue_name in str(error.value)


def test_specs_agree_with_the_tfds_builder():
    configs = tfds.builder_cls("glue").builder_configs
    url_files = {info.filename for info in tfds.builder_cls("glue").url_infos.values()}
    for spec in glue_tasks.TASKS:
        config = configs[spec.tfds_name]
        assert spec.text_fields == tuple(config.text_features), spec.glue_name
        assert spec.download_files and set(spec.download_files) <= url_files, spec.glue_name
        if spec.is_regression:
            assert config.label_classes is None
            continue
        # tfds encodes a label its ClassLabel names, else int(label): GLUE's string at index i gets id i.
        names = tuple(config.label_classes)
        assert spec.labels == names or spec.labels == tuple(str(i) for i in range(len(names))), spec.glue_name
    assert {file for spec in glue_tasks.TASKS for file in spec.download_files} == url_files
    # What GLUE's "0"/"1" mean, per tfds's names.
    assert {name: tuple(configs[name].label_classes) for name in ("cola", "sst2", "mrpc", "qqp", "wnli")} == {
        "cola": ("unacceptable", "acceptable"), "sst2": ("negative", "positive"),
        "mrpc": ("not_equivalent", "equivalent"), "qqp": ("not_duplicate", "duplicate"),
        "wnli": ("not_entailment", "entailment")}


def test_test_sizes_match_the_real_test_files():
    for name in ("cola", "sst2", "mrpc", "stsb", "qnli", "rte", "wnli", "ax"):
        spec = glue_tasks.get_task(name)
        assert len(glue_tasks.read_split(spec, "test", GLUE_DIR)["idx"]) == spec.test_sizes["test"], name


# --- Metrics. ---

def test_metrics_match_sklearn_and_scipy_on_random_arrays():
    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 1000, 4099):
        labels = rng.integers(0, 2, size)
        predictions = np.where(rng.random(size) < 0.7, labels, rng.integers(0, 2, size))
        assert glue_tasks.METRICS["accuracy"](labels, predictions) == sklearn.metrics.accuracy_score(
            labels, predictions)
        np.testing.assert_allclose(glue_tasks.METRICS["f1"](labels, predictions),
                                   sklearn.metrics.f1_score(labels, predictions, zero_division=0), atol=1e-12)
        for classes in (2, 3):
            labels = rng.integers(0, classes, size)
            predictions = np.where(rng.random(size) < 0.6, labels, rng.integers(0, classes, size))
            np.testing.assert_allclose(glue_tasks.METRICS["matthews_corrcoef"](labels, predictions),
                                       sklearn.metrics.matthews_corrcoef(labels, predictions), atol=1e-12)
        if size > 2:
            scores = np.round(rng.uniform(0, 5, size), 1)  # rounded: ties, as in STS-B's labels
            predicted = np.round(scores + rng.normal(0, 1, size), 1).astype(np.float32)
            metrics = glue_tasks.get_task("stsb").compute_metrics(scores.astype(np.float32), predicted)
            np.testing.assert_allclose(metrics["pearson"], scipy.stats.pearsonr(scores, predicted)[0], atol=1e-6)
            np.testing.assert_allclose(metrics["spearman"], scipy.stats.spearmanr(scores, predicted)[0], atol=1e-12)


def test_metrics_on_hand_checked_cases():
    mrpc = glue_tasks.get_task("mrpc")
    # TP 2, FP 1, FN 1, TN 1.
    assert mrpc.compute_metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]) == pytest.approx({"f1": 2 / 3, "accuracy": 0.6})
    cola = glue_tasks.get_task("cola")
    assert cola.compute_metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]) == pytest.approx(
        {"matthews_corrcoef": (2 * 1 - 1 * 1) / np.sqrt(3 * 3 * 2 * 2)})
    # A constant prediction (or constant labels) has MCC 0, not NaN, as sklearn; F1 without positives is 0.
    assert cola.compute_metrics([0, 1, 1, 0], [1, 1, 1, 1]) == {"matthews_corrcoef": 0.0}
    assert cola.compute_metrics([1, 1, 1, 1], [0, 1, 1, 0]) == {"matthews_corrcoef": 0.0}
    assert sklearn.metrics.matthews_corrcoef([0, 1, 1, 0], [1, 1, 1, 1]) == 0.0
    assert mrpc.compute_metrics([0, 1], [0, 0]) == {"f1": 0.0, "accuracy": 0.5}
    stsb = glue_tasks.get_task("stsb")
    assert stsb.compute_metrics([1.0, 2.0, 3.0], [2.0, 4.0, 7.0])["pearson"] == pytest.approx(15 / np.sqrt(228))
    assert stsb.compute_metrics([1.0, 2.0, 3.0], [3.0, 1.0, 2.0])["spearman"] == pytest.approx(-0.5)
    assert stsb.compute_metrics([1.0, 2.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])["spearman"] == pytest.approx(
        3 / np.sqrt(10))  # ties get their average rank


def test_metric_inputs_are_checked():
    rte = glue_tasks.get_task("rte")
    with pytest.raises(ValueError, match="class ids"):
        rte.compute_metrics([0, 1], np.array([[0.2, 0.8], [0.9, 0.1]]))  # logits: shapes differ
    with pytest.raises(ValueError, match="integers"):
        rte.compute_metrics([0, 1], [0.0, 1.0])
    with pytest.raises(ValueError, match="-1"):
        rte.compute_metrics([-1, -1], [0, 1])  # a test split's labels
    with pytest.raises(ValueError, match="one length"):
        rte.compute_metrics([0, 1, 1], [0, 1])


def test_cola_mcc_is_over_the_whole_split_not_a_mean_over_batches():
    """The real CoLA dev set in batches of 32: 32 full batches and a partial one of 19."""
    cola = glue_tasks.get_task("cola")
    rng = np.random.default_rng(1)
    labels, predictions, batch_sizes = [], [], []
    for batch in glue_tasks.load(cola, "validation", glue_dir=GLUE_DIR).batch(32):
        batch_labels = batch["label"].numpy()  # a model's predictions: right 80% of the time
        labels.append(batch_labels)
        predictions.append(np.where(rng.random(len(batch_labels)) < 0.8, batch_labels, 1 - batch_labels))
        batch_sizes.append(len(batch_labels))
    assert len(batch_sizes) == 33 and batch_sizes[-1] == 19
    whole = cola.compute_metrics(np.concatenate(labels), np.concatenate(predictions))["matthews_corrcoef"]
    np.testing.assert_allclose(whole, sklearn.metrics.matthews_corrcoef(
        np.concatenate(labels), np.concatenate(predictions)), atol=1e-12)
    batch_mean = np.mean([cola.compute_metrics(l, p)["matthews_corrcoef"] for l, p in zip(labels, predictions)])
    assert abs(whole - batch_mean) > 1e-3  # why metrics never average over batches


# --- tfds and GLUE's files give the same examples. ---

@pytest.mark.parametrize("name,split", BOTH_SOURCES_SPLITS, ids=[f"{n}-{s}" for n, s in BOTH_SOURCES_SPLITS])
def test_tfds_and_glue_files_give_the_same_examples(tfds_data_dir, name, split):
    from_tfds = glue_tasks.load(name, split, data_dir=tfds_data_dir)
    from_files = glue_tasks.load(name, split, glue_dir=GLUE_DIR)
    assert from_files.element_spec == from_tfds.element_spec
    tfds_examples, file_examples = by_idx(from_tfds), by_idx(from_files)
    assert len(tfds_examples) == len(list(from_tfds)) and len(file_examples) == len(list(from_files))  # idx unique
    assert sorted(file_examples) == sorted(tfds_examples)
    for idx, example in tfds_examples.items():
        # texts byte for byte, labels, and idx; same NumPy types
        assert {key: (type(value), value) for key, value in example.items()} == {
            key: (type(value), value) for key, value in file_examples[idx].items()}, (name, split, idx)
    if split in glue_tasks.get_task(name).test_splits:
        assert {int(example["label"]) for example in tfds_examples.values()} == {-1}


def test_tfds_builds_have_the_specs_splits(tfds_data_dir):
    for name in BOTH_SOURCES:
        builder = tfds.builder(f"glue/{name}", data_dir=tfds_data_dir)
        assert set(builder.info.splits) == set(glue_tasks.get_task(name).splits), name


def test_prepared_tfds_data_loads_without_network(tfds_data_dir, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("no request expected")

    monkeypatch.setattr(requests, "head", no_network)
    assert len(list(glue_tasks.load("wnli", "validation", data_dir=tfds_data_dir))) == 71


def test_mrpc_matches_the_glue_scripts_train_and_dev_files():
    """The GLUE layout's MRPC/train.tsv and dev.tsv are what tfds's split of msr_paraphrase_train.txt gives."""
    for split, file in (("train", "train.tsv"), ("validation", "dev.tsv")):
        examples = glue_tasks.read_split("mrpc", split, GLUE_DIR)
        with open(os.path.join(GLUE_DIR, "MRPC", file), encoding="utf-8-sig") as f:
            rows = [line.split("\t") for line in f.read().splitlines()[1:]]
        assert [(int(r[0]), r[3], r[4]) for r in rows] == list(
            zip(examples["label"], examples["sentence1"], examples["sentence2"])), split
    # idx counts rows of msr_paraphrase_train.txt (4076), so train and validation interleave.
    assert examples["idx"][:3].tolist() == [9, 18, 25]


def test_loading_fails_fast_without_network_or_manual_files(tmp_path, monkeypatch):
    def unreachable(url, **kwargs):
        raise requests.ConnectionError(f"cannot resolve {url}")

    monkeypatch.setattr(requests, "head", unreachable)
    for manual_dir in (None, str(tmp_path / "manual")):
        start = time.perf_counter()
        with pytest.raises(glue_tasks.DownloadUnavailableError) as error:
            glue_tasks.load("mrpc", "train", data_dir=str(tmp_path / "tfds"), manual_dir=manual_dir)
        assert time.perf_counter() - start < 10
        message = str(error.value)
        for expected in ("manual_dir", "glue_dir", "msr_paraphrase_train.txt", "data_mrpc_dev_ids.tsv",
                         "dl.fbaipublicfiles.com", "firebasestorage.googleapis.com"):
            assert expected in message
        assert manual_dir is None or f"manual_dir {manual_dir} lacks" in message


# --- Reading GLUE's files: the layouts tfds reads, and errors with file and line. ---

def test_reader_follows_each_layout(tmp_path):
    glue_dir = str(tmp_path)
    write(glue_dir, "CoLA/train.tsv", 'gj04\t1\t\tHe said "hi.\ngj04\t0\t*\tHim left.\n')  # no header
    write(glue_dir, "CoLA/test.tsv", "index\tsentence\n0\tA test.\n")
    mnli_header = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
                   "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n")
    write(glue_dir, "MNLI/dev_mismatched.tsv", mnli_header
          + "0\t1\t1n\tfiction\t(\t(\t(\t(\tA man naps.\tA man sleeps.\tentailment\tentailment\n"
          + "1\t2\t2c\tfiction\t(\t(\t(\t(\tIt rains.\tIt is dry.\tcontradiction\tcontradiction\n")
    write(glue_dir, "MNLI/test_matched.tsv", "index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\n"
          + "0\t1\t1\tslate\tP.\tH.\n")
    write(glue_dir, "QQP/dev.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
          + "7\t1\t2\tWhy?\tHow?\t0\n\n8\t3\t4\tWho?\tWho is?\t1\n")  # a blank line is no row
    # An empty label: tfds drops the row, and its idx stays unused.
    write(glue_dir, "RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n"
          + "1\tc\td\t\n2\te\tf\tnot_entailment")  # no final newline
    write(glue_dir, "STS-B/test.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
          + "sentence2\n0\tmain\tf\t2012\t1\tnone\tnone\tA cat.\tA dog.\n")
    write(glue_dir, "MRPC/msr_paraphrase_test.txt", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
          + "1\t5\t6\tOne .\tTwo .\n", bom=True)

    def read(name, split):
        return {key: value.tolist() for key, value in glue_tasks.read_split(name, split, glue_dir).items()}

    assert read("cola", "train") == {"sentence": ['He said "hi.', "Him left."], "label": [1, 0], "idx": [0, 1]}
    assert read("cola", "test") == {"sentence": ["A test."], "label": [-1], "idx": [0]}
    assert read("mnli", "validation_mismatched") == {"premise": ["A man naps.", "It rains."],
                                                     "hypothesis": ["A man sleeps.", "It is dry."],
                                                     "label": [0, 2], "idx": [0, 1]}
    assert read("mnli", "test_matched") == {"premise": ["P."], "hypothesis": ["H."], "label": [-1], "idx": [0]}
    assert read("qqp", "validation") == {"question1": ["Why?", "Who?"], "question2": ["How?", "Who is?"],
                                         "label": [0, 1], "idx": [0, 1]}
    assert read("rte", "train") == {"sentence1": ["a", "e"], "sentence2": ["b", "f"], "label": [0, 1],
                                    "idx": [0, 2]}
    # MRPC's test labels are public, but tfds gives -1 like every test split.
    assert read("mrpc", "test") == {"sentence1": ["One ."], "sentence2": ["Two ."], "label": [-1], "idx": [0]}
    stsb = glue_tasks.load("stsb", "test", glue_dir=glue_dir)
    assert stsb.element_spec == {"sentence1": tf.TensorSpec((), tf.string), "sentence2": tf.TensorSpec((), tf.string),
                                 "label": tf.TensorSpec((), tf.float32), "idx": tf.TensorSpec((), tf.int32)}
    assert list(stsb.as_numpy_iterator()) == [{"sentence1": b"A cat.", "sentence2": b"A dog.",
                                               "label": np.float32(-1), "idx": np.int32(0)}]


@pytest.mark.parametrize("name,file,text,line,expected", [
    ("rte", "RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\n", 3,
     "3 tab-separated fields, expected 4"),
    ("rte", "RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n", 2, "'maybe' is not one of"),
    ("stsb", "STS-B/train.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\t"
     "score\n0\tg\tf\t2012\t1\tn\tn\ta\tb\tfive\n", 2, "'five' is not a number"),
    ("cola", "CoLA/train.tsv", "gj04\t1\t\tFine.\ngj04\t1\tToo many\tfields\t.\n", 2, "5 tab-separated fields"),
    ("rte", "RTE/train.tsv", "index\tpremise\thypothesis\tlabel\n0\ta\tb\tentailment\n", 1, "header lacks"),
])
def test_malformed_rows_name_file_and_line(tmp_path, name, file, text, line, expected):
    path = write(str(tmp_path), file, text)
    with pytest.raises(glue_tasks.MalformedFileError, match=expected) as error:
        glue_tasks.read_split(name, "train", str(tmp_path))
    assert isinstance(error.value, ValueError) and f"{path}:{line}:" in str(error.value)


def test_missing_file_names_its_path_and_what_was_expected(tmp_path):
    write(str(tmp_path), "MRPC/msr_paraphrase_train.txt", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n")
    for name, split, missing in [("rte", "validation", "RTE/dev.tsv"), ("mrpc", "train", "MRPC/dev_ids.tsv"),
                                 ("ax", "test", "diagnostic/diagnostic.tsv")]:
        with pytest.raises(FileNotFoundError) as error:
            glue_tasks.load(name, split, glue_dir=str(tmp_path))
        assert os.path.join(str(tmp_path), missing) in str(error.value) and "expected" in str(error.value)


def test_bad_split_lists_the_valid_ones():
    for name, split, valid in [("rte", "dev", "train, validation, test"),
                               ("mnli", "validation", "validation_matched, validation_mismatched"),
                               ("ax", "train", "valid: test")]:
        with pytest.raises(glue_tasks.UnknownSplitError, match=valid) as error:
            glue_tasks.load(name, split, glue_dir=GLUE_DIR)
        assert isinstance(error.value, ValueError)
    with pytest.raises(ValueError, match="tfds only"):
        glue_tasks.load("rte", "train", glue_dir=GLUE_DIR, data_dir="/tmp")


# --- Submission files. ---

def read_submission(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    return lines[0], [line.split("\t") for line in lines[1:]]


@pytest.mark.parametrize("name", ["cola", "rte", "ax"])
def test_submission_of_a_real_test_set(tmp_path, name):
    spec = glue_tasks.get_task(name)
    idx = np.random.default_rng(2).permutation(glue_tasks.read_split(spec, "test", GLUE_DIR)["idx"])  # any order
    predictions = idx % len(spec.labels)
    path = glue_tasks.write_submission(name, predictions, idx, str(tmp_path / "out"))
    assert os.path.basename(path) == f"{spec.glue_name}.tsv"
    header, rows = read_submission(path)
    assert header == "index\tprediction"
    assert len(rows) == spec.test_sizes["test"]
    assert [int(index) for index, _ in rows] == index_column(os.path.join(GLUE_DIR, spec.folder, spec.files["test"]))
    assert [label for _, label in rows] == [spec.labels[int(index) % len(spec.labels)] for index, _ in rows]


def test_stsb_submission_is_clipped(tmp_path):
    idx = glue_tasks.read_split("stsb", "test", GLUE_DIR)["idx"]
    scores = np.linspace(-1.0, 6.0, len(idx), dtype=np.float32)
    header, rows = read_submission(glue_tasks.write_submission("STS-B", scores, idx, str(tmp_path)))
    assert header == "index\tprediction" and len(rows) == 1379
    values = np.array([float(score) for _, score in rows])
    assert values.min() == 0.0 and values.max() == 5.0 and rows[0][1] == "0.000" and rows[-1][1] == "5.000"
    np.testing.assert_allclose(values, np.clip(scores, 0, 5), atol=5e-4)


def test_mnli_writes_two_files(tmp_path):
    rng = np.random.default_rng(3)
    files = {}
    for split, size in (("test_matched", 9796), ("test_mismatched", 9847)):
        path = glue_tasks.write_submission("mnli", rng.integers(0, 3, size), rng.permutation(size), str(tmp_path),
                                           split=split)
        header, rows = read_submission(path)
        files[os.path.basename(path)] = len(rows)
        assert header == "index\tprediction" and [int(i) for i, _ in rows] == list(range(size))
        assert {label for _, label in rows} == {"entailment", "neutral", "contradiction"}
    assert files == {"MNLI-m.tsv": 9796, "MNLI-mm.tsv": 9847}
    with pytest.raises(glue_tasks.UnknownSplitError, match="test_matched, test_mismatched"):
        glue_tasks.write_submission("mnli", [0], [0], str(tmp_path))


def test_submission_file_names_and_errors(tmp_path):
    assert sorted(file for spec in glue_tasks.TASKS for file in spec.submission_files.values()) == sorted(
        ["CoLA.tsv", "SST-2.tsv", "MRPC.tsv", "STS-B.tsv", "QQP.tsv", "MNLI-m.tsv", "MNLI-mm.tsv", "QNLI.tsv",
         "RTE.tsv", "WNLI.tsv", "AX.tsv"])
    size = glue_tasks.get_task("wnli").test_sizes["test"]
    for predictions, idx, expected in [(np.zeros(size - 1, int), np.arange(size - 1), "exactly once"),
                                       (np.zeros(size, int), np.arange(size) // 2, "exactly once"),
                                       (np.zeros((size, 2)), np.arange(size), "1-D"),
                                       (np.full(size, 2), np.arange(size), r"\[0, 2\)")]:
        with pytest.raises(ValueError, match=expected):
            glue_tasks.write_submission("wnli", predictions, idx, str(tmp_path))
    assert not os.listdir(tmp_path)
