"""Stores: one contract (``Store``), an embedded default, an in-memory reference, a registry."""

from polymodal.store.base import Capabilities, Hit, Store, StoreConfig, VectorField
from polymodal.store.registry import known_backends, open_store

__all__ = ["Capabilities", "Hit", "Store", "StoreConfig", "VectorField", "known_backends", "open_store"]
