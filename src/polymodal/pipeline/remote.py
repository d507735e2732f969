"""Steps in their own process: serve a step over HTTP, call it from a pipeline.

``serve_step(step)`` (or :class:`StepServer`, which can also run in a background thread)
exposes one step: ``POST /run`` takes a batch and answers the step's output, ``GET /health``
and ``GET /info`` describe it. Requests run concurrently in a thread pool, so a served Embed
step's dynamic batcher merges the items of concurrent requests into shared forward passes.
:class:`RemoteStep` is the client: a :class:`~polymodal.pipeline.steps.Step` like any other,
so a pipeline mixes local and remote steps freely.

Limits, defined: a request over ``max_body_bytes`` is answered 413, one over ``max_items``
400; beyond ``max_inflight`` concurrent requests the server answers 503 at once
(``BackendError(reason="overloaded")`` on the client) rather than queueing without bound. The
client's ``timeout`` applies to each network operation (connect, send, each read of the
answer); on expiry it raises ``BackendError(reason="timeout")``. The server does not learn of
a client that gave up: the call finishes there and the answer is dropped. Errors keep their
polymodal class across the hop (see :mod:`polymodal.pipeline.wire`); an unexpected exception
in the step is answered 500 with its type and message (a step server is an internal service,
and "which item failed, and why" is what its caller needs), never with a traceback.

Security follows ``polymodal serve``: loopback only unless an API key is set (or
``insecure=True``); the key is checked on every route but ``/health``. The server never imports
code a client names: documents are accepted only as the types given in ``doc_types``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from polymodal.doc.base import Doc
from polymodal.errors import BackendError, ConfigError, DeadlineExceeded, OptionalDependencyError
from polymodal.pipeline import wire
from polymodal.pipeline.steps import Step

__all__ = ["RemoteStep", "StepServer", "create_step_app", "serve_step"]


def create_step_app(
    step: Step,
    *,
    api_key: str | None = None,
    doc_types: Sequence[type[Doc]] = (),
    max_body_bytes: int = 64 << 20,
    max_items: int = 10_000,
    max_inflight: int = 64,
) -> Any:
    """The ASGI application serving ``step`` (wrapped in the body-size limit).

    Raises:
        OptionalDependencyError: FastAPI is not installed (``pip install 'polymodal[serve]'``).
    """
    try:
        from polymodal.pipeline._app import build_app
    except ImportError:
        raise OptionalDependencyError.for_package("fastapi", "serve", "Serving a pipeline step") from None
    return build_app(
        step,
        api_key=api_key,
        doc_types=doc_types,
        max_body_bytes=max_body_bytes,
        max_items=max_items,
        max_inflight=max_inflight,
    )


class StepServer:
    """A step served over HTTP, in this thread (:meth:`serve_forever`) or a background one.

    >>> # with StepServer(Embed(config), port=0) as server:   # a free loopback port
    >>> #     Pipeline([Decode(), RemoteStep(server.url), Index("./db")]).run(paths)

    Raises:
        ConfigError: a non-loopback host without an API key (pass ``insecure=True`` on a
            trusted network).
    """

    def __init__(
        self,
        step: Step,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        insecure: bool = False,
        doc_types: Sequence[type[Doc]] = (),
        max_body_bytes: int = 64 << 20,
        max_items: int = 10_000,
        max_inflight: int = 64,
    ) -> None:
        from polymodal.serve.security import is_loopback

        if not is_loopback(host) and api_key is None and not insecure:
            raise ConfigError(
                f"refusing to serve step {step.name!r} on {host} without an API key: give one "
                "(--api-key-file on the command line, api_key= in Python), or allow it with --insecure / "
                "insecure=True if this network is trusted"
            )
        self.step, self.host = step, host
        self.app = create_step_app(
            step,
            api_key=api_key,
            doc_types=doc_types,
            max_body_bytes=max_body_bytes,
            max_items=max_items,
            max_inflight=max_inflight,
        )
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError as exc:
            self._socket.close()
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.port: int = self._socket.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _uvicorn(self) -> Any:
        try:
            import uvicorn
        except ImportError:
            raise OptionalDependencyError.for_package("uvicorn", "serve", "Serving a pipeline step") from None
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off"))
        return self._server

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C)."""
        self._uvicorn().run(sockets=[self._socket])

    def start(self, *, timeout: float = 30.0) -> StepServer:
        """Serve in a background thread; returns once the server accepts connections.

        Raises:
            BackendError: the server did not start within ``timeout`` seconds.
        """
        server = self._uvicorn()
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, name=f"step-server:{self.step.name}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise BackendError(f"the server of step {self.step.name!r} did not start", backend="step server")
            time.sleep(0.01)
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop serving (requests in flight get up to ``timeout`` seconds to finish)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._socket.close()

    def __enter__(self) -> StepServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_step(step: Step, host: str = "127.0.0.1", port: int = 8700, **options: Any) -> None:
    """Serve ``step`` until interrupted (options as for :class:`StepServer`)."""
    StepServer(step, host=host, port=port, **options).serve_forever()


class RemoteStep:
    """A step run by a step server: sends each batch to ``url`` and returns its answer.

    Args:
        url: the server, such as ``http://127.0.0.1:8700``.
        timeout: seconds per network operation (None: wait forever).
        api_key: sent as ``Authorization: Bearer``.
        doc_types: document types accepted back besides those sent.
        format: ``auto`` (binary for documents of one type, else JSON), ``json`` or ``binary``.
        transport: an httpx transport (tests use ``httpx.ASGITransport``/``MockTransport``).
    """

    handles_timeout = True

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        timeout: float | None = 60.0,
        api_key: str | None = None,
        doc_types: Sequence[type[Doc]] = (),
        format: wire.Format = "auto",
        transport: Any = None,
    ) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise ConfigError(f"a remote step's URL must start with http:// or https://, got {url!r}")
        if format not in ("auto", "json", "binary"):
            raise ConfigError(f"format must be 'auto', 'json' or 'binary', got {format!r}")
        self.url = url.rstrip("/")
        self.name = name or f"remote@{self.url}"
        self.timeout = timeout
        self.format: wire.Format = format
        self.doc_types = {wire.type_name(t): t for t in doc_types}
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._transport = transport
        self._client: Any = None
        self._lock = threading.Lock()

    def _http(self) -> Any:
        try:
            import httpx
        except ImportError:
            raise OptionalDependencyError.for_package("httpx", "serve", "Remote pipeline steps") from None
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    base_url=self.url,
                    timeout=httpx.Timeout(self.timeout),
                    headers=self._headers,
                    transport=self._transport,
                )
            return self._client

    def run(self, batch: list[Any]) -> list[Any]:
        """Send ``batch`` to the server and return its output.

        Raises:
            BackendError: unreachable server, timeout (``reason="timeout"``), or a server-side
                failure; a polymodal error raised by the step comes back as its own class.
        """
        import httpx

        client = self._http()
        body, headers = wire.encode_items(batch, format=self.format)
        where = f"remote step {self.name!r} at {self.url}"
        try:
            response = client.post("/run", content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise DeadlineExceeded(
                f"{where}: no answer within {self.timeout}s", backend=where, reason="timeout", url=self.url
            ) from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"{where}: cannot reach it ({exc})", backend=where, url=self.url) from exc
        if response.status_code >= 400:
            raise wire.error_from_payload(response.status_code, response.content, where)
        allowed = {**self.doc_types, **wire.doc_types_in(batch)}
        return wire.decode_items(
            response.content,
            response.headers.get("content-type", wire.JSON),
            response.headers.get(wire.DOC_TYPE_HEADER),
            allowed,
        )

    def info(self) -> dict[str, Any]:
        """What the server says it serves (name, type, accepted document types)."""
        response = self._http().get("/info")
        if response.status_code >= 400:
            raise wire.error_from_payload(response.status_code, response.content, f"remote step at {self.url}")
        out: dict[str, Any] = response.json()
        return out

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
