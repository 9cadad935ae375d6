"""train.py under tf.distribute trains the same model as on one device.

MiniLM's real weights with dropout off (the one thing that differs by design between a batch of 8
on one device and two halves of 4), on the real RTE files: `mirrored` over two logical CPUs and
`multi_worker_mirrored` with two worker processes on 127.0.0.1 (--runslow), each killed mid-run and
resumed. The one-device run they must reproduce is conftest's `pruned_run`.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import DISTILLED_RUN, PRUNED, PRUNED_RUN, REPO, short_run_flags, train_in_process


def start_train(args, env=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.Popen([sys.executable, "train.py", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def start_workers(args, ports):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return [start_train(args, {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
            for i in range(len(ports))]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def finish(process, timeout=600):
    output = process.communicate(timeout=timeout)[0]
    assert process.returncode == 0, output[-5000:]
    return output


def exported_variables(run):
    import tensorflow_text  # noqa: F401 (the SavedModel's WordPiece ops)

    loaded = tf.saved_model.load(os.path.join(run, "saved_model"))
    return {v.name: v.numpy() for v in loaded.classifier_weights}


def assert_trained_alike(run, reference):
    """Same step, dev metrics and sparsity as the one-device run, weights within float rounding."""
    results, expected = (json.load(open(os.path.join(r, "eval_results.json"))) for r in (run, reference))
    assert results["global_step"] == expected["global_step"] == 12
    assert results["eval_accuracy"] == expected["eval_accuracy"]
    assert results["eval_loss"] == pytest.approx(expected["eval_loss"], abs=1e-6)
    assert results["sparsity"]["pruned"] == expected["sparsity"]["pruned"]
    variables, reference_variables = exported_variables(run), exported_variables(reference)
    for name in PRUNED:
        assert np.mean(variables[name] == 0) == 0.5, name  # the exported sparsity is the target's
    for name, value in reference_variables.items():
        np.testing.assert_allclose(variables[name], value, atol=1e-5, rtol=0, err_msg=name)


def wait_for_first_backup(run, processes):
    deadline = time.time() + 300
    while not os.path.exists(os.path.join(run, "backup", "chief", "checkpoint")):
        assert all(p.poll() is None for p in processes) and time.time() < deadline, "no checkpoint"
        time.sleep(0.2)


def resumed_at(output):
    steps = [int(line.split("resuming at step ")[1].split()[0]) for line in output.splitlines()
             if "resuming at step " in line]
    assert len(steps) == 1 and 4 <= steps[0] < 12, output[-5000:]


def test_mirrored_run_killed_and_resumed_trains_as_one_device(pruned_run, dropout_free_minilm, tmp_path):
    """`mirrored` over two logical CPUs, killed with kill -9 after its first backup; the same command
    again resumes and ends where the uninterrupted one-device run ends."""
    run = str(tmp_path / "mirrored")
    args = short_run_flags(dropout_free_minilm, run, *PRUNED_RUN, "--distribution_strategy=mirrored",
                           "--cpu_devices=2")
    process = start_train(args)
    wait_for_first_backup(run, [process])
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not os.path.exists(os.path.join(run, "eval_results.json"))
    output = finish(start_train(args))
    assert "2 replicas" in output
    resumed_at(output)
    assert_trained_alike(run, pruned_run)


@pytest.mark.slow  # ~180 s; the mirrored test above and test_distillation's one-device student run by default
def test_a_distilled_run_on_two_replicas_trains_as_one_device(distilled_run, pruned_run, dropout_free_minilm,
                                                              tmp_path):
    """Each example's teacher output travels with it to its replica, and the distillation loss is averaged
    over the global batch: `mirrored` over two logical CPUs ends where conftest's one-device student ends."""
    run = str(tmp_path / "mirrored")
    output = finish(start_train(short_run_flags(dropout_free_minilm, run, f"--teacher={pruned_run}", *DISTILLED_RUN,
                                                "--distribution_strategy=mirrored", "--cpu_devices=2")))
    assert "2 replicas" in output
    results, expected = (json.load(open(os.path.join(r, "eval_results.json"))) for r in (run, distilled_run))
    assert results["global_step"] == expected["global_step"] == 4
    assert results["eval_loss"] == pytest.approx(expected["eval_loss"], abs=1e-6)
    assert results["loss"] == pytest.approx(expected["loss"], abs=1e-6)
    variables, reference = exported_variables(run), exported_variables(distilled_run)
    for name, value in reference.items():
        np.testing.assert_allclose(variables[name], value, atol=1e-5, rtol=0, err_msg=name)


@pytest.mark.slow  # ~240 s: two workers started twice; the mirrored test above kills and resumes too
def test_killed_worker_stops_the_job_which_resumes_to_the_same_model(pruned_run, dropout_free_minilm, tmp_path):
    """Two workers; the second is killed after the first checkpoint. The chief fails at once, with
    the way out in its message; both restarted, they resume and end where one device ends."""
    run = str(tmp_path / "workers")
    args = short_run_flags(dropout_free_minilm, run, *PRUNED_RUN, "--distribution_strategy=multi_worker_mirrored")
    ports = free_ports(2)
    chief, worker = start_workers(args, ports)
    wait_for_first_backup(run, [chief, worker])
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    output = chief.communicate(timeout=180)[0]
    assert chief.returncode == 1, output[-5000:]
    assert "error: lost contact with another worker" in output
    assert "Restart every worker with the same command" in output
    assert not os.path.exists(os.path.join(run, "eval_results.json"))

    outputs = [finish(p) for p in start_workers(args, ports)]
    resumed_at(outputs[0])
    assert_trained_alike(run, pruned_run)
    written = sorted(os.listdir(run))
    assert written == ["backup", "eval_results.json", "eval_results.txt", "saved_model", "sparsity.json",
                       "sparsity.txt", "tensorboard", "train_config.json"]
    leftovers = [os.path.join(root, d) for root, dirs, _ in os.walk(run) for d in dirs if d.startswith("workertemp")]
    assert leftovers == []  # the second worker's temporary checkpoints are gone


def test_masks_are_identical_on_every_replica_and_uneven_batches_weigh_examples_equally():
    """In one process with two logical CPUs: the pruning masks of each replica, one step on a
    batch of 5 (split 3 + 2) against the same step on one device, with train.py's loss and with
    Keras' own (which weighs the 2 examples more and so moves the weights elsewhere), and which
    of training.optimization.AdamW's updates each replica's gradients take."""
    script = r"""
import json, os
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import tensorflow_model_optimization as tfmot, tf_keras as keras
import glue_tasks
from training import losses, optimization

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
features = np.random.RandomState(0).normal(size=(5, 16)).astype("float32")
labels = np.array([0, 1, 1, 0, 1])

def trained(loss, strategy, prune=False):
    keras.utils.set_random_seed(1)
    with strategy.scope():
        dense = keras.layers.Dense(2, input_shape=(16,))
        if prune:
            schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1)
            dense = tfmot.sparsity.keras.prune_low_magnitude(dense, pruning_schedule=schedule)
        model = keras.Sequential([dense])
        model.compile(keras.optimizers.SGD(1.0), loss)
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep()] if prune else []
    model.fit(features, labels, batch_size=5, epochs=3, verbose=0, callbacks=callbacks)
    return model

ours = losses.task_loss(glue_tasks.get_task("rte"))
keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
one = trained(ours, tf.distribute.get_strategy()).get_weights()[0]
two = trained(ours, strategy).get_weights()[0]
keras_two = trained(keras_loss, strategy).get_weights()[0]
pruned = trained(ours, strategy, prune=True)
masks = [v for v in pruned.variables if "mask" in v.name]
per_replica = [[m.numpy() for m in strategy.experimental_local_results(mask)] for mask in masks]

class RecordingAdamW(optimization.AdamW):  # which update, the fused dense one or Keras' sparse one, gets each gradient
    path = "dense"
    updates = []
    def _update_step_xla(self, gradient, variable, key):
        RecordingAdamW.path = "sparse"
        try:
            return super()._update_step_xla(gradient, variable, key)
        finally:
            RecordingAdamW.path = "dense"
    def _update_step(self, gradient, variable):
        kind = "embedding" if "embedding" in variable.name else "dense layer"
        RecordingAdamW.updates.append([self.path, kind, type(gradient).__name__.replace("Symbolic", "")])
        return super()._update_step(gradient, variable)

with strategy.scope():
    embedded = keras.Sequential([keras.layers.Embedding(50, 4, input_length=3), keras.layers.Flatten(),
                                 keras.layers.Dense(2)])
    optimizer = RecordingAdamW(learning_rate=1e-3, weight_decay=0.01, global_clipnorm=1.0)
    optimizer.jit_compile = True
    embedded.compile(optimizer, ours)
embedded.fit(np.array([[1, 2, 3], [4, 5, 1]] * 2), np.array([0, 1] * 2), batch_size=4, epochs=2, verbose=0)
print(json.dumps({"ours": float(np.abs(two - one).max()), "keras": float(np.abs(keras_two - one).max()),
                  "masks": len(masks), "replicas": [len(r) for r in per_replica],
                  "same": all(np.array_equal(r[0], x) for r in per_replica for x in r),
                  "sparsity": [float(np.mean(r[0] == 0)) for r in per_replica],
                  "updates": sorted(set(map(tuple, RecordingAdamW.updates)))}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr[-5000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["ours"] < 1e-6 < 1e-3 < found["keras"], found
    assert found["masks"] == 1 and found["replicas"] == [2] and found["same"], found
    assert found["sparsity"] == [0.5], found
    # The embedding's IndexedSlices take Keras' sparse update; fused into the dense one, their row
    # count, new at nearly every step, made XLA compile that update anew at every step (~4 s).
    assert found["updates"] == [["dense", "dense layer", "Tensor"], ["sparse", "embedding", "IndexedSlices"]], found


def test_strategy_errors_name_the_flag(dropout_free_minilm, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    flags = short_run_flags(dropout_free_minilm, str(tmp_path / "a"), "--max_steps=2")
    with pytest.raises(SystemExit, match=r"multi_worker_mirrored: TF_CONFIG is not set"):
        train_in_process([*flags, "--distribution_strategy=multi_worker_mirrored"])
    with pytest.raises(SystemExit, match=r"--distribution_strategy tpu needs padding fixed"):
        train_in_process([*flags, "--distribution_strategy=tpu"])
    with pytest.raises(SystemExit, match=r"--distribution_strategy tpu grpc://127.0.0.1:\d+: cannot reach it"):
        train_in_process([*flags, "--distribution_strategy=tpu", "--padding=fixed",
                          f"--tpu=grpc://127.0.0.1:{free_ports(1)[0]}"])
    assert not os.path.exists(tmp_path / "a")
