"""Store options, shared by every backend: validated naming the option, and on reopening runtime
options apply while structural ones (what the indexes were built with) must not change."""

from __future__ import annotations

import pytest

import polymodal as pm
from polymodal.store.types import StoreConfig


def test_bad_option_names_the_option():
    with pytest.raises(pm.ConfigError, match="store option 'ef_search'") as info:
        StoreConfig.from_options({"ef_search": 0})
    assert info.value.option == "ef_search"
    with pytest.raises(pm.ConfigError, match="store option 'no_such'"):
        StoreConfig.from_options({"no_such": 1})


def test_reopening_applies_runtime_options_and_keeps_the_rest():
    saved = StoreConfig.from_options({"metric": "l2", "hnsw_m": 32, "ef_search": 50})
    assert saved.reopened({}) is saved
    again = saved.reopened({"ef_search": 200, "exact_threshold": 0, "hnsw_m": 32})
    assert (again.ef_search, again.exact_threshold) == (200, 0)
    assert (again.metric, again.hnsw_m) == ("l2", 32)


@pytest.mark.parametrize("options", [{"metric": "cosine"}, {"hnsw_m": 8}, {"text_fields": ["title"]}])
def test_reopening_refuses_a_different_structural_option(options):
    saved = StoreConfig.from_options({"metric": "l2"})
    with pytest.raises(pm.ConfigError, match="fixed when a collection is created"):
        saved.reopened(options, what="collection")


class Item(pm.Doc):
    v: pm.Vector[2] | None = None


def test_embedded_store_reopens_with_options(tmp_path):
    pm.open(tmp_path / "s", schema=Item, metric="ip").close()
    with pm.open(tmp_path / "s", ef_search=99) as store:
        assert (store.config.ef_search, store.config.metric) == (99, "ip")
    with pytest.raises(pm.ConfigError, match="metric"):
        pm.open(tmp_path / "s", metric="l2")
