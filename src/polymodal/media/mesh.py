"""3D mesh decoding with trimesh: OBJ, PLY, STL, GLB/GLTF, OFF become vertices and faces."""

from __future__ import annotations

import io
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.errors import OptionalDependencyError
from polymodal.media.source import data_uri_mime, media_error, scheme_of
from polymodal.media.types import MeshData

__all__ = ["decode_mesh", "mesh_file_type"]

#: Media types whose subtype is not the trimesh file type; others use the subtype itself
#: (``model/obj`` -> ``obj``, ``application/x-ply`` -> ``ply``).
_MIME_FILE_TYPES = {
    "model/gltf-binary": "glb",
    "model/gltf+json": "gltf",
    "application/sla": "stl",
    "application/vnd.ms-pki.stl": "stl",
    "model/x.stl-binary": "stl",
    "model/x.stl-ascii": "stl",
}


def mesh_file_type(uri: str) -> str | None:
    """The trimesh file type a URI implies: the media type of a data: URI, else the suffix of
    its path (ignoring any ``?query`` or ``#fragment`` of a URL); None when it says nothing."""
    scheme = scheme_of(uri)
    if scheme == "data":
        mime = data_uri_mime(uri)
        if not mime or "/" not in mime:
            return None
        subtype = mime.split("/", 1)[1]
        for prefix in ("x-", "x.", "vnd."):
            subtype = subtype.removeprefix(prefix)
        return _MIME_FILE_TYPES.get(mime, subtype) or None
    path = urllib.parse.urlparse(uri).path if scheme != "file" or uri[:5].lower() == "file:" else uri
    return Path(path).suffix.lstrip(".").lower() or None


def decode_mesh(data: bytes | Path, *, uri: str = "", file_type: str | None = None) -> MeshData:
    """Load a mesh: a scene is merged into one mesh (node transforms applied); a point cloud
    gives its points and no faces.

    Args:
        file_type: ``obj``, ``ply``, ``stl``, ``glb`` ... (default: from the URI's suffix or,
            for a data: URI, its media type).

    Raises:
        MediaError: unknown format, unreadable file, or no vertices; names the URI.
    """
    try:
        import trimesh
    except ImportError:
        raise OptionalDependencyError.for_package("trimesh", "mesh", "3D mesh decoding") from None
    name = uri or (str(data) if isinstance(data, Path) else "<bytes>")
    kind = (file_type or mesh_file_type(uri or (str(data) if isinstance(data, Path) else "")) or "").lower()
    if not kind:
        raise media_error(name, "unknown mesh format: pass file_type= (obj, ply, stl, glb, off)")
    try:
        source = str(data) if isinstance(data, Path) else io.BytesIO(data)
        loaded = trimesh.load(source, file_type=kind, process=False)
        vertices, faces = _flatten(loaded, trimesh)
    except Exception as exc:  # trimesh raises many unrelated types on bad input
        raise media_error(name, f"cannot decode mesh: {exc}") from exc
    if len(vertices) == 0:
        raise media_error(name, "mesh has no vertices")
    return MeshData(vertices=vertices, faces=faces)


def _flatten(loaded: Any, trimesh: Any) -> tuple[np.ndarray, np.ndarray]:
    """All triangles and points of a Trimesh, PointCloud or Scene, in world coordinates.

    trimesh's own ``force="mesh"`` drops point clouds entirely, so this walks the scene itself.
    Paths (2D/3D line drawings) carry no surface and are skipped.
    """
    parts: list[tuple[Any, np.ndarray | None]] = []
    if isinstance(loaded, trimesh.Scene):
        for node in loaded.graph.nodes_geometry:
            transform, geometry_name = loaded.graph[node]
            parts.append((loaded.geometry[geometry_name], np.asarray(transform, dtype=np.float64)))
    else:
        parts.append((loaded, None))
    all_vertices: list[np.ndarray] = []
    all_faces: list[np.ndarray] = []
    offset = 0
    for geometry, transform in parts:
        if not isinstance(geometry, (trimesh.Trimesh, trimesh.PointCloud)):
            continue
        vertices = np.asarray(geometry.vertices, dtype=np.float64).reshape(-1, 3)
        if transform is not None:
            vertices = vertices @ transform[:3, :3].T + transform[:3, 3]
        if isinstance(geometry, trimesh.Trimesh):
            all_faces.append(np.asarray(geometry.faces, dtype=np.int64).reshape(-1, 3) + offset)
        all_vertices.append(vertices)
        offset += len(vertices)
    vertices = np.concatenate(all_vertices) if all_vertices else np.zeros((0, 3))
    faces = np.concatenate(all_faces) if all_faces else np.zeros((0, 3), dtype=np.int64)
    return vertices.astype(np.float32), faces
