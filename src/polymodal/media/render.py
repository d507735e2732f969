"""Seeing a 3D mesh the way an image model can: sampled point clouds and rendered views.

The renderer is a small z-buffered software rasteriser in numpy (flat Lambert shading, grey
on white), so it needs no GPU, display or OpenGL: meshes become ordinary RGB images that the
image embedders and labelers handle like photos.
"""

from __future__ import annotations

import numpy as np

from polymodal.media.types import MeshData

__all__ = ["render_views", "sample_points"]


def sample_points(mesh: MeshData, n: int = 2048, *, seed: int = 0) -> np.ndarray:
    """``n`` points on the surface (area-weighted), or the vertices of a point cloud."""
    rng = np.random.default_rng(seed)
    v, f = mesh.vertices.astype(np.float64), mesh.faces
    if len(f) == 0:
        idx = rng.choice(len(v), size=n, replace=len(v) < n)
        return v[idx].astype(np.float32)
    tri = v[f]
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    p = areas / areas.sum() if areas.sum() > 0 else None
    pick = rng.choice(len(f), size=n, p=p)
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    a, b, c = (1 - s), s * (1 - r2), s * r2
    pts = a[:, None] * tri[pick, 0] + b[:, None] * tri[pick, 1] + c[:, None] * tri[pick, 2]
    return np.asarray(pts, dtype=np.float32)


def _rotation(yaw: float, pitch: float) -> np.ndarray:
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return np.asarray(rx @ ry, dtype=np.float64)


def render_views(mesh: MeshData, *, size: int = 224, views: int = 3, pitch: float = 0.5) -> list[np.ndarray]:
    """``views`` HxWx3 uint8 images from evenly spaced angles around the vertical axis."""
    v = mesh.vertices.astype(np.float64)
    centre = (v.max(axis=0) + v.min(axis=0)) / 2
    scale = float(np.linalg.norm(v - centre, axis=1).max()) or 1.0  # inside the unit sphere at any angle
    v = (v - centre) / scale
    return [_render(v, mesh.faces, _rotation(2 * np.pi * k / views + 0.6, pitch), size) for k in range(views)]


def _render(v: np.ndarray, faces: np.ndarray, rot: np.ndarray, size: int) -> np.ndarray:
    img = np.full((size, size, 3), 255, np.uint8)
    p = v @ rot.T
    xy = (p[:, :2] * 0.45 + 0.5) * (size - 1)
    xy[:, 1] = size - 1 - xy[:, 1]
    depth = np.full((size, size), -np.inf)
    if len(faces) == 0:  # point cloud: splat points
        xs, ys = np.clip(xy.round().astype(int), 0, size - 1).T
        order = np.argsort(p[:, 2])
        img[ys[order], xs[order]] = 80
        return img
    tri = p[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norms = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = normals / np.where(norms == 0, 1, norms)
    light = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
    shade = 60 + 170 * np.abs(normals @ light)
    for fi in np.argsort(tri[:, :, 2].mean(axis=1)):  # back to front; z-buffer settles ties
        _fill(img, depth, xy[faces[fi]], tri[fi, :, 2], int(shade[fi]))
    return img


def _fill(img: np.ndarray, depth: np.ndarray, pts: np.ndarray, z: np.ndarray, value: int) -> None:
    x0, y0 = np.floor(pts.min(axis=0)).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
    h, w = depth.shape
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
    if x0 > x1 or y0 > y1:
        return
    ys, xs = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    (ax, ay), (bx, by), (cx, cy) = pts
    den = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
    if abs(den) < 1e-12:
        return
    l1 = ((by - cy) * (xs - cx) + (cx - bx) * (ys - cy)) / den
    l2 = ((cy - ay) * (xs - cx) + (ax - cx) * (ys - cy)) / den
    l3 = 1 - l1 - l2
    inside = (l1 >= -1e-6) & (l2 >= -1e-6) & (l3 >= -1e-6)
    zz = l1 * z[0] + l2 * z[1] + l3 * z[2]
    region = depth[y0 : y1 + 1, x0 : x1 + 1]
    win = inside & (zz > region)
    region[win] = zz[win]
    img[y0 : y1 + 1, x0 : x1 + 1][win] = value
