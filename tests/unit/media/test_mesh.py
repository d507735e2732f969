"""Mesh decoding: vertices (n, 3) float32 and triangle faces (m, 3) int64 from OBJ/PLY/STL/GLB."""

from __future__ import annotations

import base64
import sys

import numpy as np
import pytest

from polymodal import MediaError, Mesh3DBytes, Mesh3DUrl, MeshData, OptionalDependencyError
from polymodal.media.mesh import decode_mesh, mesh_file_type


def assert_unit_box(mesh: MeshData, n_vertices: int) -> None:
    assert isinstance(mesh, MeshData)
    assert mesh.vertices.dtype == np.float32
    assert mesh.faces.dtype == np.int64
    assert mesh.vertices.shape == (n_vertices, 3)
    assert mesh.faces.shape == (12, 3)
    assert mesh.faces.min() >= 0
    assert mesh.faces.max() < n_vertices
    np.testing.assert_allclose(mesh.vertices.min(axis=0), [-0.5] * 3, atol=1e-6)
    np.testing.assert_allclose(mesh.vertices.max(axis=0), [0.5] * 3, atol=1e-6)


@pytest.mark.parametrize("ext", ["obj", "ply", "glb"])
def test_box_with_shared_vertices(meshes, ext):
    assert_unit_box(Mesh3DUrl(meshes[ext]).load(), 8)


def test_stl_box_has_unshared_vertices(meshes):
    """STL stores three corners per triangle; decoding does not merge them (process=False)."""
    assert_unit_box(Mesh3DUrl(meshes["stl"]).load(), 36)


def test_point_cloud_has_points_and_no_faces(meshes):
    mesh = Mesh3DUrl(meshes["points"]).load()
    assert mesh.vertices.shape == (20, 3)
    assert mesh.faces.shape == (0, 3)
    assert mesh.faces.dtype == np.int64
    np.testing.assert_allclose(mesh.vertices, np.random.default_rng(0).random((20, 3)), atol=1e-6)


def test_scene_is_merged_with_node_transforms(tmp_path):
    """Two boxes, one moved 10 units along x by its scene node: 16 vertices, 24 faces, and the
    second box's faces point at its own vertices."""
    import trimesh

    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box(), node_name="a", geom_name="a")
    scene.add_geometry(
        trimesh.creation.box(),
        node_name="b",
        geom_name="b",
        transform=trimesh.transformations.translation_matrix([10, 0, 0]),
    )
    path = tmp_path / "scene.glb"
    scene.export(str(path))
    mesh = Mesh3DUrl(path).load()
    assert mesh.vertices.shape == (16, 3)
    assert mesh.faces.shape == (24, 3)
    assert mesh.vertices[:, 0].max() == pytest.approx(10.5)
    assert mesh.vertices[:, 0].min() == pytest.approx(-0.5)
    far = mesh.vertices[:, 0] > 5
    assert far.sum() == 8
    corner_is_far = far[mesh.faces]  # (24, 3): no triangle may join the two boxes
    assert (corner_is_far.all(axis=1) | ~corner_is_far.any(axis=1)).all()
    assert corner_is_far.all(axis=1).sum() == 12


def test_mesh_bytes_need_a_file_type(meshes):
    raw = meshes["obj"].read_bytes()
    assert_unit_box(Mesh3DBytes(raw).load(file_type="obj"), 8)
    with pytest.raises(MediaError, match="file_type="):
        Mesh3DBytes(raw).load()


@pytest.mark.parametrize(
    ("ext", "mime"),
    [("obj", "model/obj"), ("stl", "model/stl"), ("glb", "model/gltf-binary"), ("ply", "application/x-ply")],
)
def test_data_uri_format_comes_from_its_media_type(meshes, ext, mime):
    uri = f"data:{mime};base64," + base64.b64encode(meshes[ext].read_bytes()).decode()
    mesh = Mesh3DUrl(uri).load()
    assert mesh.faces.shape == (12, 3)


def test_data_uri_without_media_type_needs_a_file_type():
    uri = "data:,v%200%200%200%0Av%201.5%200%200%0Av%200%201%200%0Af%201%202%203%0A"
    with pytest.raises(MediaError, match="file_type="):
        Mesh3DUrl(uri).load()
    mesh = Mesh3DUrl(uri).load(file_type="obj")
    np.testing.assert_allclose(mesh.vertices, [[0, 0, 0], [1.5, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2]])


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("/data/box.OBJ", "obj"),
        ("relative/box.ply", "ply"),
        ("file:///tmp/a%20b.stl", "stl"),
        ("https://example.com/models/box.glb?version=2#top", "glb"),
        ("data:model/gltf-binary;base64,AAAA", "glb"),
        ("data:application/x-ply,ply", "ply"),
        ("data:model/vnd.off,OFF", "off"),
        ("data:,v 1.5 0 0", None),
        ("/data/no_suffix", None),
    ],
)
def test_mesh_file_type(uri, kind):
    assert mesh_file_type(uri) == kind


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ["garbage.obj", "empty.obj", "garbage.stl", "garbage.glb", "garbage.ply"])
def test_corrupt_mesh_gives_media_error_naming_the_file(corrupt, name):
    path = corrupt[name]
    with pytest.raises(MediaError) as info:
        Mesh3DUrl(path).load()
    assert info.value.uri == str(path)
    assert str(path) in str(info.value)


def test_unsupported_extension(corrupt):
    with pytest.raises(MediaError, match="not supported"):
        Mesh3DUrl(corrupt["random.png"]).load()


def test_missing_trimesh_names_the_extra(meshes, monkeypatch):
    monkeypatch.setitem(sys.modules, "trimesh", None)
    with pytest.raises(OptionalDependencyError) as info:
        Mesh3DUrl(meshes["obj"]).load()
    assert info.value.extra == "mesh"
    assert "pip install 'polymodal[mesh]'" in str(info.value)


def test_decode_mesh_accepts_paths(meshes):
    assert_unit_box(decode_mesh(meshes["obj"]), 8)
