"""tf.distribute for a run: the strategy, how every worker reads the data, a barrier between runs."""

import os
import socket

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker_mirrored", "tpu")


class StrategyError(RuntimeError):
    """A strategy that cannot be set up here; the message says why."""


def make_strategy(name, *, tpu=None, cpu_devices=1):
    """The tf.distribute strategy called `name`; made before any other TensorFlow op.

    cpu_devices > 1 splits the CPU into logical devices, so that `mirrored` runs without a GPU.
    """
    if cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker_mirrored":
        if not os.environ.get("TF_CONFIG"):
            raise StrategyError("multi_worker_mirrored: TF_CONFIG is not set; each worker needs it, e.g. "
                                '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                                '"task": {"type": "worker", "index": 0}}')
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name != "tpu":
        raise StrategyError(f"strategy {name!r}: expected one of {', '.join(STRATEGIES)}")
    if tpu and tpu.startswith("grpc://"):  # TensorFlow would wait for it forever
        host, _, port = tpu[len("grpc://"):].rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except (OSError, ValueError) as e:
            raise StrategyError(f"tpu {tpu}: cannot reach it ({e})") from None
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, OSError, tf.errors.OpError) as e:  # OSError: no Cloud metadata server to name it
        raise StrategyError(f"tpu {tpu!r}: no TPU there ({e})") from None
    return tf.distribute.TPUStrategy(resolver)


def distributed(batches):
    """Every worker reads all the data and keeps its replicas' share of each global batch.

    tf.data's default (AUTO) would give each worker its own files of a tfds split instead, and the
    workers would then disagree on the number of steps.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return batches.with_options(options)


def wait_for_every_worker(strategy):
    """A barrier: no worker leaves (or starts the next run) before the chief has written this one."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        tf.function(lambda: strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)),
                                            axis=None))()
