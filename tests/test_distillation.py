"""Distillation: the loss against a hand computation, each example's own teacher output through
shuffling and bucketing, and short distilled, pruned train.py runs from a real teacher (float32 and
mixed precision; on two replicas: test_distribute)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import glue_tasks
from conftest import DISTILLED_RUN, short_run_flags, train_in_process
from glue_tasks import inputs
from training import losses


def log_softmax(x):
    return x - np.logaddexp.reduce(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("alpha, temperature", [(1.0, 2.0), (0.3, 1.0), (0.0, 4.0)])
def test_distillation_loss_of_classes_against_a_hand_computation(alpha, temperature):
    rng = np.random.RandomState(0)
    student, teacher = rng.normal(size=(5, 3)) * 2, rng.normal(size=(5, 3)) * 2
    labels = np.array([0, 2, 1, 1, 0])
    p_teacher = np.exp(log_softmax(teacher / temperature))
    kl = np.sum(p_teacher * (log_softmax(teacher / temperature) - log_softmax(student / temperature)), axis=1)
    cross_entropy = -log_softmax(student)[np.arange(5), labels]
    expected = np.mean((1 - alpha) * cross_entropy + alpha * temperature ** 2 * kl)
    loss = losses.distillation_loss(glue_tasks.get_task("mnli"), alpha, temperature)
    y_true = np.concatenate([labels[:, None], teacher], axis=1).astype(np.float32)
    assert float(loss(y_true, student.astype(np.float32))) == pytest.approx(expected, rel=1e-5)


def test_distillation_loss_of_scores_against_a_hand_computation():
    student, teacher, labels = np.array([[1.0], [3.0]]), np.array([[2.0], [2.5]]), np.array([0.5, 4.0])
    expected = np.mean(0.25 * (student[:, 0] - labels) ** 2 + 0.75 * (student[:, 0] - teacher[:, 0]) ** 2)
    loss = losses.distillation_loss(glue_tasks.get_task("stsb"), 0.75, 2.0)
    y_true = np.concatenate([labels[:, None], teacher], axis=1).astype(np.float32)
    assert float(loss(y_true, student.astype(np.float32))) == pytest.approx(expected, rel=1e-6)


def test_each_example_meets_its_own_teacher_output_after_shuffling_and_bucketing():
    """Examples of many lengths whose second token encodes their idx; the teacher's outputs encode it too."""
    count = 200
    lengths = 3 + np.arange(count) % 17
    idx = np.random.RandomState(1).permutation(1000)[:count]  # sparse, unordered idx, as MRPC's are

    def example(i):
        ids = np.full(lengths[i], 7, np.int32)
        ids[1] = 1000 + idx[i]
        return {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids),
                "label": np.int64(i % 2), "idx": np.int32(idx[i])}
    spec = {"input_word_ids": tf.TensorSpec([None], tf.int32), "input_mask": tf.TensorSpec([None], tf.int32),
            "input_type_ids": tf.TensorSpec([None], tf.int32), "label": tf.TensorSpec([], tf.int64),
            "idx": tf.TensorSpec([], tf.int32)}
    tokenized = tf.data.Dataset.from_generator(lambda: (example(i) for i in range(count)), output_signature=spec)
    teacher = np.full([1000, 2], np.nan, np.float32)
    teacher[idx] = np.stack([idx, -idx], axis=1)
    seen = []
    for features, targets in inputs.training_batches(tokenized, 8, 24, seed=5, epochs=2, teacher_outputs=teacher):
        ids, targets = features["input_word_ids"].numpy(), targets.numpy()
        assert targets.shape == (len(ids), 3)
        np.testing.assert_array_equal(targets[:, 1], ids[:, 1] - 1000)  # its own teacher output
        np.testing.assert_array_equal(targets[:, 2], -(ids[:, 1] - 1000))
        np.testing.assert_array_equal(targets[:, 0], [list(idx).index(i) % 2 for i in ids[:, 1] - 1000])
        seen += list(ids[:, 1] - 1000)
    assert sorted(seen) == sorted(list(idx) * 2)  # every example once an epoch


def test_a_short_distilled_pruned_run_from_a_real_teacher(distilled_run, pruned_run):
    """The dense-run teacher here is conftest's finished RTE run (its export); the student starts
    from MiniLM, distils from it and prunes to 50%."""
    results = json.load(open(os.path.join(distilled_run, "eval_results.json")))
    assert results["global_step"] == 4 and np.isfinite(results["loss"])
    assert abs(results["sparsity"]["pruned"]["sparsity"] - 0.5) < 0.005
    assert json.load(open(os.path.join(distilled_run, "train_config.json")))["teacher"] == pruned_run


@pytest.mark.slow  # ~110 s; bfloat16 training runs by default in test_train, distillation in float32 above
def test_a_distilled_run_in_mixed_precision(distilled_run, pruned_run, dropout_free_minilm, tmp_path):
    """--mixed_precision bfloat16 (bfloat16 compute, float32 variables, the loss on float32 logits): the
    float32 student's losses to bfloat16's precision, and float32 weights exported."""
    student = str(tmp_path / "student")
    train_in_process(short_run_flags(dropout_free_minilm, student, f"--teacher={pruned_run}", *DISTILLED_RUN,
                                     precision="bfloat16"))
    results, expected = (json.load(open(os.path.join(run, "eval_results.json"))) for run in (student, distilled_run))
    assert results["global_step"] == 4
    assert results["loss"] == pytest.approx(expected["loss"], rel=0.03)
    assert results["eval_loss"] == pytest.approx(expected["eval_loss"], rel=0.03)
    assert abs(results["sparsity"]["pruned"]["sparsity"] - 0.5) < 0.005
    weights = tf.saved_model.load(os.path.join(student, "saved_model")).classifier_weights
    assert {w.dtype for w in weights} == {tf.float32}


def test_a_missing_teacher_is_named(minilm_dir, tmp_path):
    with pytest.raises(SystemExit, match=r"--teacher .*nowhere: no SavedModel there"):
        train_in_process(short_run_flags(minilm_dir, str(tmp_path / "b"), f"--teacher={tmp_path}/nowhere",
                                         "--max_steps=2"))
    assert not os.path.exists(tmp_path / "b")


def test_a_student_starts_from_the_dense_runs_encoder_and_head(pruned_run, minilm_dir):
    """--init_from: every weight of the (pruning-wrapped) task model is the export's, by name."""
    import dataclasses

    import bert_keras
    from training import export
    from training.config import RunConfig
    from training.model import build_training_model
    from training.optimization import StepPlan

    config = dataclasses.replace(RunConfig.load(pruned_run), output_dir="unused", init_from=pruned_run)
    task = glue_tasks.get_task("rte")
    trained = build_training_model(config, bert_keras.load_encoder(minilm_dir), task, StepPlan(10, 10, 1, 1))
    export.init_from_export(trained.model, config.init_from, task)
    exported = {v.name: v.numpy() for v in tf.saved_model.load(os.path.join(pruned_run, "saved_model"))
                .classifier_weights}
    own = {w.name: w.numpy() for w in trained.model.weights if w.name in exported}
    assert len(own) == len(exported)
    for name, value in exported.items():
        np.testing.assert_array_equal(own[name], value, err_msg=name)
    with pytest.raises(export.ExportError, match=r"--init_from .*: a model of RTE .*not of MRPC"):
        export.init_from_export(trained.model, pruned_run, glue_tasks.get_task("mrpc"))
