"""Fuzz the HTTP API from its own OpenAPI spec (schemathesis): no request gets a 5xx, responses
fit the spec, and the store loses nothing.

Both stores of ``test_http`` are fuzzed: the generic one (vectors, nested documents, tensors)
and a copy of the indexed demo library (real models behind /search). Every call is checked;
a call that is refused (not 2xx) must leave the document count as it was, and after fuzzing
every original document is still stored, unchanged, unless a successful DELETE or upsert
through the API named it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from polymodal.serve.http import create_app  # noqa: E402
from polymodal.serve.service import SearchQuery, Service  # noqa: E402

from .test_http import AUTH, KEY, LIBRARY_LIMITS, generic_store  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Fuzzed:
    """A served store, what it held before fuzzing, and what the fuzzer changed through the API."""

    app: Any
    store: Any
    before: dict[str, Any]
    schema: Any = None
    deleted: set[str] = field(default_factory=set)
    upserted: set[str] = field(default_factory=set)
    calls: int = 0


def _fuzzed(app: Any, store: Any) -> Fuzzed:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)
    return Fuzzed(app, store, {doc.id: doc for doc in store}, schema)


@pytest.fixture(scope="module")
def generic_api(tmp_path_factory) -> Iterator[Fuzzed]:
    with generic_store(tmp_path_factory.mktemp("fuzz-generic")) as g:
        yield _fuzzed(create_app(g.service), g.store)


@pytest.fixture(scope="module")
def library_api(indexed, tmp_path_factory) -> Iterator[Fuzzed]:
    copy = tmp_path_factory.mktemp("fuzz-library") / "store"
    shutil.copytree(indexed[2], copy)
    service = Service.open(str(copy), api_key=KEY, limits=LIBRARY_LIMITS)
    service.search(SearchQuery(text="warm up"))  # load the models before the client's read timeout counts
    yield _fuzzed(create_app(service), service.store)
    service.store.close()


def _named_ids(case: Any) -> set[str]:
    """The ids a POST /docs body names (JSON only: generated binary bodies never decode)."""
    body = case.body
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            return set()
    docs = body.get("docs") if isinstance(body, dict) else body
    if not isinstance(docs, list):
        return set()
    return {d["id"] for d in docs if isinstance(d, dict) and isinstance(d.get("id"), str)}


def _call(fuzzed: Fuzzed, case: Any) -> None:
    """One generated request, with the checks, and the bookkeeping for "the store loses nothing"."""
    count = fuzzed.store.count()
    response = case.call(headers=AUTH)
    fuzzed.calls += 1
    case.validate_response(response, checks=CHECKS, headers=AUTH)
    ok = 200 <= response.status_code < 300
    if not ok:
        assert fuzzed.store.count() == count, f"a refused {case.method} {case.path} changed the store"
        return
    if case.method == "DELETE" and response.json().get("deleted"):
        fuzzed.deleted.add(case.path_parameters["doc_id"])
    elif case.method == "POST" and case.path == "/docs":
        fuzzed.upserted |= _named_ids(case)
        if not _named_ids(case) and response.json().get("added"):
            fuzzed.upserted.add("*")  # documents without ids: new ids, nothing replaced


def _lost(fuzzed: Fuzzed) -> list[str]:
    """Original documents that are gone or changed without the API being asked to."""
    touched = fuzzed.deleted | fuzzed.upserted
    lost = []
    for doc_id, doc in fuzzed.before.items():
        if doc_id in touched:
            continue
        try:
            now = fuzzed.store.get(doc_id)
        except KeyError:
            lost.append(f"{doc_id} (gone)")
            continue
        if now != doc:
            lost.append(f"{doc_id} (changed)")
    return lost


#: The documented operations (test_spec_paths_match_the_served_routes keeps this list honest).
OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("POST", "/search"),
    ("POST", "/search/file"),
    ("POST", "/similar"),
    ("POST", "/docs"),
    ("GET", "/docs/{doc_id}"),
    ("DELETE", "/docs/{doc_id}"),
    ("GET", "/media/{doc_id}"),
]
#: Negative cases (data that breaks the schema) for the operations that take a body: a path
#: parameter is any string, so nothing breaks it.
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if m == "POST"
]


def _fuzz(fuzzed: Fuzzed, method: str, path: str, mode: GenerationMode) -> None:
    """Run generated cases of one operation (schemathesis strategies under Hypothesis: its
    pytest loader ``from_fixture`` fails on pytest 9, 'Function' object has no attribute
    '_nodeid')."""
    operation = fuzzed.schema[path][method]

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        _call(fuzzed, case)

    run()


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_fuzz_generic_store(generic_api, method, path, mode):
    _fuzz(generic_api, method, path, mode)


def test_generic_store_lost_nothing(generic_api):
    if not generic_api.calls:
        pytest.skip("the fuzz tests did not run in this process")
    assert not _lost(generic_api)


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_fuzz_media_library(library_api, method, path, mode):
    _fuzz(library_api, method, path, mode)


def test_media_library_lost_nothing(library_api):
    if not library_api.calls:
        pytest.skip("the fuzz tests did not run in this process")
    assert not _lost(library_api)


def test_spec_paths_match_the_served_routes(generic_api):
    """Every documented operation exists (the fuzzer tests what the spec names)."""
    spec = generic_api.app.openapi()
    documented = {(p, m.upper()) for p, ops in spec["paths"].items() for m in ops}
    served = {
        (route.path.replace(":docid", ""), method)
        for route in generic_api.app.routes
        for method in getattr(route, "methods", ()) or ()
        if getattr(route, "include_in_schema", False) and method != "HEAD"
    }
    assert documented == served == {(p, m) for m, p in OPERATIONS}
