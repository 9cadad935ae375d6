"""Input pipelines: GLUE examples tokenised once, cached, batched with little padding.

SST-2's training sentences average about 13 WordPiece tokens: padding every batch to
128 would spend most of each step on padding. Training batches are therefore shuffled
over the whole epoch first, then grouped into length buckets as they arrive
(`bucket_by_sequence_length`), each batch padded to its bucket's boundary: little padding,
few distinct shapes, and an epoch order that stays random. Buckets 4 tokens wide pad SST-2
by 10% (16 wide: 38%) and trained fastest here (benchmarks/README.md); with XLA, where each
shape compiles once, wider buckets make fewer shapes.
`padding="fixed"` pads everything to `max_seq_length` instead (XLA, TPUs).
"""

import functools

import numpy as np
import tensorflow as tf

FEATURES = ("input_word_ids", "input_mask", "input_type_ids")
BUCKET_WIDTH = 4  # tokens between bucket boundaries


def tokenize(examples, task, preprocessor, *, batch_size=1024):
    """tfds-style examples -> one unpadded example each: int32 [seq] features, label, idx.

    Cached in memory: the first pass tokenises, every later epoch reads the cache.
    """

    def pack(batch):
        packed = preprocessor.pack_ragged([batch[field] for field in task.text_fields])  # (batch, (seq))
        return {**packed, "label": batch["label"], "idx": batch["idx"]}

    def densify(example):  # unbatched ragged rows come out as RaggedTensorSpec; batching needs TensorSpec
        ids = example["input_word_ids"]  # (seq,)
        return {"input_word_ids": ids, "input_mask": tf.ones_like(ids),
                "input_type_ids": example["input_type_ids"], "label": example["label"], "idx": example["idx"]}

    return (examples.batch(batch_size).map(pack, num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch().map(densify, num_parallel_calls=tf.data.AUTOTUNE).cache())


def bucket_boundaries(max_seq_length, width=BUCKET_WIDTH):
    """Boundaries for bucket_by_sequence_length: batches padded to width, 2*width, ..., max_seq_length."""
    return [*range(width + 1, max_seq_length + 1, width), max_seq_length + 1]


def batches_per_epoch(tokenized, batch_size, max_seq_length, *, padding="bucket", bucket_width=BUCKET_WIDTH):
    """How many batches `training_batches` makes of an epoch: the same every epoch.

    A bucket's examples are fixed by their lengths, whatever the shuffle, and each bucket ends
    its epoch with one partial batch at most.
    """
    _check_padding(padding, bucket_width)
    lengths = np.concatenate(list(tokenized.map(lambda e: tf.shape(e["input_word_ids"])[0])
                                  .batch(1 << 14).as_numpy_iterator()))
    if padding == "fixed":
        return -(-len(lengths) // batch_size)
    buckets = np.searchsorted(bucket_boundaries(max_seq_length, bucket_width), lengths, side="right")
    return int(sum(-(-count // batch_size) for count in np.bincount(buckets) if count))


def _split(example):
    return {name: example[name] for name in FEATURES}, example["label"]


def _split_with_teacher(teacher_outputs, example):
    features, label = _split(example)  # a batch: label [batch], idx [batch]
    teacher = tf.gather(teacher_outputs, example["idx"])  # (batch, outputs)
    return features, tf.concat([tf.cast(label, tf.float32)[:, None], teacher], axis=1)


def training_batches(tokenized, batch_size, max_seq_length, *, padding="bucket", bucket_width=BUCKET_WIDTH, seed=0,
                     epochs=1, start_step=0, shuffle_buffer=1 << 18, teacher_outputs=None):
    """`epochs` epochs of (features, label) batches one after another, from batch `start_step` on.

    Epoch e is shuffled by (seed, e) alone, so a run resumed at step s reads exactly the batches an
    uninterrupted run reads from its step s on (Keras' BackupAndRestore alone would replay the
    epoch's first batches).

    teacher_outputs: for distillation, a float32 array [max idx + 1, outputs], a teacher's output
    for each example by its `idx`. The label is then [batch, 1 + outputs]: the example's label
    followed by its own teacher output, looked up after shuffling and bucketing.
    """
    _check_padding(padding, bucket_width)
    first_epoch, skip = 0, start_step
    if start_step:
        first_epoch, skip = divmod(start_step, batches_per_epoch(tokenized, batch_size, max_seq_length,
                                                                 padding=padding, bucket_width=bucket_width))

    def epoch_batches(epoch):
        shuffled = tokenized.shuffle(shuffle_buffer, seed=seed * 100_000 + epoch, reshuffle_each_iteration=False)
        if padding == "fixed":
            return shuffled.padded_batch(batch_size, padded_shapes=_fixed_shapes(max_seq_length))
        boundaries = bucket_boundaries(max_seq_length, bucket_width)
        return shuffled.bucket_by_sequence_length(
            lambda example: tf.shape(example["input_word_ids"])[0], boundaries,
            [batch_size] * (len(boundaries) + 1), pad_to_bucket_boundary=True)

    # One dataset per epoch, seeded by Python ints: a tensor seed fails under a global seed of 0
    # (`--seed 0`), where TensorFlow compares the seed pair with (0, 0) in Python.
    per_epoch = [epoch_batches(e) for e in range(first_epoch, epochs)] or [epoch_batches(first_epoch).take(0)]
    batches = functools.reduce(tf.data.Dataset.concatenate, per_epoch).skip(skip)
    split = _split if teacher_outputs is None else functools.partial(
        _split_with_teacher, tf.constant(teacher_outputs, tf.float32))
    return batches.map(split, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def evaluation_batches(tokenized, batch_size, max_seq_length, *, padding="bucket", bucket_width=BUCKET_WIDTH):
    """(features, label) batches in the split's order; every example exactly once.

    With padding="bucket" each batch is padded to the multiple of `bucket_width` that covers
    its longest example, so evaluation sees the same few shapes as training.
    """
    _check_padding(padding, bucket_width)
    shapes = _fixed_shapes(max_seq_length) if padding == "fixed" else None
    batches = tokenized.padded_batch(batch_size, padded_shapes=shapes).map(_split)
    if padding == "bucket":
        def pad_to_bucket(features, label):
            seq = tf.shape(features["input_word_ids"])[1]
            target = tf.minimum(-(-seq // bucket_width) * bucket_width, max_seq_length)
            return {k: tf.pad(v, [[0, 0], [0, target - seq]]) for k, v in features.items()}, label
        batches = batches.map(pad_to_bucket)
    return batches.prefetch(tf.data.AUTOTUNE)


def _check_padding(padding, bucket_width):
    if padding not in ("bucket", "fixed"):
        raise ValueError(f"padding={padding!r}: expected 'bucket' or 'fixed'")
    if not isinstance(bucket_width, (int, np.integer)) or bucket_width < 1:
        raise ValueError(f"bucket_width={bucket_width!r}: expected a whole number of tokens >= 1")


def _fixed_shapes(max_seq_length):
    return {"input_word_ids": [max_seq_length], "input_mask": [max_seq_length],
            "input_type_ids": [max_seq_length], "label": [], "idx": []}
