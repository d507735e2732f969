"""A demo corpus indexed once per test session with the offline profile (real models)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the installed command line in a fresh process, the way a user would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "polymodal.cli", *args], capture_output=True, text=True, env=env, timeout=900
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"polymodal {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    from polymodal.library.demo import build_corpus

    root = tmp_path_factory.mktemp("demo") / "media"
    checks = build_corpus(root)
    return root, checks


@pytest.fixture(scope="session")
def indexed(corpus, tmp_path_factory):
    root, checks = corpus
    db = tmp_path_factory.mktemp("db") / "store"
    proc = run_cli("index", str(root), "--db", str(db), "--profile", "offline", "--json")
    return root, checks, db, json.loads(proc.stdout)
