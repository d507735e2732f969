"""`polymodal serve --workers N`: every worker process enforces the same key and options."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import numpy as np

import polymodal as pm


class Note(pm.Doc):
    text: str
    v: pm.Vector[4]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_workers_share_the_key(tmp_path):
    db = tmp_path / "db"
    store = pm.open(db, schema=Note)
    store.add([Note(id=f"n{i}", text=f"note {i}", v=np.eye(4)[i % 4]) for i in range(8)])
    store.close()
    key = "k" * 24
    key_file = tmp_path / "key"
    key_file.write_text(key)
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "polymodal.cli",
            "serve",
            "--db",
            str(db),
            "--port",
            str(port),
            "--workers",
            "2",
            "--api-key-file",
            str(key_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "POLYMODAL_API_KEY": ""},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # only a guard against a hung start
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise AssertionError(proc.stderr.read().decode() if proc.poll() is not None else "server did not start")
        # new connections spread over both workers: none of them may answer without the key
        for _ in range(8):
            assert httpx.get(f"{url}/ready", timeout=10).status_code == 401
            ok = httpx.get(f"{url}/ready", headers={"Authorization": f"Bearer {key}"}, timeout=10)
            assert ok.status_code == 200
            assert ok.json()["documents"] == 8
    finally:
        proc.terminate()
        proc.wait(timeout=30)
