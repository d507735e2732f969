"""Qrels parsing, time-span matching, the evaluation runner and weight learning, on a small
store of synthetic documents (real fusion code, no models)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import polymodal as pm
from polymodal.eval.qrels import load_qrels, match_grade
from polymodal.eval.runner import evaluate_library, learn_weights, metric_names
from polymodal.library.profile import offline_profile
from polymodal.library.schema import TEXT_FIELDS, MediaItem, MediaSegment
from polymodal.library.search import LibrarySearch
from polymodal.search.multimodal import Channel, QueryVector


def write(tmp_path, lines):
    path = tmp_path / "qrels.jsonl"
    path.write_text("\n".join(json.dumps(x) if not isinstance(x, str) else x for x in lines))
    return path


def test_qrels_forms_and_paths(tmp_path):
    path = write(
        tmp_path,
        [
            {"id": "a", "query": "a cat", "relevant": ["photos/cat.png"]},
            "# comments and blank lines are fine",
            "",
            {"image": "q/bike.jpg", "relevant": [{"uri": "v/ride.mp4", "start": 12, "end": 20, "grade": 2}, "p/b.png"]},
            {"text": "hum", "relevant": [{"uri": "/abs/song.m4a"}]},
        ],
    )
    qs = load_qrels(path)
    assert [q.id for q in qs] == ["a", "2", "3"]
    assert [q.kind for q in qs] == ["text", "image", "text"]
    assert qs[0].relevant[0].uri == str(tmp_path / "photos" / "cat.png")
    assert qs[1].value == str(tmp_path / "q" / "bike.jpg")
    span = qs[1].relevant[0]
    assert (span.start, span.end, span.grade) == (12.0, 20.0, 2.0)
    assert qs[2].relevant[0].uri == "/abs/song.m4a"
    arr = tmp_path / "q.json"
    arr.write_text(json.dumps([{"query": "x", "relevant": ["f"]}]))
    assert load_qrels(arr)[0].id == "1"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('{"query": "x"}', "non-empty list"),
        ('{"query": "x", "image": "y", "relevant": ["f"]}', "exactly one"),
        ('{"query": "", "relevant": ["f"]}', "empty"),
        ('{"query": "x", "relevant": [{"uri": "f", "start": 3}]}', "both start and end"),
        ('{"query": "x", "relevant": [{"uri": "f", "start": 3, "end": 2}]}', "after its start"),
        ('{"query": "x", "relevant": [{"uri": "f", "grade": -1}]}', "non-negative"),
        ('{"query": "x", "relevant": ["f"], "colour": 1}', "unknown key"),
        ("{not json", "invalid JSON"),
    ],
)
def test_bad_qrels_name_the_line(tmp_path, line, fragment):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"query": "fine", "relevant": ["f"]}\n' + line + "\n")
    with pytest.raises(pm.FormatError) as info:
        load_qrels(path)
    assert fragment in str(info.value)
    assert ":2" in str(info.value)


def test_missing_qrels_file(tmp_path):
    with pytest.raises(pm.ConfigError, match="no qrels file"):
        load_qrels(tmp_path / "nope.jsonl")


def test_time_spans_match_overlapping_segments_once(tmp_path):
    q = load_qrels(write(tmp_path, [{"query": "x", "relevant": [{"uri": "/v.mp4", "start": 10, "end": 20}]}]))[0]
    used: set[str] = set()
    assert match_grade(q, "/v.mp4", 0, 10, used) == (None, 0.0)  # touching is not overlapping
    key, grade = match_grade(q, "/v.mp4", 18, 22, used)
    assert grade == 1.0
    assert key == q.relevant[0].key
    assert match_grade(q, "/v.mp4", 12, 14, used) == (None, 0.0)  # already credited
    assert match_grade(q, "/v.mp4", None, None, set()) == (None, 0.0)  # a moment needs a moment
    assert match_grade(q, "/w.mp4", 12, 14, set()) == (None, 0.0)


def test_metric_names():
    assert metric_names([1, 5]) == (
        "recall@1",
        "recall@5",
        "precision@1",
        "precision@5",
        "hit@1",
        "hit@5",
        "ndcg@1",
        "ndcg@5",
        "mrr",
        "map",
    )
    with pytest.raises(pm.ConfigError):
        metric_names([0])


# -- runner on a synthetic library ----------------------------------------------------------------
D = 8


def _unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


class FakeSearch(LibrarySearch):
    """LibrarySearch with query embeddings looked up in a table instead of a model."""

    def __init__(self, store, table):
        super().__init__(store, offline_profile())
        self.table = table

    def _embed_text(self, query):
        t, i = self.table[query]
        out = [
            QueryVector(Channel(f, self.weights.get(f, 1.0), "text_vec"), t) for f in ("text_vec", "segments.text_vec")
        ]
        out += [
            QueryVector(Channel(f, self.weights.get(f, 1.0), "image_vec"), i)
            for f in ("image_vec", "segments.image_vec")
        ]
        return out


@pytest.fixture
def library(tmp_path):
    rng = np.random.default_rng(0)
    store = pm.open(tmp_path / "db", schema=MediaItem, text_fields=TEXT_FIELDS)
    axes = np.eye(D)
    docs = [
        MediaItem(
            id=f"noise{i}",
            uri=f"/m/noise{i}.png",
            modality="image",
            name=f"noise{i}",
            text_vec=rng.normal(size=D),
            image_vec=rng.normal(size=D),
        )
        for i in range(30)
    ]
    # "cat": good image match, weak text; "note": good text match, no image
    docs.append(
        MediaItem(
            id="cat",
            uri="/m/cat.png",
            modality="image",
            name="cat",
            text_vec=_unit(axes[3] + 0.2 * axes[0]),
            image_vec=_unit(axes[1]),
        )
    )
    docs.append(
        MediaItem(
            id="note",
            uri="/m/note.md",
            modality="text",
            name="note",
            segments=[MediaSegment(text="x", text_vec=_unit(axes[0] + 0.1 * axes[4]))],
        )
    )
    docs.append(
        MediaItem(
            id="vid",
            uri="/m/v.mp4",
            modality="video",
            name="v",
            duration=20,
            segments=[
                MediaSegment(start=0, end=10, image_vec=rng.normal(size=D)),
                MediaSegment(start=10, end=20, image_vec=_unit(axes[2])),
            ],
        )
    )
    store.add(docs)
    table = {
        "find the note": (_unit(axes[0]), _unit(rng.normal(size=D))),
        "find the cat": (_unit(rng.normal(size=D)), _unit(axes[1])),
        "find the moment": (_unit(rng.normal(size=D)), _unit(axes[2])),
        "find both": (_unit(axes[0]), _unit(axes[1])),
    }
    qpath = tmp_path / "q.jsonl"
    qpath.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {"id": "note", "query": "find the note", "relevant": ["/m/note.md"]},
                {"id": "cat", "query": "find the cat", "relevant": ["/m/cat.png"]},
                {"id": "moment", "query": "find the moment", "relevant": [{"uri": "/m/v.mp4", "start": 10, "end": 20}]},
                {"id": "both", "query": "find both", "relevant": [{"uri": "/m/cat.png", "grade": 2}, "/m/note.md"]},
            ]
        )
    )
    yield FakeSearch(store, table), load_qrels(qpath)
    store.close()


def test_evaluation_overall_per_modality_and_worst(library):
    searcher, queries = library
    ev = evaluate_library(searcher, queries, ks=(1, 3))
    assert ev.overall.num_queries == 4
    assert ev.overall.per_query["note"]["recall@1"] == 1.0
    assert ev.overall.per_query["cat"]["mrr"] == 1.0
    assert ev.overall.per_query["moment"]["hit@1"] == 1.0  # the video's 10-20 s segment
    moment = next(o for o in ev.outcomes if o.query.id == "moment")
    assert (moment.hits[0].start, moment.hits[0].end) == (10.0, 20.0)
    assert set(ev.per_modality) == {"image", "text", "video"}
    assert ev.per_modality["video"].num_queries == 1
    worst = ev.worst("ndcg@3")
    assert worst == sorted(worst, key=lambda t: t[1])
    d = ev.as_dict()
    assert d["overall"]["map"] == pytest.approx(ev.overall["map"])


def test_weights_change_the_ranking_without_searching_again(library):
    searcher, queries = library
    scored = [searcher.collect(q.kind, q.value) for q in queries]
    text_only = evaluate_library(
        searcher, queries, ks=(1,), scored=scored, weights={"image_vec": 0, "segments.image_vec": 0}
    )
    image_only = evaluate_library(
        searcher, queries, ks=(1,), scored=scored, weights={"text_vec": 0, "segments.text_vec": 0, "bm25": 0}
    )
    assert text_only.overall.per_query["note"]["hit@1"] == 1.0
    assert image_only.overall.per_query["cat"]["hit@1"] == 1.0
    assert image_only.overall.per_query["note"]["hit@1"] == 0.0  # the note has no image: text is off


def test_learn_weights_reports_heldout(library):
    searcher, queries = library
    res = learn_weights(searcher, queries, metric="ndcg@3", holdout=0.25, grid=(0.0, 1.0, 2.0), rounds=2)
    assert res.train_after >= res.train_before
    assert len(res.heldout_ids) == 1 and len(res.train_ids) == 3
    assert not math.isnan(res.heldout_after)
    assert set(res.weights) >= {"text_vec", "image_vec", "bm25"}
    with pytest.raises(pm.ConfigError):
        learn_weights(searcher, queries[:2], metric="ndcg@3")
    with pytest.raises(pm.ConfigError):
        learn_weights(searcher, queries, metric="f1@3")
