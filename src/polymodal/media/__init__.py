"""Media decoding per modality. Submodules import their decoder (Pillow, PyAV, trimesh) lazily."""

from polymodal.media.types import AudioData, MeshData, VideoData

__all__ = ["AudioData", "MeshData", "VideoData"]
