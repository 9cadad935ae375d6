"""`load`: one GLUE split as a tf.data.Dataset of tfds's feature dicts, from tfds or from GLUE's files.

Both sources give the same examples (tests/test_glue_tasks.py compares them on the real files), so
training and evaluation code never needs to know which one it got.
"""

import os
import urllib.parse

import requests
import tensorflow as tf
import tensorflow_datasets as tfds

from glue_tasks.readers import read_split
from glue_tasks.specs import TaskSpec, get_task

# tfds retries a failed download 10 times with backoff (about 200 s without a network); one quick
# request per host first lets `load` fail in seconds and say how to work offline instead.
_PROBE_TIMEOUT_S = 5


class DownloadUnavailableError(ConnectionError):
    """tfds would have to download GLUE's files from a host that cannot be reached."""


def load(task: "str | TaskSpec", split: str, *, data_dir: "str | None" = None, manual_dir: "str | None" = None,
         glue_dir: "str | None" = None) -> tf.data.Dataset:
    """One split of a GLUE task, in file order, as tfds gives it.

    Elements: {text field: tf.string scalar, ..., "label": int64 class id (float32 score for STS-B; -1 on
    test splits), "idx": int32}. Split names are tfds's (`spec.splits`).

    task: a tfds name ("sst2") or a GLUE name ("SST-2"), or a `TaskSpec`.
    data_dir: tensorflow-datasets' data folder (default ~/tensorflow_datasets); the task is built there
        on first use.
    manual_dir: a folder of GLUE's own download files (`spec.download_files`) to build from offline.
    glue_dir: instead of tfds, a folder in GLUE's download layout (<folder>/train.tsv, dev.tsv, test.tsv).
    """
    spec = get_task(task)
    spec.check_split(split)
    if glue_dir is None:
        return _from_tfds(spec, split, data_dir, manual_dir)
    if data_dir is not None or manual_dir is not None:
        raise ValueError("glue_dir reads GLUE's files directly; data_dir and manual_dir are for tfds only")
    features = read_split(spec, split, glue_dir)
    dtypes = {"label": tf.float32 if spec.is_regression else tf.int64, "idx": tf.int32}
    return tf.data.Dataset.from_tensor_slices(
        {name: tf.constant(values, dtypes.get(name, tf.string)) for name, values in features.items()})


def _from_tfds(spec: TaskSpec, split: str, data_dir: "str | None", manual_dir: "str | None") -> tf.data.Dataset:
    builder = tfds.builder(f"glue/{spec.tfds_name}", data_dir=data_dir)
    if not builder.is_prepared():
        _check_downloadable(spec, builder, manual_dir)
        # With a manual_dir the user wants an offline build: no detour to tfds's GCS mirror.
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=manual_dir, try_download_gcs=manual_dir is None))
    return builder.as_dataset(split=split, shuffle_files=False)


def _check_downloadable(spec: TaskSpec, builder: tfds.core.DatasetBuilder, manual_dir: "str | None") -> None:
    """Raise DownloadUnavailableError if a file tfds needs is neither in manual_dir nor reachable."""
    missing = [name for name in spec.download_files
               if manual_dir is None or not os.path.isfile(os.path.join(manual_dir, name))]
    hosts = {urllib.parse.urlsplit(url).netloc: url for url, info in builder.url_infos.items()
             if info.filename in missing}
    unreachable = sorted(host for host, url in hosts.items() if not _reachable(url))
    if unreachable:
        held = f", which manual_dir {manual_dir} lacks," if manual_dir is not None else " (no manual_dir was given)"
        raise DownloadUnavailableError(
            f"glue/{spec.tfds_name} is not prepared in {builder.data_dir_root} and cannot be built: tfds needs "
            f"{', '.join(missing)}{held} and cannot download it: {', '.join(unreachable)} cannot be reached. "
            f"To work offline, pass manual_dir=<folder holding {', '.join(spec.download_files)}> (GLUE's "
            f"download files) or glue_dir=<folder in GLUE's layout, with {spec.folder}/>.")


def _reachable(url: str) -> bool:
    try:
        requests.head(url, timeout=_PROBE_TIMEOUT_S, allow_redirects=False)
    except requests.RequestException:
        return False
    return True
