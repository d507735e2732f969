"""Search composition: fusion of ranked lists, chunk-to-parent aggregation, recommendation."""

from polymodal.search.fusion import FusedItem, fuse, rrf, weighted

__all__ = ["FusedItem", "fuse", "rrf", "weighted"]
