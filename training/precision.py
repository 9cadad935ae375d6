"""The Keras dtype policy a run trains in."""

import tensorflow as tf

POLICIES = {"float16": "mixed_float16", "bfloat16": "mixed_bfloat16", "float32": "float32"}


def choose_policy(name):
    """The Keras dtype policy for a `mixed_precision` setting (auto, float16, bfloat16, float32).

    auto: mixed_float16 on a CUDA GPU, mixed_bfloat16 on a CPU that computes bfloat16 natively
    (AVX-512 BF16 or AMX), float32 elsewhere, where bfloat16 would be emulated.
    """
    if name == "auto":
        if tf.config.list_physical_devices("GPU"):
            return "mixed_float16"
        return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"
    return POLICIES[name]


def cpu_has_bfloat16():
    try:
        with open("/proc/cpuinfo") as f:
            cpu_flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in cpu_flags or "amx_bf16" in cpu_flags
