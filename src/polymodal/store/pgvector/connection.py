"""Connections for the pgvector backend: URI parsing, a small pool, retries, error wrapping.

The pool is deliberately simple (idle connections in a list, a semaphore for the maximum):
a new connection is made on demand with libpq's own ``connect_timeout``, so a server that is
down fails in milliseconds with a :class:`~polymodal.errors.BackendError` naming the URI
without its password, rather than after a pool's wait for a background connector.

Every operation runs in one transaction on one pooled connection. Transient failures (the
connection refused, reset or closed by a restart, serialization failures, deadlocks, too many
connections) are retried with exponential backoff; every store operation is idempotent (an
upsert, a delete, a read), so re-running one whose COMMIT was lost with the connection leaves
the same state. Connections that broke are discarded, and idle ones too (after a restart they
are all dead).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

from polymodal.errors import BackendError, ConfigError

if TYPE_CHECKING:
    import psycopg

__all__ = ["Pool", "Target", "parse_uri", "redact"]

R = TypeVar("R")
S = TypeVar("S")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DEFAULT_COLLECTION = "polymodal"
# SQLSTATEs worth a retry: connection exceptions (08), shutdown/restart (57P01-3), too many
# connections (53300), serialization failure and deadlock (40001, 40P01).
_TRANSIENT_STATES = ("08", "57P01", "57P02", "57P03", "53300", "40001", "40P01")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a collection lives: libpq conninfo (the URI minus ``collection``), the collection
    name (the PostgreSQL schema holding its tables), the URI for messages (no password)."""

    conninfo: str
    collection: str
    display: str
    secrets: tuple[str, ...]


def parse_uri(uri: str, collection: str | None = None) -> Target:
    """Split ``postgresql://user:pass@host:port/db?collection=NAME&sslmode=...``.

    ``collection`` (query parameter or keyword) names the collection; the rest of the URI goes
    to libpq unchanged (``postgresql:///db?host=/run/postgresql`` for a Unix socket,
    ``sslmode=``, ``application_name=`` ...).
    """
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise ConfigError(f"a pgvector store URI starts with postgresql://, got {redact(uri)!r}")
    pieces = [p for p in parts.query.split("&") if p]
    in_uri = [unquote(p.partition("=")[2]) for p in pieces if p.partition("=")[0] == "collection"]
    rest = "&".join(p for p in pieces if p.partition("=")[0] != "collection")
    if len(in_uri) > 1 or (in_uri and collection is not None and in_uri[0] != collection):
        raise ConfigError(f"the collection is given twice, differently: {[*in_uri, collection]}")
    name = collection if collection is not None else (in_uri[0] if in_uri else DEFAULT_COLLECTION)
    if not _NAME.match(name) or name.startswith("pg_") or name in ("public", "information_schema"):
        raise ConfigError(
            f"collection {name!r} is not a usable name: use lower-case letters, digits and '_' "
            "(at most 63, not starting with a digit or 'pg_', not 'public')"
        )
    base = f"postgresql://{parts.netloc}{parts.path}"
    conninfo = f"{base}?{rest}" if rest else base
    found: list[str] = []
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    found += [unquote(p.partition("=")[2]) for p in pieces if p.partition("=")[0] == "password"]
    display = redact(f"{base}?{rest + '&' if rest else ''}collection={name}")
    return Target(conninfo, name, display, tuple(s for s in found if s))


def redact(uri: str) -> str:
    """The URI with its password (in the user part or a ``password=`` parameter) as ``***``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparsable URI>"
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = "&".join("password=***" if p.partition("=")[0] == "password" else p for p in parts.query.split("&") if p)
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Driver messages with any password in them masked (libpq does not echo passwords; this
    is a second line of defence, skipped for passwords so short that masking would garble)."""
    for secret in secrets:
        if len(secret) < 4:
            continue
        text = text.replace(secret, "***")
    return text


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the operation may succeed (connection trouble, serialization, deadlock)."""
    import psycopg

    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = getattr(exc, "sqlstate", None)
    return state is None or state.startswith(_TRANSIENT_STATES)


def is_connection_error(exc: BaseException) -> bool:
    import psycopg

    state = getattr(exc, "sqlstate", None)
    return isinstance(exc, psycopg.OperationalError) and (state is None or state.startswith(("08", "57P")))


class Pool:
    """At most ``size`` connections to one server, reused; made on demand, dropped when broken.

    Thread-safe: each caller gets its own connection for the duration of one operation.
    """

    def __init__(
        self,
        target: Target,
        *,
        size: int = 4,
        connect_timeout: float = 10.0,
        wait_timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.1,
    ) -> None:
        if size < 1:
            raise ConfigError(f"pool_size must be at least 1, got {size}")
        if retries < 0:
            raise ConfigError(f"retries must be 0 or more, got {retries}")
        self.target = target
        self.size = size
        self.connect_timeout = max(2, round(connect_timeout))  # libpq takes whole seconds, at least 2
        self.wait_timeout = wait_timeout
        self.retries = retries
        self.backoff = backoff
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    # -- connections ---------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg
        from psycopg.types.json import set_json_loads

        extra: dict[str, Any] = {"connect_timeout": self.connect_timeout}
        if "application_name=" not in self.target.conninfo:  # the URI's own name wins
            extra["application_name"] = "polymodal"
        conn = psycopg.connect(self.target.conninfo, autocommit=True, **extra)
        try:
            set_json_loads(_json_loads, conn)
            # pgvector's type and operators may live in a schema outside the search path
            conn.execute(
                "SELECT set_config('search_path', current_setting('search_path') || ', ' || quote_ident(n.nspname), "
                "false) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                "WHERE e.extname = 'vector' AND NOT n.nspname = ANY(current_schemas(false))"
            )
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one operation, returned to the pool afterwards when still healthy."""
        from psycopg import pq

        if self._closed:
            raise ConfigError("this store is closed; open it again with polymodal.open(...)")
        if not self._slots.acquire(timeout=self.wait_timeout):
            raise BackendError(
                f"all {self.size} connections to {self.target.display} stayed busy for {self.wait_timeout:.0f} s; "
                "raise pool_size= or wait_timeout=",
                backend="pgvector",
                uri=self.target.display,
            )
        conn: psycopg.Connection[Any] | None = None
        try:
            with self._lock:
                while self._idle and conn is None:
                    candidate = self._idle.pop()
                    if candidate.closed or candidate.broken:
                        continue
                    conn = candidate
            if conn is None:
                conn = self._connect()
            yield conn
        finally:
            healthy = (
                conn is not None
                and not conn.closed
                and not conn.broken
                and conn.info.transaction_status == pq.TransactionStatus.IDLE
            )
            if conn is not None:
                if healthy and not self._closed:
                    with self._lock:
                        self._idle.append(conn)
                else:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._slots.release()

    def flush(self) -> None:
        """Close every idle connection (after a connection error they are likely dead too)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        self._closed = True
        self.flush()

    # -- running operations --------------------------------------------------------------------
    def run(self, fn: Callable[[psycopg.Connection[Any]], R], *, write: bool, what: str, pipeline: bool = False) -> R:
        """``fn(conn)`` in one transaction, retried on transient errors, driver errors wrapped.

        Reads run in a read-only REPEATABLE READ transaction (one snapshot for a search and the
        documents it loads); writes in READ COMMITTED, serialized per collection by the caller.
        ``pipeline``: in libpq's pipeline mode, so ``BEGIN`` and the statements up to the first
        fetch travel in one round trip.
        """
        return cast("R", self._run(fn, None, write=write, what=what, pipeline=pipeline))

    def read_one(self, fn: Callable[[psycopg.Connection[Any]], R], *, what: str) -> R:
        """A read that is one statement (its own snapshot), run outside an explicit transaction:
        one round trip, where ``BEGIN`` ... ``COMMIT`` costs two more (or a pipeline's polling)."""
        return cast("R", self._run(fn, None, write=False, what=what, pipeline=False, transaction=False))

    def _run(
        self,
        fn: Callable[[psycopg.Connection[Any]], Any],
        then: Callable[[Any], Any] | None,
        *,
        write: bool,
        what: str,
        pipeline: bool,
        transaction: bool = True,
    ) -> Any:
        import psycopg

        attempt = 0
        while True:
            try:
                with self.connection() as conn:
                    if not transaction:
                        return fn(conn)
                    with _pipeline(conn, pipeline), _transaction(conn, write):
                        out = fn(conn)
                    return then(out) if then is not None else out
            except psycopg.Error as exc:
                if is_transient(exc) and attempt < self.retries:
                    if is_connection_error(exc):
                        self.flush()
                    time.sleep(self.backoff * (2**attempt))
                    attempt += 1
                    continue
                raise self.error(exc, what) from exc

    def error(self, exc: BaseException, what: str) -> BackendError:
        message = scrub(str(exc).strip() or type(exc).__name__, self.target.secrets)
        if is_connection_error(exc):
            text = f"pgvector: cannot reach PostgreSQL at {self.target.display} ({what}): {message}"
        else:
            text = f"pgvector: {what} failed on {self.target.display}: {message}"
        return BackendError(text, backend="pgvector", uri=self.target.display)


@contextlib.contextmanager
def _pipeline(conn: psycopg.Connection[Any], on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    with conn.pipeline():
        yield


@contextlib.contextmanager
def _transaction(conn: psycopg.Connection[Any], write: bool) -> Iterator[None]:
    conn.execute("BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        yield
    except BaseException:
        if not conn.closed and not conn.broken:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _json_loads(data: bytes | str) -> Any:
    """orjson for speed; the standard library for what orjson refuses (integers past 64 bits,
    which jsonb prints for large floats such as 1e300)."""
    import json

    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
