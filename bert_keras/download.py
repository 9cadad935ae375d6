"""Google's released BERT checkpoints: their URLs, and a resumable, checked download.

A checkpoint is downloaded once into `checkpoints/NAME/` (the zip resumes where an
interrupted download stopped, with a few retries), checked (size, zip CRCs, the files a
TF1 checkpoint needs) and unpacked; a `.complete` marker says it is whole.
"""

import http.client
import os
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
import zipfile

import tf_keras as keras

CHECKPOINT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "checkpoints")

_BASE = "https://storage.googleapis.com/bert_models/"
GOOGLE_CHECKPOINTS = {
    # BERT-Base and BERT-Large (Devlin et al., 2018).
    "uncased_L-12_H-768_A-12": _BASE + "2018_10_18/uncased_L-12_H-768_A-12.zip",
    "uncased_L-24_H-1024_A-16": _BASE + "2018_10_18/uncased_L-24_H-1024_A-16.zip",
    "cased_L-12_H-768_A-12": _BASE + "2018_10_18/cased_L-12_H-768_A-12.zip",
    "cased_L-24_H-1024_A-16": _BASE + "2018_10_18/cased_L-24_H-1024_A-16.zip",
    # The 24 smaller BERTs (Turc et al., 2019); their L-12/H-768 is BERT-Base above.
    **{f"uncased_L-{layers}_H-{hidden}_A-{hidden // 64}":
       _BASE + f"2020_02_20/uncased_L-{layers}_H-{hidden}_A-{hidden // 64}.zip"
       for layers in (2, 4, 6, 8, 10, 12) for hidden in (128, 256, 512, 768)
       if (layers, hidden) != (12, 768)},
}
REQUIRED_FILES = ("bert_config.json", "vocab.txt", "bert_model.ckpt.index")
_MARKER = ".complete"
RETRY_BACKOFF_S = 1.0  # doubled after each failed attempt


class DownloadError(RuntimeError):
    """A checkpoint that could not be downloaded or unpacked whole."""


def download_checkpoint(name, checkpoint_dir=None, *, retries=3, timeout=30):
    """The folder of Google's checkpoint `name`, downloaded and unpacked if need be."""
    if name not in GOOGLE_CHECKPOINTS:
        raise DownloadError(f"unknown checkpoint {name!r}; expected one of {', '.join(GOOGLE_CHECKPOINTS)}")
    checkpoint_dir = checkpoint_dir or CHECKPOINT_DIR
    target = os.path.join(checkpoint_dir, name)
    if os.path.isfile(os.path.join(target, _MARKER)):
        return target
    if os.path.exists(target):
        raise DownloadError(f"{target}: exists but is not a complete download (no {_MARKER}); "
                            "remove it to download again")
    os.makedirs(checkpoint_dir, exist_ok=True)
    url = GOOGLE_CHECKPOINTS[name]
    zip_path = os.path.join(checkpoint_dir, name + ".zip")
    _download(url, zip_path, retries=retries, timeout=timeout)
    _unpack(zip_path, target)
    os.remove(zip_path)
    return target


def _download(url, path, *, retries, timeout):
    """Downloads `url` to `path`, resuming `path.part` over interruptions."""
    part = path + ".part"
    for attempt in range(1, retries + 1):
        try:
            _fetch(url, part, timeout)
            os.replace(part, path)
            return
        except urllib.error.HTTPError as e:
            if e.code < 500:  # the URL is wrong or gone: retrying will not help
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
            error = f"HTTP {e.code} {e.reason}"
        except urllib.error.URLError as e:
            if isinstance(e.reason, socket.gaierror):  # no DNS: offline, fail at once
                raise DownloadError(
                    f"{url}: cannot reach the host ({e.reason}). Without network, download the zip "
                    "elsewhere, unpack it, and pass its folder instead of the name") from None
            error = str(e.reason)
        except (OSError, http.client.HTTPException, _Incomplete) as e:  # a dropped connection
            error = str(e)
        if attempt < retries:
            print(f"Download of {url} failed ({error}); retrying ({attempt}/{retries - 1})")
            time.sleep(RETRY_BACKOFF_S * 2 ** (attempt - 1))
    raise DownloadError(f"{url}: download failed after {retries} attempts ({error}); "
                        f"{part} keeps what arrived, and the next attempt resumes from it")


class _Incomplete(Exception):
    pass


def _fetch(url, part, timeout):
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if have and response.status != 206:  # the server ignored the range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        progress = keras.utils.Progbar(total, unit_name="B")
        with open(part, "ab" if have else "wb") as f:
            done = have
            while chunk := response.read(1 << 20):
                f.write(chunk)
                done += len(chunk)
                progress.update(done)
    if total is not None and done != total:
        raise _Incomplete(f"got {done} of {total} bytes")


def _unpack(zip_path, target):
    """Checks the zip and moves the folder holding the checkpoint files to `target`."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise DownloadError(f"{zip_path}: corrupt member {bad}")
            staging = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=".unpack-")
            archive.extractall(staging)
    except (zipfile.BadZipFile, OSError) as e:
        os.remove(zip_path)
        raise DownloadError(f"{zip_path}: not a valid zip ({e}); it was removed, download again") from None
    except DownloadError:
        os.remove(zip_path)
        raise
    try:
        folder = next((d for d, _, files in os.walk(staging) if "bert_config.json" in files), None)
        missing = [f for f in REQUIRED_FILES if folder is None or not os.path.isfile(os.path.join(folder, f))]
        if folder is None or missing or not any(f.startswith("bert_model.ckpt.data-") for f in os.listdir(folder)):
            raise DownloadError(f"{zip_path}: holds no complete TF1 checkpoint (missing "
                                f"{missing or ['bert_model.ckpt.data-*']})")
        os.replace(folder, target)
        open(os.path.join(target, _MARKER), "w").close()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
