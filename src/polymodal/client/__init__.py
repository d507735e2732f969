"""Python clients for a polymodal server: HTTP (:class:`Client`, :class:`AsyncClient`) and
gRPC (:class:`GrpcClient`, :class:`AsyncGrpcClient`), with the same methods and results.

* ``search``/``similar`` return hit dicts, the same shape over both protocols.
* ``add`` sends documents in the binary format, split into batches (``batch_size`` documents,
  halved again while a batch is over ``max_batch_bytes``), with an optional progress bar.
* Transient failures (connection errors, HTTP 502/503/504, gRPC UNAVAILABLE/DEADLINE_EXCEEDED)
  are retried ``retries`` times with exponential backoff and jitter; client mistakes (4xx,
  INVALID_ARGUMENT, NOT_FOUND ...) never are.
* Server errors come back as the matching polymodal error (``NotFoundError``, ``SchemaError``,
  ``ConfigError`` ...) with the server's message; a refused key is an :class:`AuthenticationError`.

>>> with Client("http://127.0.0.1:8000", api_key="...") as client:  # doctest: +SKIP
...     hits = client.search("a red bicycle", limit=5)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from polymodal.client._common import SearchArgs
from polymodal.client._common import SimilarArgs as SimilarArgs
from polymodal.client._grpc import AsyncGrpcClient, GrpcClient
from polymodal.client._http import BINARY as BINARY
from polymodal.client._http import AsyncClient, Client
from polymodal.errors import AuthenticationError

__all__ = ["AsyncClient", "AsyncGrpcClient", "AuthenticationError", "Client", "GrpcClient", "SearchArgs"]

# Backoff sleeps, read from here by the retry loops at each retry so that tests can record them.
_sleep: Callable[[float], None] = time.sleep
_asleep: Callable[[float], Awaitable[None]] = asyncio.sleep
