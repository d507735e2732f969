"""3D mesh decoding with trimesh: OBJ, PLY, STL, GLB/GLTF, OFF become vertices and faces."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from polymodal.errors import MediaError, OptionalDependencyError
from polymodal.media.types import MeshData

__all__ = ["decode_mesh"]


def decode_mesh(data: bytes | Path, *, uri: str = "", file_type: str | None = None) -> MeshData:
    """Load a mesh (a scene is merged into one mesh; a point cloud has no faces).

    Raises:
        MediaError: unknown format or unreadable file.
    """
    try:
        import trimesh
    except ImportError:
        raise OptionalDependencyError.for_package("trimesh", "mesh", "3D mesh decoding") from None
    name = uri or (str(data) if isinstance(data, Path) else "")
    kind = (file_type or Path(name.split("?")[0]).suffix.lstrip(".")).lower() or None
    if kind is None:
        raise MediaError("unknown mesh format: pass file_type= (obj, ply, stl, glb, off)", uri=name)
    try:
        source = str(data) if isinstance(data, Path) else io.BytesIO(data)
        loaded = trimesh.load(source, file_type=kind, force="mesh", process=False)
    except Exception as exc:  # noqa: BLE001 - trimesh raises many unrelated types on bad input
        raise MediaError(f"cannot decode mesh: {exc}", uri=name) from exc
    vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float32)
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
    if len(vertices) == 0:
        raise MediaError("mesh has no vertices", uri=name)
    return MeshData(vertices=vertices, faces=faces)
