"""The Qdrant store backend (``pip install 'polymodal[qdrant]'``).

``polymodal.open("qdrant://host:6333/clips", schema=Clip)`` for a server, or
``polymodal.open("qdrant+local://path/to/dir/clips", schema=Clip)`` for Qdrant's embedded local
mode (development and tests). The driver is imported when a store is opened, not here.
"""

from polymodal.store.qdrant.store import QdrantStore

__all__ = ["QdrantStore"]
