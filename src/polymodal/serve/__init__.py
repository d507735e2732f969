"""Serving a store over HTTP (FastAPI) and gRPC, with auth, limits and a search page."""

from polymodal.serve.service import Limits, SearchQuery, Service

__all__ = ["Limits", "SearchQuery", "Service"]
