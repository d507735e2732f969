"""The whole polymodal exception hierarchy, in one place.

Every error raised on purpose by polymodal derives from :class:`PolymodalError`, and also from
the builtin exception a Python user would expect (``KeyError`` for a missing id, ``ImportError``
for a missing optional package ...), so ``except KeyError`` keeps working.

Errors carry their context as attributes and pickle cleanly, because they cross process pools
(``DocList.map(..., backend="process")``) and are mapped to HTTP/gRPC status codes in one place
(:data:`HTTP_STATUS`).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "HTTP_STATUS",
    "AuthenticationError",
    "BackendError",
    "ConfigError",
    "DeadlineExceeded",
    "FormatError",
    "MediaError",
    "NotFoundError",
    "OptionalDependencyError",
    "OverloadedError",
    "PolymodalError",
    "SchemaError",
    "StepError",
    "UnknownBackendError",
    "UnsupportedOperation",
    "http_status",
]


class PolymodalError(Exception):
    """Base class of every error polymodal raises on purpose.

    Keyword context (``field=``, ``uri=`` ...) is kept as attributes and survives pickling.
    """

    def __init__(self, message: str = "", **context: Any) -> None:
        super().__init__(message)
        self.message = message
        for key, value in context.items():
            setattr(self, key, value)
        self._context = context

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (type(self), self.message, self._context))

    def __str__(self) -> str:
        return self.message


def _rebuild_error(cls: type[PolymodalError], message: str, context: dict[str, Any]) -> PolymodalError:
    return cls(message, **context)


class ConfigError(PolymodalError, ValueError):
    """A configuration value, option or URI is invalid."""


class UnknownBackendError(ConfigError):
    """A store URI names a backend that is not registered; the message lists the known ones."""

    def __init__(self, message: str = "", *, scheme: str = "", known: tuple[str, ...] = (), **ctx: Any) -> None:
        super().__init__(message, scheme=scheme, known=tuple(known), **ctx)


class AuthenticationError(ConfigError):
    """A server refused the call: its API key is missing or wrong (HTTP 401, UNAUTHENTICATED)."""


class SchemaError(PolymodalError, TypeError, ValueError):
    """A value does not fit the schema: names the field, the expected and the actual type or shape.

    It is both a ``TypeError`` (the design's contract) and a ``ValueError`` (what pydantic users
    catch), so existing ``except ValueError`` blocks around validation keep working.
    """


class FormatError(SchemaError):
    """Serialized data is truncated, corrupt, or written by a newer format version."""


class MediaError(PolymodalError):
    """A media file or URI could not be read or decoded; names the URI and the decoder's words."""

    def __init__(self, message: str = "", *, uri: str = "", **ctx: Any) -> None:
        super().__init__(message, uri=uri, **ctx)


class NotFoundError(PolymodalError, KeyError):
    """A document id (or other key) does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable
        return self.message


class UnsupportedOperation(PolymodalError, NotImplementedError):
    """The backend lacks a capability the call needs; names the capability."""

    def __init__(self, message: str = "", *, capability: str = "", **ctx: Any) -> None:
        super().__init__(message, capability=capability, **ctx)


class OptionalDependencyError(PolymodalError, ImportError):
    """An optional package is missing; names the extra to install."""

    def __init__(self, message: str = "", *, package: str = "", extra: str = "", **ctx: Any) -> None:
        super().__init__(message, package=package, extra=extra, **ctx)

    @classmethod
    def for_package(cls, package: str, extra: str, purpose: str) -> OptionalDependencyError:
        """Build the standard message: what is missing, what for, and the command that fixes it."""
        return cls(
            f"{purpose} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'polymodal[{extra}]'",
            package=package,
            extra=extra,
        )


class BackendError(PolymodalError):
    """A storage backend failed; ``.backend`` names it. Always raised ``from`` the driver error."""

    def __init__(self, message: str = "", *, backend: str = "", **ctx: Any) -> None:
        super().__init__(message, backend=backend, **ctx)


class OverloadedError(BackendError):
    """Too much work is queued (a batcher's queue or a server's request slots are full); retry later."""


class DeadlineExceeded(BackendError, TimeoutError):
    """No result within the caller's timeout: queued work was dropped, running work's result discarded."""


class StepError(BackendError):
    """A pipeline step raised a non-polymodal exception; ``step``, ``item`` and ``index`` say where,
    ``__cause__`` is the original."""


#: HTTP status for each error class; the most specific class wins (see :func:`http_status`).
HTTP_STATUS: dict[type[BaseException], int] = {
    NotFoundError: 404,
    AuthenticationError: 401,
    SchemaError: 422,
    FormatError: 400,
    ConfigError: 400,
    MediaError: 422,
    UnsupportedOperation: 501,
    OptionalDependencyError: 501,
    OverloadedError: 503,
    DeadlineExceeded: 504,
    BackendError: 503,
    PolymodalError: 500,
}


def http_status(exc: BaseException) -> int:
    """The HTTP status code for ``exc``, following its class hierarchy (500 when unknown)."""
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
