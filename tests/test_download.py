"""Downloading Google's checkpoints, against an HTTP server on 127.0.0.1 serving a zip we make."""

import http.server
import os
import threading
import zipfile

import numpy as np
import pytest

import bert_keras
from bert_keras import download
from tf1_writer import write_tf1_checkpoint

NAME = "uncased_L-2_H-128_A-2"


class Server:
    """Serves one zip; `plan` lists what each request gets: 'ok', 'cut' (half, then close), 500, 404."""

    def __init__(self, payload):
        self.payload, self.plan, self.requests = payload, [], []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                action = server.plan.pop(0) if server.plan else "ok"
                server.requests.append((self.path, self.headers.get("Range"), action))
                if isinstance(action, int):
                    self.send_error(action)
                    return
                start = int(self.headers["Range"][6:-1]) if self.headers.get("Range") else 0
                body = server.payload[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if action == "cut" else body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/{NAME}.zip"


def make_zip(path, source, folder_in_zip):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(os.listdir(source)):
            z.write(os.path.join(source, name), os.path.join(folder_in_zip, name))
    return open(path, "rb").read()


@pytest.fixture
def served(tmp_path, monkeypatch):
    source = tmp_path / "source"
    write_tf1_checkpoint(str(source))
    server = Server(make_zip(tmp_path / "release.zip", source, NAME))  # Google's 2018 zips hold a folder
    monkeypatch.setitem(download.GOOGLE_CHECKPOINTS, NAME, server.url)
    monkeypatch.setattr(download, "RETRY_BACKOFF_S", 0.0)
    yield server, str(source), tmp_path / "checkpoints"
    server.httpd.shutdown()


def test_default_urls_are_googles():
    assert download.GOOGLE_CHECKPOINTS["uncased_L-12_H-768_A-12"] == \
        "https://storage.googleapis.com/bert_models/2018_10_18/uncased_L-12_H-768_A-12.zip"
    assert download.GOOGLE_CHECKPOINTS["uncased_L-4_H-256_A-4"] == \
        "https://storage.googleapis.com/bert_models/2020_02_20/uncased_L-4_H-256_A-4.zip"
    small = [n for n in download.GOOGLE_CHECKPOINTS if n.startswith("uncased_L-") and n != "uncased_L-24_H-1024_A-16"]
    assert len(small) == 24 and len(download.GOOGLE_CHECKPOINTS) == 27


def test_load_encoder_by_name_downloads_once(served):
    server, source, checkpoint_dir = served
    pretrained = bert_keras.load_encoder(NAME, checkpoint_dir=str(checkpoint_dir))
    assert pretrained.vocab_file == str(checkpoint_dir / NAME / "vocab.txt")
    ids = np.array([[2, 10, 3]], np.int32)
    x = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    np.testing.assert_array_equal(pretrained.encoder(x)["pooled_output"],
                                  bert_keras.load_encoder(source).encoder(x)["pooled_output"])
    assert sorted(os.listdir(checkpoint_dir)) == [NAME]  # the zip is gone once unpacked
    bert_keras.load_encoder(NAME, checkpoint_dir=str(checkpoint_dir))
    assert len(server.requests) == 1


def test_zip_without_a_folder(served, tmp_path):
    server, source, checkpoint_dir = served
    server.payload = make_zip(tmp_path / "flat.zip", source, "")  # as the 2020 small BERTs are packed
    assert os.path.isfile(os.path.join(download.download_checkpoint(NAME, str(checkpoint_dir)), "bert_config.json"))


def test_interrupted_download_resumes(served):
    server, _, checkpoint_dir = served
    server.plan = ["cut", 500, "cut"]
    download.download_checkpoint(NAME, str(checkpoint_dir), retries=4)
    ranges = [r for _, r, _ in server.requests]
    half = len(server.payload) // 2
    assert ranges[0] is None and ranges[1] == f"bytes={half}-"
    assert ranges[3] == f"bytes={half + (len(server.payload) - half) // 2}-"
    assert os.path.isfile(checkpoint_dir / NAME / ".complete")


def test_gives_up_after_retries_and_keeps_the_part(served):
    server, _, checkpoint_dir = served
    server.plan = [500, 500, 500]
    with pytest.raises(bert_keras.DownloadError, match=r"download failed after 3 attempts \(HTTP 500"):
        download.download_checkpoint(NAME, str(checkpoint_dir))
    assert not (checkpoint_dir / NAME).exists()


def test_not_found_fails_at_once(served):
    server, _, checkpoint_dir = served
    server.plan = [404]
    with pytest.raises(bert_keras.DownloadError, match=r"HTTP 404"):
        download.download_checkpoint(NAME, str(checkpoint_dir))
    assert len(server.requests) == 1


def test_corrupt_zip_is_removed_and_named(served):
    server, _, checkpoint_dir = served
    data = bytearray(server.payload)
    data[200:260] = bytes(60)  # damage compressed bytes of the first member
    server.payload = bytes(data)
    with pytest.raises(bert_keras.DownloadError, match=rf"{NAME}.zip: (corrupt member|not a valid zip)"):
        download.download_checkpoint(NAME, str(checkpoint_dir))
    assert os.listdir(checkpoint_dir) == []


def test_zip_missing_checkpoint_files(served, tmp_path):
    server, source, checkpoint_dir = served
    os.remove(os.path.join(source, "vocab.txt"))
    server.payload = make_zip(tmp_path / "partial.zip", source, NAME)
    with pytest.raises(bert_keras.DownloadError, match=r"holds no complete TF1 checkpoint \(missing \['vocab.txt'\]\)"):
        download.download_checkpoint(NAME, str(checkpoint_dir))
    assert not (checkpoint_dir / NAME).exists()


def test_unreachable_host_fails_fast(monkeypatch, tmp_path):
    import time
    monkeypatch.setitem(download.GOOGLE_CHECKPOINTS, NAME, "http://no-such-host.invalid/x.zip")
    start = time.monotonic()
    with pytest.raises(bert_keras.DownloadError, match=r"cannot reach the host"):
        download.download_checkpoint(NAME, str(tmp_path))
    assert time.monotonic() - start < 10
