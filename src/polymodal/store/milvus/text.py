"""Words for Milvus full-text search: Porter stems made here, so that Milvus Lite (whose analyzer
only lowercases and splits) and a Milvus server index exactly the same terms, and snippets with the
query words in ``[brackets]``.

Texts are indexed as their space-separated stems; Milvus's ``BM25`` function turns those into
sparse vectors and scores them. Tokens are ``\\w+`` runs, lowercased, accents removed, then
stemmed with the Porter algorithm (what SQLite's ``porter`` tokenizer uses for the embedded store).

>>> stems("Boats in the Harbour!")
['boat', 'in', 'the', 'harbour']
>>> snippet("boats in the harbour", {"harbour"})
'boats in the [harbour]'
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Iterator, Set

__all__ = ["MAX_TERMS_BYTES", "snippet", "stem", "stems", "term_chunks"]

_WORD = re.compile(r"\w+", re.UNICODE)
_LOCAL = threading.local()
MAX_TERMS_BYTES = 60_000  # one Milvus VARCHAR holds 65,535 bytes; longer texts become several rows


def _stemmer() -> object:
    found = getattr(_LOCAL, "stemmer", None)
    if found is None:
        import snowballstemmer  # type: ignore[import-untyped]

        found = _LOCAL.stemmer = snowballstemmer.stemmer("porter")
    return found


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """One token's term: lowercased, accents removed, Porter-stemmed."""
    folded = unicodedata.normalize("NFKD", word.lower())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return str(_stemmer().stemWord(folded))  # type: ignore[attr-defined]


def stems(text: str) -> list[str]:
    """The terms of a text, in order."""
    return [stem(w) for w in _WORD.findall(text)]


def term_chunks(text: str) -> Iterator[str]:
    """A text's terms as space-separated strings, each short enough for one Milvus row."""
    chunk: list[str] = []
    size = 0
    for term in stems(text):
        n = len(term.encode()) + 1
        if chunk and size + n > MAX_TERMS_BYTES:
            yield " ".join(chunk)
            chunk, size = [], 0
        chunk.append(term)
        size += n
    if chunk:
        yield " ".join(chunk)


def snippet(text: str, terms: Set[str], width: int = 16) -> str:
    """Up to ``width`` words of ``text`` around the first query word, query words in brackets."""
    tokens = list(_WORD.finditer(text))
    if not tokens:
        return text
    hits = [i for i, m in enumerate(tokens) if stem(m.group()) in terms]
    start = 0
    if len(tokens) > width and hits:
        start = max(0, min(hits[0] - width // 4, len(tokens) - width))
    end = min(len(tokens), start + width)
    marked = set(hits)
    out: list[str] = ["…" if start > 0 else ""]
    pos = tokens[start].start()
    for i in range(start, end):
        m = tokens[i]
        out.append(text[pos : m.start()])
        out.append(f"[{m.group()}]" if i in marked else m.group())
        pos = m.end()
    out.append(text[pos:] if end == len(tokens) else "…")
    return "".join(out)
