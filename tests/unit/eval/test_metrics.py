"""Ranking metrics: hand-computed cases, edge cases, and agreement with trec_eval on random runs.

The reference is ``pytrec_eval`` (package ``pytrec-eval-terrier``: Python bindings around the C
trec_eval that TREC, BEIR and MTEB use), plus scikit-learn's ``ndcg_score`` for the exponential
gain. Definitions aligned for the comparison (see each test):

* trec_eval ranks a run by score: we give strictly decreasing scores, so the order is ours.
* trec_eval's nDCG uses linear gain; exponential gain is checked by giving it ``2**g - 1`` as
  grades (integers for integer g, same ideal order), and against sklearn with the same gains.
* trec_eval's ``recip_rank`` has no cutoff: ``mrr@k`` is checked on the run cut at ``k``.
* A run cannot hold a key twice in trec_eval: our "a repeat keeps its slot but gains nothing"
  is checked by replacing each repeat with a fresh non-relevant key.
* Queries without a relevant item are ``nan`` here; they are left out of the comparison.
"""

import copy
import dataclasses
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from polymodal.errors import ConfigError
from polymodal.eval import (
    DEFAULT_METRICS,
    EvalResult,
    MetricSpec,
    average_precision,
    evaluate,
    hit_rate_at_k,
    ndcg_at_k,
    parse_metric,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
)

approx = pytest.approx

# a, b, c, d are relevant (z is judged non-relevant); x, y are unjudged. |relevant| = 4.
RANKED = ["a", "x", "b", "y", "c"]
QREL = {"a": 3, "b": 1, "c": 2, "d": 1, "z": 0}
LOG3 = math.log2(3)


# ---------------------------------------------------------------- hand-computed cases


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (1, 1 / 4),  # a
        (3, 2 / 4),  # a, b
        (5, 3 / 4),  # a, b, c; d never retrieved
        (10, 3 / 4),  # k past the end changes nothing
        (None, 3 / 4),
    ],
)
def test_recall(k, expected):
    assert recall_at_k(RANKED, QREL, k) == approx(expected)


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (1, 1 / 1),
        (2, 1 / 2),  # a, x
        (3, 2 / 3),  # a, x, b
        (5, 3 / 5),
        (10, 3 / 10),  # divides by k, not by the 5 returned (TREC convention)
        (None, 3 / 5),  # whole list: divides by len(ranked)
    ],
)
def test_precision(k, expected):
    assert precision_at_k(RANKED, QREL, k) == approx(expected)


def test_hit_rate():
    ranked = ["x", "y", "b"]
    assert hit_rate_at_k(ranked, QREL, 2) == 0.0  # x, y: nothing relevant
    assert hit_rate_at_k(ranked, QREL, 3) == 1.0  # b at rank 3
    assert hit_rate_at_k(ranked, QREL) == 1.0


def test_reciprocal_rank():
    ranked = ["x", "y", "b", "a"]
    assert reciprocal_rank(ranked, QREL) == approx(1 / 3)  # first relevant (b) at rank 3
    assert reciprocal_rank(ranked, QREL, 3) == approx(1 / 3)
    assert reciprocal_rank(ranked, QREL, 2) == 0.0  # cut before b
    assert reciprocal_rank(RANKED, QREL) == 1.0


def test_average_precision():
    # Relevant at ranks 1, 3, 5: precision there 1/1, 2/3, 3/5; divided by |relevant| = 4.
    assert average_precision(RANKED, QREL) == approx((1 + 2 / 3 + 3 / 5) / 4)  # 0.566667
    # Cut at 3: ranks 1 and 3 only, still divided by 4 (trec_eval map_cut), not by min(3, 4).
    assert average_precision(RANKED, QREL, 3) == approx((1 + 2 / 3) / 4)  # 0.416667
    assert average_precision(RANKED, QREL, 1) == approx(1 / 4)


def test_ndcg_exponential_graded():
    # Grades along RANKED[:3] = a, x, b: 3, 0, 1 -> gains 2^g - 1 = 7, 0, 1.
    # DCG@3 = 7/log2(2) + 0/log2(3) + 1/log2(4) = 7 + 0 + 0.5 = 7.5
    # Ideal grades 3, 2, 1, 1 -> top 3 gains 7, 3, 1:
    # IDCG@3 = 7 + 3/log2(3) + 1/2 = 7 + 1.892789 + 0.5 = 9.392789;  nDCG@3 = 0.798485
    assert ndcg_at_k(RANKED, QREL, 3) == approx(7.5 / (7 + 3 / LOG3 + 0.5))
    assert ndcg_at_k(RANKED, QREL, 3) == approx(0.7984848581)
    # Whole list: DCG = 7.5 + 3/log2(6) (c, grade 2, at rank 5) = 8.660558
    # IDCG over all four relevant = 7 + 3/log2(3) + 1/log2(4) + 1/log2(5) = 9.823466
    assert ndcg_at_k(RANKED, QREL) == approx((7.5 + 3 / math.log2(6)) / (7 + 3 / LOG3 + 0.5 + 1 / math.log2(5)))
    assert ndcg_at_k(RANKED, QREL) == approx(0.8816194387)


def test_ndcg_linear_graded():
    # Gains are the grades: DCG@3 = 3 + 0 + 1/2 = 3.5; IDCG@3 = 3 + 2/log2(3) + 1/2 = 4.761860
    assert ndcg_at_k(RANKED, QREL, 3, gain="linear") == approx(3.5 / (3 + 2 / LOG3 + 0.5))
    assert ndcg_at_k(RANKED, QREL, 3, gain="linear") == approx(0.7350069851)


def test_ndcg_gains_agree_on_binary_grades():
    rel = {"a": 1, "b": 1, "c": 0}
    ranked = ["x", "a", "c", "b"]
    # DCG = 1/log2(3) + 1/log2(5) = 0.630930 + 0.430677; IDCG = 1 + 1/log2(3) = 1.630930
    expected = (1 / LOG3 + 1 / math.log2(5)) / (1 + 1 / LOG3)
    assert ndcg_at_k(ranked, rel) == approx(expected)
    assert ndcg_at_k(ranked, rel, gain="linear") == approx(expected)


def test_ndcg_ties_in_ideal_ranking():
    rel = {"a": 2, "b": 2, "c": 1}
    # Either order of the two grade-2 items is ideal.
    assert ndcg_at_k(["a", "b", "c"], rel) == approx(1.0)
    assert ndcg_at_k(["b", "a", "c"], rel) == approx(1.0)
    assert ndcg_at_k(["b", "a"], rel, 2) == approx(1.0)  # c is not needed in the top 2
    # c, a, b: gains 1, 3, 3 -> 1 + 3/log2(3) + 3/2 = 4.392789; ideal 3 + 3/log2(3) + 1/2 = 5.392789
    assert ndcg_at_k(["c", "a", "b"], rel) == approx((1 + 3 / LOG3 + 1.5) / (3 + 3 / LOG3 + 0.5))
    assert ndcg_at_k(["c", "a", "b"], rel) == approx(0.8145672023)


# ---------------------------------------------------------------- edge cases

ALL = [recall_at_k, precision_at_k, hit_rate_at_k, reciprocal_rank, ndcg_at_k, average_precision]


def test_duplicates_count_once_but_keep_their_slot():
    rel = {"a": 1, "b": 1}
    ranked = ["a", "a", "b"]
    assert precision_at_k(ranked, rel, 2) == approx(1 / 2)  # slot 2 is a wasted repeat
    assert recall_at_k(ranked, rel, 2) == approx(1 / 2)
    assert precision_at_k(ranked, rel) == approx(2 / 3)
    # b at rank 3 with 2 distinct relevant seen: AP = (1/1 + 2/3) / 2 = 0.833333
    assert average_precision(ranked, rel) == approx((1 + 2 / 3) / 2)
    # DCG = 1 + 0 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) = 1.630930 -> 0.919721
    assert ndcg_at_k(ranked, rel) == approx(1.5 / (1 + 1 / LOG3))
    # Repeating a relevant item never pushes a metric past 1.
    assert recall_at_k(["a", "a", "a"], {"a": 1}) == 1.0
    assert precision_at_k(["a", "a", "a"], {"a": 1}) == approx(1 / 3)
    assert ndcg_at_k(["a", "a", "a"], {"a": 3}) == approx(1.0)
    assert average_precision(["a", "a", "a"], {"a": 1}) == approx(1.0)


def test_k_larger_than_the_list():
    rel = {"a": 1, "b": 1}
    assert precision_at_k(["a"], rel, 10) == approx(1 / 10)
    assert recall_at_k(["a"], rel, 10) == approx(1 / 2)
    assert average_precision(["a"], rel, 10) == approx(1 / 2)  # (1/1) / 2
    assert ndcg_at_k(["a"], rel, 10) == approx(1 / (1 + 1 / LOG3))  # 0.613147
    assert ndcg_at_k(["a"], rel, 10) == approx(0.6131471928)


@pytest.mark.parametrize("relevant", [{}, {"a": 0, "b": 0.0}, {"a": -1}])
@pytest.mark.parametrize("metric", ALL, ids=lambda f: f.__name__)
def test_no_relevant_item_is_nan_for_every_metric(metric, relevant):
    assert math.isnan(metric(["a", "b"], relevant, 5))
    assert math.isnan(metric([], relevant))


@pytest.mark.parametrize("metric", ALL, ids=lambda f: f.__name__)
def test_all_relevant_in_ideal_order_scores_one(metric):
    assert metric(["a", "b", "c"], {"a": 3, "b": 2, "c": 1}, 3) == approx(1.0)


@pytest.mark.parametrize("metric", ALL, ids=lambda f: f.__name__)
def test_empty_ranking_scores_zero(metric):
    assert metric([], {"a": 1}) == 0.0
    assert metric([], {"a": 1}, 5) == 0.0


def test_negative_grades_are_not_relevant_and_gain_nothing():
    rel = {"a": -2, "b": 1}
    assert recall_at_k(["a", "b"], rel) == 1.0
    assert precision_at_k(["a", "b"], rel) == approx(1 / 2)
    assert ndcg_at_k(["a", "b"], rel) == approx(1 / LOG3)  # b at rank 2; ideal has b alone at rank 1


def test_float_grades():
    # Exponential gain of grade 0.5: 2^0.5 - 1 = 0.414214; ranked b (0.5), a (1.5).
    # DCG = 0.414214 + (2^1.5 - 1)/log2(3) = 0.414214 + 1.153420; IDCG = 1.828427 + 0.414214/log2(3)
    g_lo, g_hi = 2**0.5 - 1, 2**1.5 - 1
    assert ndcg_at_k(["b", "a"], {"a": 1.5, "b": 0.5}) == approx((g_lo + g_hi / LOG3) / (g_hi + g_lo / LOG3))


@pytest.mark.parametrize("k", [0, -1, True, 1.5, "3"])
@pytest.mark.parametrize("metric", ALL, ids=lambda f: f.__name__)
def test_bad_k_raises(metric, k):
    with pytest.raises(ConfigError, match="k must be"):
        metric(["a"], {"a": 1}, k)


@pytest.mark.parametrize("ranked", ["abc", {"a": 0.9, "b": 0.1}])
def test_str_or_score_dict_as_ranking_raises(ranked):
    with pytest.raises(ConfigError, match="sequence of keys"):
        recall_at_k(ranked, {"a": 1})


@pytest.mark.parametrize("grade", [math.nan, math.inf])
def test_non_finite_grade_raises(grade):
    with pytest.raises(ConfigError, match="finite"):
        ndcg_at_k(["a"], {"a": grade})


def test_unknown_gain_raises():
    with pytest.raises(ConfigError, match="gain"):
        ndcg_at_k(["a"], {"a": 1}, gain="log")  # type: ignore[arg-type]


def test_inputs_are_not_mutated():
    ranked, rel = ["b", "a", "b"], {"a": 2, "b": 0}
    run, qrels = {"q": list(ranked)}, {"q": dict(rel)}
    before = copy.deepcopy((ranked, rel, run, qrels))
    for metric in ALL:
        metric(ranked, rel, 2)
    evaluate(run, qrels, ["ndcg@2", "map", "P@1"])
    assert (ranked, rel, run, qrels) == before


def test_tuples_work_as_rankings():
    assert recall_at_k(("a", "b"), {"b": 1}, 1) == 0.0


# ---------------------------------------------------------------- metric names


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("ndcg@10", MetricSpec("ndcg", 10)),
        ("nDCG@10", MetricSpec("ndcg", 10)),
        ("ndcg", MetricSpec("ndcg", None)),
        ("P@5", MetricSpec("precision", 5)),
        ("precision@5", MetricSpec("precision", 5)),
        ("recall@100", MetricSpec("recall", 100)),
        ("hit@1", MetricSpec("hit", 1)),
        ("hit_rate@3", MetricSpec("hit", 3)),
        ("success@3", MetricSpec("hit", 3)),
        ("mrr", MetricSpec("mrr", None)),
        ("MRR@10", MetricSpec("mrr", 10)),
        ("map", MetricSpec("map", None)),
        ("map@100", MetricSpec("map", 100)),
        (" map @ 100 ", MetricSpec("map", 100)),
    ],
)
def test_parse_metric(name, spec):
    assert parse_metric(name) == spec


def test_canonical_name():
    assert parse_metric("P@5").name == "precision@5"
    assert parse_metric("MRR").name == "mrr"


@pytest.mark.parametrize("name", ["bleu", "ndcg@", "ndcg@x", "ndcg@-1", "ndcg@0", "", "@5"])
def test_bad_metric_names_raise_listing_the_known_ones(name):
    with pytest.raises(ConfigError) as info:
        parse_metric(name)
    assert "ndcg@k" in str(info.value) or "k must be" in str(info.value)
    assert "mrr[@k]" in info.value.known


def test_evaluate_rejects_unknown_metric_with_known_list():
    with pytest.raises(ConfigError, match=r"unknown metric 'f1@3'; known: recall@k, precision@k"):
        evaluate({"q": ["a"]}, {"q": {"a": 1}}, ["ndcg@10", "f1@3"])


# ---------------------------------------------------------------- evaluate


def test_evaluate_hand_computed():
    run = {
        "q1": ["a", "x", "b"],  # rel a, b, c
        "q3": ["a"],  # judged, but nothing relevant: excluded
        "q4": ["a"],  # not in qrels: ignored, reported as unjudged
    }
    qrels = {
        "q1": {"a": 1, "b": 1, "c": 1},
        "q2": {"a": 1},  # missing from run: scores 0
        "q3": {"a": 0},
    }
    res = evaluate(run, qrels, ["recall@2", "P@2", "mrr", "map", "hit@1"])
    # q1: recall@2 = 1/3, P@2 = 1/2, rr = 1, AP = (1 + 2/3)/3 = 5/9, hit@1 = 1; q2: all 0.
    assert res.per_query["q1"] == approx({"recall@2": 1 / 3, "P@2": 1 / 2, "mrr": 1.0, "map": 5 / 9, "hit@1": 1.0})
    assert res.per_query["q2"] == {"recall@2": 0.0, "P@2": 0.0, "mrr": 0.0, "map": 0.0, "hit@1": 0.0}
    assert all(math.isnan(v) for v in res.per_query["q3"].values())
    assert "q4" not in res.per_query
    # Means over q1 and q2.
    assert res.means == approx({"recall@2": 1 / 6, "P@2": 1 / 4, "mrr": 1 / 2, "map": 5 / 18, "hit@1": 1 / 2})
    assert res["mrr"] == approx(0.5)
    assert res.num_queries == 2
    assert res.excluded == ("q3",)
    assert res.unjudged == ("q4",)
    assert res.metrics == ("recall@2", "P@2", "mrr", "map", "hit@1")
    assert res.gain == "exponential"


def test_evaluate_defaults_and_names():
    res = evaluate({"q": ["a"]}, {"q": {"a": 1}})
    assert res.metrics == DEFAULT_METRICS
    assert tuple(res.means) == DEFAULT_METRICS
    # A single name is one metric; repeated names are computed once; keys are spelled as asked.
    assert evaluate({"q": ["a"]}, {"q": {"a": 1}}, "P@1").metrics == ("P@1",)
    assert evaluate({"q": ["a"]}, {"q": {"a": 1}}, ["P@1", "P@1", "precision@1"]).metrics == ("P@1", "precision@1")


def test_evaluate_mixed_cutoffs_match_single_query_functions():
    run = {"q1": ["c", "a", "x", "b", "y", "d"], "q2": ["b", "b", "a"]}
    qrels = {"q1": {"a": 2, "b": 1, "d": 3}, "q2": {"a": 1, "b": 2}}
    res = evaluate(run, qrels, ["P@1", "ndcg@3", "recall", "map@2", "mrr@1"], gain="linear")
    for q in qrels:
        r, rel = run[q], qrels[q]
        assert res.per_query[q] == approx(
            {
                "P@1": precision_at_k(r, rel, 1),
                "ndcg@3": ndcg_at_k(r, rel, 3, gain="linear"),
                "recall": recall_at_k(r, rel),
                "map@2": average_precision(r, rel, 2),
                "mrr@1": reciprocal_rank(r, rel, 1),
            }
        )
    assert res.gain == "linear"


def test_evaluate_with_no_judged_query_gives_nan_means():
    res = evaluate({"q": ["a"]}, {"q": {}}, ["ndcg@10"])
    assert math.isnan(res.means["ndcg@10"])
    assert res.num_queries == 0
    assert res.excluded == ("q",)
    assert math.isnan(evaluate({}, {}, ["map"]).means["map"])


def test_evaluate_rejects_bad_gain():
    with pytest.raises(ConfigError, match="gain"):
        evaluate({}, {"q": {"a": 1}}, ["mrr"], gain="log")  # type: ignore[arg-type]


def test_eval_result_is_frozen():
    res = evaluate({"q": ["a"]}, {"q": {"a": 1}})
    assert isinstance(res, EvalResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.num_queries = 3  # type: ignore[misc]


# ---------------------------------------------------------------- against trec_eval and sklearn

POOL = [f"d{i:02d}" for i in range(30)]
CASES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])

rankings = st.lists(st.sampled_from(POOL), unique=True, max_size=25)
qrels_st = st.dictionaries(st.sampled_from(POOL), st.integers(0, 3), min_size=1, max_size=15).filter(
    lambda q: any(g > 0 for g in q.values())
)
cutoffs = st.integers(1, 30)


def _trec(ranked, rel, measures):
    """trec_eval's values for one query, the run given strictly decreasing scores (our order)."""
    pytrec_eval = pytest.importorskip("pytrec_eval", reason="reference: pip install pytrec-eval-terrier")
    run = {"q": {key: float(len(ranked) - i) for i, key in enumerate(ranked)}}
    return pytrec_eval.RelevanceEvaluator({"q": dict(rel)}, set(measures)).evaluate(run)["q"]


def _same(ours, theirs):
    assert ours == approx(theirs, rel=1e-12, abs=1e-12)


@CASES
@given(rankings, qrels_st, cutoffs)
def test_binary_metrics_match_trec_eval(ranked, rel, k):
    ref = _trec(ranked, rel, [f"P.{k}", f"recall.{k}", f"success.{k}", f"map_cut.{k}", "map", "recip_rank"])
    _same(precision_at_k(ranked, rel, k), ref[f"P_{k}"])
    _same(recall_at_k(ranked, rel, k), ref[f"recall_{k}"])
    _same(hit_rate_at_k(ranked, rel, k), ref[f"success_{k}"])
    _same(average_precision(ranked, rel, k), ref[f"map_cut_{k}"])
    _same(average_precision(ranked, rel), ref["map"])
    _same(reciprocal_rank(ranked, rel), ref["recip_rank"])


@CASES
@given(rankings, qrels_st, cutoffs)
def test_mrr_at_k_matches_trec_eval_on_the_cut_run(ranked, rel, k):
    _same(reciprocal_rank(ranked, rel, k), _trec(ranked[:k], rel, ["recip_rank"])["recip_rank"])


@CASES
@given(rankings, qrels_st, cutoffs)
def test_ndcg_linear_matches_trec_eval(ranked, rel, k):
    ref = _trec(ranked, rel, [f"ndcg_cut.{k}", "ndcg"])
    _same(ndcg_at_k(ranked, rel, k, gain="linear"), ref[f"ndcg_cut_{k}"])
    _same(ndcg_at_k(ranked, rel, gain="linear"), ref["ndcg"])


@CASES
@given(rankings, qrels_st, cutoffs)
def test_ndcg_exponential_matches_trec_eval_on_exponentiated_grades(ranked, rel, k):
    # Exponential gain is linear gain of 2^g - 1; the map keeps the ideal order and 0 -> 0.
    ref = _trec(ranked, {key: 2**g - 1 for key, g in rel.items()}, [f"ndcg_cut.{k}", "ndcg"])
    _same(ndcg_at_k(ranked, rel, k), ref[f"ndcg_cut_{k}"])
    _same(ndcg_at_k(ranked, rel), ref["ndcg"])


@settings(CASES, max_examples=200)  # sklearn validates its inputs on every call: slower
@given(rankings, qrels_st, cutoffs)
def test_ndcg_matches_sklearn(ranked, rel, k):
    # sklearn ranks every item it is given, so it sees the retrieved ones plus the unretrieved
    # relevant ones (needed for its ideal DCG) below them; the cut stays within the retrieved.
    from sklearn.metrics import ndcg_score

    keys = list(ranked) + [key for key, g in rel.items() if g > 0 and key not in ranked]
    assume(ranked and len(keys) > 1)
    k = min(k, len(ranked))
    scores = [[float(len(keys) - i) for i in range(len(keys))]]
    for gain, transform in [("exponential", lambda g: 2.0**g - 1), ("linear", float)]:
        truth = [[transform(max(rel.get(key, 0), 0)) for key in keys]]
        assert ndcg_at_k(ranked, rel, k, gain=gain) == approx(ndcg_score(truth, scores, k=k), rel=1e-9, abs=1e-12)


@CASES
@given(st.lists(st.sampled_from(POOL[:12]), max_size=25), qrels_st, cutoffs)
def test_repeats_score_like_fresh_non_relevant_items(ranked, rel, k):
    """Our duplicate rule, checked against trec_eval: a repeat is a wasted slot."""
    seen: set[str] = set()
    fresh = []
    for i, key in enumerate(ranked):
        fresh.append(f"repeat{i}" if key in seen else key)
        seen.add(key)
    ref = _trec(fresh, rel, [f"P.{k}", f"recall.{k}", f"map_cut.{k}", f"ndcg_cut.{k}", "recip_rank"])
    _same(precision_at_k(ranked, rel, k), ref[f"P_{k}"])
    _same(recall_at_k(ranked, rel, k), ref[f"recall_{k}"])
    _same(average_precision(ranked, rel, k), ref[f"map_cut_{k}"])
    _same(ndcg_at_k(ranked, rel, k, gain="linear"), ref[f"ndcg_cut_{k}"])
    _same(reciprocal_rank(ranked, rel), ref["recip_rank"])


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([f"q{i}" for i in range(8)]),
        st.tuples(rankings, st.dictionaries(st.sampled_from(POOL), st.integers(0, 3), max_size=10)),
        min_size=1,
    ),
    st.integers(1, 20),
)
def test_evaluate_means_match_trec_eval(queries, k):
    pytrec_eval = pytest.importorskip("pytrec_eval", reason="reference: pip install pytrec-eval-terrier")
    run = {q: r for q, (r, _) in queries.items() if r}  # empty rankings left out: missing queries
    qrels = {q: rel for q, (_, rel) in queries.items()}
    res = evaluate(run, qrels, [f"ndcg@{k}", f"P@{k}", f"recall@{k}", "map", "mrr"], gain="linear")

    judged = {q: rel for q, rel in qrels.items() if any(g > 0 for g in rel.values())}
    assert set(res.excluded) == set(qrels) - set(judged)
    assert res.num_queries == len(judged)
    assume(judged)
    trec_run = {q: {key: float(-i) for i, key in enumerate(run.get(q, []))} for q in judged}
    measures = {f"ndcg_cut.{k}", f"P.{k}", f"recall.{k}", "map", "recip_rank"}
    ref = pytrec_eval.RelevanceEvaluator(judged, measures).evaluate(trec_run)
    pairs = {f"ndcg@{k}": f"ndcg_cut_{k}", f"P@{k}": f"P_{k}", f"recall@{k}": f"recall_{k}"}
    pairs |= {"map": "map", "mrr": "recip_rank"}
    for ours, theirs in pairs.items():
        mean = pytrec_eval.compute_aggregated_measure(theirs, [ref[q][theirs] for q in judged])
        assert res.means[ours] == approx(mean, rel=1e-12, abs=1e-12)
        for q in judged:
            assert res.per_query[q][ours] == approx(ref[q][theirs], rel=1e-12, abs=1e-12)
