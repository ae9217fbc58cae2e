"""Shared fixtures: every test gets its own empty data cache and no mirror or offline flag."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_MIRROR = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_data(tmp_path, monkeypatch):
    """A fresh cache per test; the mirror and offline switches are off unless a test sets them."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LABUTILS_DATA_DIR", str(cache))
    monkeypatch.delenv("LABUTILS_DATA_MIRROR", raising=False)
    monkeypatch.delenv("LABUTILS_OFFLINE", raising=False)
    monkeypatch.setenv("LABUTILS_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    return cache


@pytest.fixture
def shared_mirror():
    """The course's real local mirror, when this checkout has one beside it."""
    import os

    configured = os.environ.get("LABUTILS_DATA_MIRROR_FOR_TESTS")
    path = Path(configured) if configured else SHARED_MIRROR
    if not path.is_dir():
        pytest.skip(f"no local data mirror at {path}")
    return path


class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate = False

    def log_message(self, *args):  # keep test output quiet
        pass

    def copyfile(self, source, outputfile):
        if self.server.truncate:
            # Announce the full length, send half, hang up: an interrupted download.
            payload = source.read()
            outputfile.write(payload[: len(payload) // 2])
            outputfile.flush()
            self.close_connection = True
            return
        super().copyfile(source, outputfile)


@pytest.fixture
def local_server(tmp_path):
    """Serve a folder on 127.0.0.1; yields (folder, base_url, server)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = lambda *args, **kwargs: _Handler(*args, directory=str(root), **kwargs)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.truncate = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
