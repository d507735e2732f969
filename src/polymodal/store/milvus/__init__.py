"""The Milvus store backend (``milvus://`` servers, ``milvus+lite://`` files); needs
``pip install 'polymodal[milvus]'``. See :mod:`polymodal.store.milvus.store`."""

from polymodal.store.milvus.store import MilvusStore

__all__ = ["MilvusStore"]
