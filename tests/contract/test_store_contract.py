"""The Store contract: every backend passes every test here (see conftest.BACKENDS).

Each test's docstring says what the contract is and where to look when a backend fails it.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime

import numpy as np
import pytest

import polymodal as pm
from polymodal.store import filters as flt

from .schemas import Clip, Segment, make_clips


@pytest.fixture
def store(make_store):
    s, _ = make_store(Clip)
    s.add(make_clips())
    return s


def requires(store, capability: str) -> None:
    """Skip, naming the capability, when a backend declares it lacks it (never fail half-way)."""
    if not getattr(store.capabilities, capability):
        if capability == "text":
            with pytest.raises(pm.UnsupportedOperation):  # the contract: it says so up front
                store.text_search("anything")
        pytest.skip(f"backend lacks capability: {capability}")


def brute(clips, q, *, field="embedding", metric="cosine", where=None, agg="max"):
    """Reference ranking computed here, independently of any backend."""
    parsed = flt.parse(where)
    scored = []
    for c in clips:
        if not flt.matches(parsed, c):
            continue
        vecs = [c.embedding] if field == "embedding" else [s.embedding for s in (c.segments or [])]
        vecs = [v for v in vecs if v is not None]
        if not vecs:
            continue
        sims = []
        for v in vecs:
            if metric == "cosine":
                sims.append(float(v @ q / (np.linalg.norm(v) * np.linalg.norm(q))))
            elif metric == "ip":
                sims.append(float(v @ q))
            else:
                sims.append(-float(np.linalg.norm(v - q)))
        scored.append((max(sims) if agg == "max" else float(np.mean(sims)), c.id))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return scored


# -- add / get / delete -------------------------------------------------------------------------
def test_get_returns_what_was_added(store):
    """Documents come back equal: nested docs, tensors, None, datetimes (fix: flatten/rebuild)."""
    clips = make_clips()
    got = store.get([c.id for c in clips])
    assert list(got) == clips
    assert isinstance(got, pm.DocList[Clip])
    assert store.get("c8") == clips[8]
    assert store.get("c8").thumb.dtype == np.uint8


def test_add_same_id_is_an_upsert(store):
    """Adding an existing id replaces the document; its old vectors and texts are gone."""
    before = store.count()
    old = store.get("c1")
    new = Clip(id="c1", title="replaced zebra", embedding=-old.embedding, segments=[])
    store.add(new)
    assert store.count() == before
    assert store.get("c1") == new
    if store.capabilities.text:
        assert [h.id for h in store.text_search("zebra")] == ["c1"]
        assert store.text_search("replaced zebra", where={"id": "nope"}) == []
    top = store.search(old.embedding, field="embedding", limit=len(make_clips()))
    assert top[-1].id == "c1"  # the negated vector is now the farthest
    hits = store.search(np.ones(8), field="segments.embedding", limit=100)
    assert "c1" not in {h.id for h in hits}


def test_add_duplicate_ids_in_one_batch_keeps_the_last(make_store):
    s, _ = make_store(Clip)
    s.add([Clip(id="x", title="first"), Clip(id="x", title="second")])
    assert s.count() == 1
    assert s.get("x").title == "second"


def test_delete_missing_is_not_an_error(store):
    """delete() ignores unknown ids and returns how many documents it removed."""
    assert store.delete(["c1", "nope", "c1"]) == 1
    assert store.delete("nope") == 0
    assert store.count() == len(make_clips()) - 1
    with pytest.raises(pm.NotFoundError):
        store.get("c1")
    assert "c1" not in {h.id for h in store.search(np.ones(8), field="embedding", limit=100)}
    if store.capabilities.text:
        assert "c1" not in {h.id for h in store.text_search("clip", limit=100)}


def test_get_missing_raises_not_found_listing_ids(store):
    with pytest.raises(pm.NotFoundError) as info:
        store.get(["c0", "zz1", "zz2"])
    assert "zz1" in str(info.value)
    assert isinstance(info.value, KeyError)
    assert info.value.ids == ["zz1", "zz2"]


def test_inputs_are_not_mutated(make_store):
    """add() and search() leave their arguments unchanged (fix: copy before normalising)."""
    s, _ = make_store(Clip)
    clips = make_clips(10)
    snapshot = copy.deepcopy(clips)
    s.add(clips)
    assert clips == snapshot
    q = np.arange(8, dtype=np.float32) + 1
    q0 = q.copy()
    s.search(q, field="embedding")
    assert np.array_equal(q, q0)
    clips[1].title = "changed after add"
    assert s.get("c1").title == snapshot[1].title  # the store holds its own copy


def test_iteration_and_batches_yield_everything(store):
    ids = {d.id for d in store}
    assert ids == {c.id for c in make_clips()}
    batches = list(store.iter_batches(7))
    assert sum(len(b) for b in batches) == len(ids)
    assert len(store) == len(ids)


def test_add_rejects_foreign_docs_and_bad_vectors_atomically(make_store):
    """A bad batch raises SchemaError and adds nothing."""
    s, _ = make_store(Clip)
    with pytest.raises(pm.SchemaError):
        s.add([{"id": "ok", "title": "fine"}, {"id": "bad", "title": "x", "embedding": [1, 2]}])
    with pytest.raises(pm.SchemaError):
        s.add([Clip(id="ok", title="fine"), Segment(start=0, end=1)])
    with pytest.raises(pm.SchemaError):
        s.add({"id": "x", "title": "a dict is not a batch"})
    assert s.count() == 0


# -- vector search ------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_vector_search_matches_brute_force(make_store, metric):
    """Top results equal an independent brute-force ranking for each metric."""
    s, _ = make_store(Clip, metric=metric)
    clips = make_clips()
    s.add(clips)
    rng = np.random.default_rng(5)
    for _ in range(5):
        q = rng.normal(size=8)
        want = brute(clips, q, metric=metric)[:5]
        got = s.search(q, field="embedding", limit=5)
        assert [h.id for h in got] == [i for _, i in want]
        assert [h.score for h in got] == pytest.approx([sc for sc, _ in want], rel=1e-4, abs=1e-5)
        assert all(h.field == "embedding" and h.match is None for h in got)


def test_exact_and_ann_agree_on_small_data(store):
    q = np.random.default_rng(1).normal(size=8)
    exact = [h.id for h in store.search(q, field="embedding", limit=5, exact=True)]
    ann = [h.id for h in store.search(q, field="embedding", limit=5, exact=False)]
    assert exact == ann


def test_nested_search_ranks_parents_by_best_segment(store):
    """A search over segments.embedding returns parents with their best segment and its times."""
    clips = make_clips()
    q = clips[6].segments[1].embedding
    hits = store.search(q, field="segments.embedding", limit=5)
    want = brute(clips, q, field="segments.embedding")[:5]
    assert [h.id for h in hits] == [i for _, i in want]
    top = hits[0]
    assert top.id == "c6"
    assert isinstance(top.match, Segment)
    assert top.match.id == "c6-s1"
    assert (top.start, top.end) == (2.0, 4.0)
    assert len({h.id for h in hits}) == len(hits)  # one hit per parent


def test_nested_search_mean_aggregation(store):
    clips = make_clips()
    q = np.random.default_rng(3).normal(size=8)
    want = brute(clips, q, field="segments.embedding", agg="mean")
    for exact in (True, False, None):
        hits = store.search(q, field="segments.embedding", limit=5, aggregate="mean", exact=exact)
        assert [h.id for h in hits] == [i for _, i in want[:5]]  # the exact mean ranking, not a subset of it
        assert [h.score for h in hits] == pytest.approx([s for s, _ in want[:5]], rel=1e-4, abs=1e-5)
        for h in hits:  # the match is the document's best segment
            segs = [s for s in h.doc.segments if s.embedding is not None]
            best = max(segs, key=lambda s: float(s.embedding @ q / np.linalg.norm(s.embedding)))
            assert h.match.id == best.id


def test_search_by_document_and_batch(store):
    clips = make_clips()
    by_doc = store.search(clips[3], limit=1, field="embedding")
    assert by_doc[0].id == "c3"
    qs = np.stack([clips[i].embedding for i in (2, 3, 5)])
    batch = store.search_batch(qs, field="embedding", limit=2)
    assert [r[0].id for r in batch] == ["c2", "c3", "c5"]
    assert all(len(r) == 2 for r in batch)


def pairs(hits):
    return [(h.id, h.score) for h in hits]


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_search_ids_is_search_without_documents(make_store, metric):
    """search_ids gives search's ranking as (id, score) pairs, for every plan (fix: the
    backend's _vector_search_ids, which must rank exactly like _vector_search)."""
    s, _ = make_store(Clip, metric=metric)
    s.add(make_clips())
    rng = np.random.default_rng(11)
    for _ in range(3):
        q = rng.normal(size=8).astype(np.float32)
        for exact in (True, False, None):
            got = s.search_ids(q, field="embedding", limit=5, exact=exact)
            want = pairs(s.search(q, field="embedding", limit=5, exact=exact))
            assert [i for i, _ in got] == [i for i, _ in want]
            assert [sc for _, sc in got] == pytest.approx([sc for _, sc in want], rel=1e-6, abs=1e-6)
            assert all(type(i) is str and type(sc) is float for i, sc in got)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"field": "embedding", "where": {"year": {"$gte": 2015}}},
        {"field": "embedding", "where": {"tags": "boats"}, "exact": False},
        {"field": "segments.embedding"},
        {"field": "segments.embedding", "aggregate": "mean"},
        {"field": "segments.embedding", "where": {"year": {"$lt": 2000}}},
    ],
    ids=str,
)
def test_search_ids_filters_and_nested(store, kwargs):
    q = np.random.default_rng(4).normal(size=8)
    got = store.search_ids(q, limit=4, **kwargs)
    want = pairs(store.search(q, limit=4, **kwargs))
    assert [i for i, _ in got] == [i for i, _ in want] and len(got) == 4
    assert [sc for _, sc in got] == pytest.approx([sc for _, sc in want], rel=1e-6, abs=1e-6)
    for again in store.search_ids_batch([q, q], limit=4, **kwargs):
        assert [i for i, _ in again] == [i for i, _ in got]
        assert [sc for _, sc in again] == pytest.approx([sc for _, sc in got], rel=1e-6, abs=1e-6)


def test_search_ids_sees_every_write(make_store):
    """Adds, replacements and deletes show in search_ids at once (fix: whatever the backend
    keeps in memory to answer it must follow this handle's writes)."""
    s, _ = make_store(Clip)
    s.add(make_clips())
    q = np.array([1, 0, 0, 0, 0, 0, 0, 0], np.float32)
    s.add(Clip(id="new", title="new", embedding=q * 3))
    assert s.search_ids(q, field="embedding", limit=1)[0][0] == "new"
    s.add(Clip(id="new", title="moved", embedding=-q))
    assert "new" not in [i for i, _ in s.search_ids(q, field="embedding", limit=3)]
    s.add(Clip(id="other", title="other", embedding=q * 2))
    s.delete(["new"])
    got = s.search_ids(-q, field="embedding", limit=100)
    assert "new" not in [i for i, _ in got] and "other" in [i for i, _ in got]
    assert [i for i, _ in got] == [h.id for h in s.search(-q, field="embedding", limit=100)]


def test_single_float32_query_scores_like_a_batch(store):
    """The single-query fast path checks and normalises exactly like the batch path."""
    qs = np.random.default_rng(8).normal(size=(3, 8)).astype(np.float32)
    _, rows = store._query_matrix(qs, "embedding")
    batch = store.search_batch(qs, field="embedding", limit=3)
    for i, (q, hits) in enumerate(zip(qs, batch, strict=True)):
        vf, one = store._query_matrix([q], "embedding")
        assert vf.path == "embedding" and one.dtype == np.float32 and one.shape == (1, 8)
        assert one.tobytes() == rows[i].tobytes()  # bit for bit what the batch path gives
        single = store.search(q, field="embedding", limit=3)
        assert [h.id for h in single] == [h.id for h in hits]
        assert [h.score for h in single] == pytest.approx([h.score for h in hits], rel=1e-6, abs=1e-6)


def test_limit_larger_than_collection_returns_all(store):
    with_vectors = sum(1 for c in make_clips() if c.embedding is not None)
    assert len(store.search(np.ones(8), field="embedding", limit=1000)) == with_vectors


def test_field_must_be_named_when_ambiguous(store):
    # Clip has a top-level and a nested vector field of the same dimension: the top-level wins
    assert store.search(np.ones(8), limit=1)[0].field == "embedding"
    with pytest.raises(pm.SchemaError, match="not a vector field"):
        store.search(np.ones(8), field="title")


@pytest.mark.parametrize(
    ("query", "error"),
    [
        (np.ones(3), pm.SchemaError),
        (np.array([1, 2, np.nan, 4, 5, 6, 7, 8]), pm.SchemaError),
        (np.array([np.inf] * 8), pm.SchemaError),
        (np.zeros(8), pm.SchemaError),
        ("a text", pm.ConfigError),
        (np.ones((2, 8)), pm.SchemaError),
    ],
)
def test_bad_queries_fail_clearly(store, query, error):
    with pytest.raises(error):
        store.search(query, field="embedding")
    with pytest.raises(error):
        store.search_ids(query, field="embedding")
    if isinstance(query, np.ndarray):  # float32, as models hand them: the single-query fast path
        with pytest.raises(error):
            store.search(query.astype(np.float32), field="embedding")
        with pytest.raises(error):
            store.search_ids(query.astype(np.float32), field="embedding")


def test_search_ids_checks_its_arguments(store):
    with pytest.raises(pm.ConfigError):
        store.search_ids(np.ones(8), field="embedding", limit=0)
    with pytest.raises(pm.ConfigError):
        store.search_ids(np.ones(8), field="embedding", aggregate="median")
    with pytest.raises(pm.SchemaError):
        store.search_ids(np.ones(8), field="title")
    with pytest.raises(pm.ConfigError):
        store.search_ids(np.ones(8), field="embedding", where={"year": {"$regex": "x"}})
    assert store.search_ids_batch([], field="embedding") == []


# -- filters -------------------------------------------------------------------------------------
FILTERS = [
    {"year": 2000},
    {"year": {"$gt": 2010}},
    {"year": {"$gte": 2010, "$lt": 2015}},
    {"rating": {"$lte": 2.0}},
    {"rating": None},
    {"rating": {"$ne": None}},
    {"rating": {"$exists": False}},
    {"draft": True},
    {"draft": {"$ne": True}},
    {"tags": "harbour"},
    {"tags": {"$in": ["boats", "forest"]}},
    {"tags": {"$nin": ["harbour"]}},
    {"tags": {"$exists": True}},
    {"meta.author": "a1"},
    {"meta.author": {"$in": ["a1", "a3"]}},
    {"title": {"$gte": "m"}},
    {"when": {"$gte": datetime(2020, 1, 10)}},
    {"segments.start": {"$gte": 4.0}},
    {"segments.transcript": "harbour talk 0"},
    {"$or": [{"year": {"$lt": 1995}}, {"draft": True}]},
    {"$and": [{"year": {"$gt": 1995}}, {"tags": {"$in": ["boats"]}}]},
    {"$not": {"year": {"$gt": 2000}}},
    {"year": {"$not": {"$gt": 2000}}},
    {"year": "2000"},  # a string never equals a number
    {"draft": 1},  # a number never equals a boolean
    {"id": {"$in": ["c1", "c2", "zz"]}},
    {"draft": {"$gt": False}},  # booleans have no order
    {"meta": None},
    {"meta": {"$exists": True}},  # an object (even an empty one) is a value
    {"tags": {"$exists": False}},  # an empty list is not
    {"when": {"$gte": "2020-01-10"}},  # text never compares with a datetime field
    {"when": {"$gte": datetime(2020, 1, 10, tzinfo=UTC)}},  # aware vs naive: no match
    {"when": {"$lt": date(2021, 1, 1)}},  # a date is not a datetime
    {"when": {"$ne": "2020-01-10T12:00:00"}},
]


@pytest.mark.parametrize("where", FILTERS, ids=lambda w: str(w)[:60])
def test_filter_semantics_match_the_reference(store, where):
    """count(where) equals the reference evaluation (fix: the backend's filter translation)."""
    clips = make_clips()
    parsed = flt.parse(where)
    want = {c.id for c in clips if flt.matches(parsed, c)}
    assert store.count(where) == len(want)
    if store.capabilities.text:
        hits = store.text_search("clip", limit=100, where=where)
        assert {h.id for h in hits} == want


@pytest.mark.parametrize("where", [{"year": {"$gte": 2015}}, {"tags": "boats"}, {"meta.author": "a3"}])
def test_filtered_search_returns_limit_when_limit_match(store, where):
    """A filtered search returns exactly `limit` hits whenever that many documents match,
    and they are the true top-k among them (no silent post-filtering)."""
    clips = make_clips()
    q = np.random.default_rng(9).normal(size=8)
    want = brute(clips, q, where=where)
    limit = min(5, len(want))
    for exact in (True, False, None):
        hits = store.search(q, field="embedding", limit=limit, where=where, exact=exact)
        assert [h.id for h in hits] == [i for _, i in want[:limit]]


def test_filtered_nested_search(store):
    clips = make_clips()
    q = np.random.default_rng(2).normal(size=8)
    where = {"year": {"$lt": 2000}}
    hits = store.search(q, field="segments.embedding", limit=4, where=where)
    want = brute(clips, q, field="segments.embedding", where=where)[:4]
    assert [h.id for h in hits] == [i for _, i in want]


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ({"year": {"$regex": "x"}}, pm.ConfigError),
        ({"$nor": [{"year": 1}]}, pm.ConfigError),
        ({"colour": "red"}, pm.SchemaError),
        ({"year": {"$in": 5}}, pm.ConfigError),
        ({"year": {"$gt": [1, 2]}}, pm.ConfigError),
        ({"$or": []}, pm.ConfigError),
        ({"$or": [{}]}, pm.ConfigError),
        ({"year": 2**63}, pm.ConfigError),
        ({"embedding": {"$exists": True}}, pm.SchemaError),
        ({"segments.embedding": None}, pm.SchemaError),
        ({"thumb": None}, pm.SchemaError),
        ("year = 5", pm.ConfigError),
    ],
)
def test_bad_filters_fail_clearly(store, where, error):
    with pytest.raises(error):
        store.count(where)
    with pytest.raises(error):
        store.search(np.ones(8), field="embedding", where=where)


# -- text and hybrid search ---------------------------------------------------------------------
def test_text_search_bm25(store):
    requires(store, "text")
    hits = store.text_search("mountain", limit=20)
    want = {
        c.id for c in make_clips() if "mountain" in c.title or any("mountain" in s.transcript for s in c.segments or [])
    }
    assert {h.id for h in hits} == want
    assert all(h.score > 0 for h in hits)
    assert hits == sorted(hits, key=lambda h: -h.score)
    assert all("[mountain]" in h.snippet for h in hits)


def test_text_search_field_mode_and_nested_match(store):
    requires(store, "text")
    only_titles = store.text_search("harbour", field="title", limit=50)
    assert all(h.field == "title" and h.match is None for h in only_titles)
    nested = store.text_search("talk", field="segments.transcript", limit=50)
    assert nested
    assert all(isinstance(h.match, Segment) and "talk" in h.match.transcript for h in nested)
    both = store.text_search("harbour talk", mode="all", limit=50)
    assert all("harbour" in (h.match.transcript if h.match else h.doc.title) for h in both)
    stem = store.text_search("boat", limit=50)  # stemming: "boat" finds "boats"
    assert any("boats" in h.doc.title for h in stem)


@pytest.mark.parametrize("text", ["", "   ", "!!!"])
def test_text_search_rejects_empty_queries(store, text):
    requires(store, "text")
    with pytest.raises(pm.ConfigError):
        store.text_search(text)


def test_text_search_is_safe_with_query_syntax(store):
    requires(store, "text")
    for text in ['"harbour', "harbour AND", "NEAR(", "title:harbour", "-harbour", "a*", "harbour OR"]:
        store.text_search(text)
    with pytest.raises(pm.ConfigError, match="no searchable words"):
        store.text_search("*")


@pytest.mark.parametrize("fusion", ["rrf", "weighted"])
def test_hybrid_search_fuses_both_sides(store, fusion):
    requires(store, "text")
    clips = make_clips()
    q = clips[16].embedding  # c16's title is "harbour clip 16"
    hits = store.hybrid_search(vector=q, text="harbour", field="embedding", limit=5, fusion=fusion)
    assert hits[0].id == "c16"
    assert set(hits[0].scores) == {"vector", "text"}
    assert hits == sorted(hits, key=lambda h: -h.score)
    text_only = store.hybrid_search(
        vector=q, text="harbour", field="embedding", limit=5, fusion="weighted", weights=(0.0, 1.0)
    )
    assert all("harbour" in h.doc.title or (h.snippet and "harbour" in h.snippet) for h in text_only)


# -- persistence and lifecycle ------------------------------------------------------------------
def test_reopened_store_answers_the_same(make_store):
    """Reopening (without a schema) gives the same documents and the same search results."""
    s, reopen = make_store(Clip)
    if reopen is None:
        pytest.skip("backend keeps nothing between opens (capability: persistence)")
    s.add(make_clips())
    q = np.random.default_rng(4).normal(size=8)
    before = [(h.id, round(h.score, 5)) for h in s.search(q, field="embedding", limit=7)]
    nested = [h.id for h in s.search(q, field="segments.embedding", limit=7)]
    text = [h.id for h in s.text_search("river", limit=7)] if s.capabilities.text else []
    s.set_setting("embedder", {"name": "test"})
    s2 = reopen(s)
    assert [(h.id, round(h.score, 5)) for h in s2.search(q, field="embedding", limit=7)] == before
    assert [h.id for h in s2.search(q, field="segments.embedding", limit=7)] == nested
    if s2.capabilities.text:
        assert [h.id for h in s2.text_search("river", limit=7)] == text
    assert s2.count() == len(make_clips())
    assert s2.get_setting("embedder") == {"name": "test"}
    assert s2.doc_type is Clip  # the original class is importable, so it is used
    assert s2.get("c9") == make_clips()[9]


def test_closed_store_refuses_calls(make_store):
    s, _ = make_store(Clip)
    s.close()
    s.close()
    with pytest.raises(pm.ConfigError, match="closed"):
        s.count()
    with pytest.raises(pm.ConfigError, match="closed"):
        s.add(Clip(title="x"))


def test_context_manager_closes(make_store):
    s, _ = make_store(Clip)
    with s as opened:
        opened.add(Clip(id="a", title="x"))
    with pytest.raises(pm.ConfigError):
        s.count()


def test_unsized_vector_fixes_dimension_on_first_add(make_store):
    class Free(pm.Doc):
        v: pm.Vector

    s, _ = make_store(Free)
    s.add([Free(id="a", v=[1, 0, 0]), Free(id="b", v=[0, 1, 0])])
    with pytest.raises(pm.SchemaError, match="dimension 3"):
        s.add(Free(id="c", v=[1, 2]))
    assert s.search([0, 1, 0], limit=1)[0].id == "b"
    with pytest.raises(pm.SchemaError):
        s.search([0, 1], limit=1)


def test_scan_reads_plain_fields(store):
    """scan() yields the requested top-level fields of every (matching) document, with id."""
    clips = {c.id: c for c in make_clips()}
    rows = list(store.scan(["title", "year", "draft", "rating"]))
    assert len(rows) == len(clips)
    for row in rows:
        c = clips[row["id"]]
        assert row == {"id": c.id, "title": c.title, "year": c.year, "draft": c.draft, "rating": c.rating}
        assert type(row["draft"]) is bool
    some = list(store.scan(["title"], where={"year": {"$lt": 1995}}))
    assert {r["id"] for r in some} == {c.id for c in clips.values() if c.year < 1995}
    nested = list(store.scan(["tags"]))
    assert {r["id"]: r["tags"] for r in nested} == {c.id: c.tags for c in clips.values()}
    with pytest.raises(pm.SchemaError):
        list(store.scan(["nope"]))


def test_sample_vectors_are_the_stored_ones(store):
    """sample_vectors() returns stored vectors as scored (unit length for cosine)."""
    clips = make_clips()
    want = np.stack([c.embedding / np.linalg.norm(c.embedding) for c in clips if c.embedding is not None])
    got = store.sample_vectors("embedding", n=1000)
    assert got.shape == want.shape
    assert np.allclose(np.sort(got, axis=0), np.sort(want, axis=0), atol=1e-6)
    few = store.sample_vectors("segments.embedding", n=5)
    assert few.shape == (5, 8)
    assert np.allclose(np.linalg.norm(few, axis=1), 1, atol=1e-5)


def test_extreme_values_are_stored(make_store):
    """Huge ints inside plain fields and huge (finite) vector components are data, not errors."""

    class Odd(pm.Doc):
        counts: dict[str, int] = {}
        v: pm.Vector[3]

    s, _ = make_store(Odd)
    doc = Odd(id="x", counts={"big": 2**70}, v=[3.0e38, 1.0, -3.0e38])
    s.add([doc, Odd(id="y", v=[0.0, 1.0, 0.0])])
    assert s.get("x") == doc
    hits = s.search([1.0, 0.0, -1.0], field="v", limit=2)
    assert hits[0].id == "x"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_filters_with_many_values(store):
    """$in/$nin with thousands of values work (no SQL size limit leaks out as an error)."""
    clips = make_clips()
    years = list(range(1000, 5000))
    assert store.count({"year": {"$in": years}}) == len(clips)
    assert store.count({"year": {"$nin": years}}) == 0
    ids = [f"c{i}" for i in range(0, 60, 3)] + [f"zz{i}" for i in range(2000)]
    assert store.count({"id": {"$in": ids}}) == 20
