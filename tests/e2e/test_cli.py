"""End-to-end: the polymodal command on a real corpus with the offline profile's real models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import run_cli


def search(db, *args):
    return json.loads(run_cli("search", *args, "--db", str(db), "--json").stdout)


def test_index_summary(indexed):
    root, _, _, summary = indexed
    files = [p for p in root.rglob("*") if p.is_file()]
    assert summary["indexed"] == len(files)
    assert summary["failed"] == []
    assert summary["profile"] == "offline"


def test_labelled_checks_are_in_the_top_3(indexed):
    """Every check query finds its file (and, for video, the right moment) in the top 3."""
    root, checks, db, _ = indexed
    assert len(checks) >= 7
    misses = []
    for check in checks:
        hits = search(db, check.query, "--limit", "3")
        want = str((root / check.file).resolve())
        ok = False
        for h in hits:
            if h["uri"] != want:
                continue
            if check.span is None:
                ok = True
            else:
                ok = h["start"] is not None and check.span[0] - 0.25 <= h["start"] and h["end"] <= check.span[1] + 0.25
            break
        if not ok:
            misses.append((check.query, check.file, [(Path(h["uri"]).name, h["start"]) for h in hits]))
    assert not misses


def test_json_hits_have_the_contract_shape(indexed):
    _, _, db, _ = indexed
    hits = search(db, "launch day", "--limit", "5")
    assert 1 <= len(hits) <= 5
    for h in hits:
        assert set(h) == {"id", "uri", "score", "modality", "start", "end", "snippet"}
        assert h["modality"] in {"image", "video", "audio", "text", "mesh"}
        if h["modality"] in ("image", "text", "mesh"):
            assert h["start"] is None and h["end"] is None
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    video = next(h for h in hits if h["modality"] == "video")
    assert 0 <= video["start"] < video["end"]
    assert "LAUNCH" in (video["snippet"] or "")


def test_modality_and_where_filters(indexed):
    _, _, db, _ = indexed
    only = search(db, "a cat", "--modality", "video,audio")
    assert only and {h["modality"] for h in only} <= {"video", "audio"}
    where = search(db, "a cat", "--where", '{"modality": "image"}')
    assert where and {h["modality"] for h in where} == {"image"}


def test_search_by_image_and_by_sound(indexed, tmp_path):
    from PIL import Image

    root, _, db, _ = indexed
    photo = Image.open(root / "photos" / "coffee.png")
    w, h = photo.size
    crop = tmp_path / "coffee-crop.jpg"
    photo.crop((w // 10, h // 10, w - w // 10, h - h // 10)).convert("RGB").save(crop, quality=85)
    hits = search(db, "--image", str(crop), "--limit", "3")
    assert Path(hits[0]["uri"]).name == "coffee.png"
    memo = root / "memos" / "shopping.wav"
    if memo.exists():
        hits = search(db, "--audio", str(memo), "--limit", "3")
        assert Path(hits[0]["uri"]).name == "shopping.wav"


def test_similar_by_id_and_by_file(indexed):
    root, _, db, _ = indexed
    cat = search(db, "a cat", "--limit", "1")[0]
    out = json.loads(run_cli("similar", cat["id"], "--db", str(db), "--json").stdout)
    assert out
    assert cat["id"] not in {h["id"] for h in out}  # the example itself is not recommended
    soup = root / "notes" / "tomato-soup.md"
    by_file = json.loads(run_cli("similar", str(soup), "--db", str(db), "--json", "--limit", "3").stdout)
    assert by_file
    assert str(soup.resolve()) not in {h["uri"] for h in by_file}  # the indexed example itself is left out
    cat_photo = root / "photos" / "chelsea.png"
    like_cat = json.loads(run_cli("similar", str(cat_photo), "--db", str(db), "--json", "--limit", "3").stdout)
    assert any(h["modality"] == "video" and h["start"] is not None and h["start"] < 8 for h in like_cat)


def test_info(indexed):
    root, _, db, _ = indexed
    info = json.loads(run_cli("info", "--db", str(db), "--json").stdout)
    assert info["documents"] == sum(info["per_modality"].values())
    assert info["per_modality"]["image"] == len(list((root / "photos").glob("*")))
    assert info["per_modality"]["video"] == 1
    assert info["profile"] == "offline"
    assert info["models"]["text"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["size_bytes"] > 0
    table = run_cli("info", "--db", str(db)).stdout
    assert "documents" in table and "MiniLM" in table


def test_readable_table(indexed):
    _, _, db, _ = indexed
    out = run_cli("search", "temple visit", "--db", str(db)).stdout
    assert "slideshow.mp4" in out
    assert "0:12-0:14" in out or "0:14-0:16" in out


def test_incremental_reindex_and_prune(corpus, tmp_path):
    root0, _ = corpus
    root = tmp_path / "media"
    shutil.copytree(root0 / "notes", root / "notes")
    shutil.copytree(root0 / "photos", root / "photos")
    db = tmp_path / "db"
    first = json.loads(run_cli("index", str(root), "--db", str(db), "--profile", "offline", "--json").stdout)
    n = first["indexed"]
    again = json.loads(run_cli("index", str(root), "--db", str(db), "--json").stdout)
    assert again == {**again, "indexed": 0, "skipped": n}
    note = root / "notes" / "tomato-soup.md"
    note.write_text("# Pea soup\n\nGreen peas, mint and stock.\n")
    changed = json.loads(run_cli("index", str(root), "--db", str(db), "--json").stdout)
    assert (changed["indexed"], changed["skipped"]) == (1, n - 1)
    assert Path(search(db, "green pea soup with mint", "--limit", "1")[0]["uri"]) == note.resolve()
    (root / "notes" / "bike-repair.txt").unlink()
    (root / "photos" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    pruned = json.loads(run_cli("index", str(root), "--db", str(db), "--prune", "--json").stdout)
    assert pruned["pruned"] == 1
    assert [f["path"] for f in pruned["failed"]] == [str((root / "photos" / "broken.png").resolve())]
    assert pruned["failed"][0]["reason"]
    info = json.loads(run_cli("info", "--db", str(db), "--json").stdout)
    assert info["documents"] == n - 1
    with pytest.raises(AssertionError, match="offline"):
        run_cli("index", str(root), "--db", str(db), "--profile", "clip")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["search", "cat", "--db", "{missing}"], "no polymodal store"),
        (["search", "", "--db", "{db}"], "query is empty"),
        (["search", "--db", "{db}"], "give words"),
        (["search", "cat", "--db", "{db}", "--where", "{not json"], "--where is not valid JSON"),
        (["search", "cat", "--db", "{db}", "--where", '{"size": {"$regex": "x"}}'], "unknown filter operator"),
        (["search", "cat", "--db", "{db}", "--modality", "smell"], "unknown modality"),
        (["search", "--image", "{missing}", "--db", "{db}"], "no such file"),
        (["search", "--image", "{corrupt}", "--db", "{db}"], "not a recognised image"),
        (["search", "cat", "--db", "{db}", "--limit", "0"], "--limit"),
        (["similar", "no-such-id", "--db", "{db}"], "neither a document id"),
        (["index", "{missing}", "--db", "{newdb}"], "no such file or directory"),
        (["info", "--db", "{missing}"], "no polymodal store"),
        (["search", "cat", "--db", "{corrupt_db}"], "store"),
    ],
)
def test_errors_are_one_clear_line(indexed, tmp_path, args, fragment):
    _, _, db, _ = indexed
    corrupt = tmp_path / "bad.png"
    corrupt.write_bytes(b"not an image at all")
    corrupt_db = tmp_path / "corrupt_db"
    corrupt_db.mkdir()
    (corrupt_db / "store.db").write_bytes(b"this is not sqlite" * 100)
    subs = {
        "{missing}": str(tmp_path / "nope"),
        "{db}": str(db),
        "{corrupt}": str(corrupt),
        "{newdb}": str(tmp_path / "newdb"),
        "{corrupt_db}": str(corrupt_db),
    }
    proc = run_cli(*[subs.get(a, a) for a in args], check=False)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "newdb").exists()  # nothing written half-way


def test_eval_and_plot_commands(indexed, tmp_path):
    root, checks, db, _ = indexed
    qrels = tmp_path / "qrels.jsonl"
    lines = []
    for c in checks:
        rel = {"uri": str(root / c.file)} | ({"start": c.span[0], "end": c.span[1]} if c.span else {})
        lines.append(json.dumps({"query": c.query, "relevant": [rel]}))
    qrels.write_text("\n".join(lines))
    configs = tmp_path / "configs.json"
    configs.write_text(json.dumps([{"name": "no keywords", "weights": {"bm25": 0}}]))
    out = json.loads(
        run_cli(
            "eval", "--db", str(db), "--qrels", str(qrels), "--k", "1,3", "--compare", str(configs), "--json"
        ).stdout
    )
    default, other = out["configs"]
    assert (default["name"], other["name"]) == ("default", "no keywords")
    assert default["queries"] == len(checks)
    assert default["overall"]["hit@3"] == 1.0  # the same checks as the top-3 test above
    assert set(default["per_modality"]) >= {"image", "video", "text"}
    table = run_cli("eval", "--db", str(db), "--qrels", str(qrels)).stdout
    assert "per modality" in table and "ndcg@10" in table
    png, page = tmp_path / "space.png", tmp_path / "space.html"
    res = json.loads(run_cli("plot", "--db", str(db), "--out", str(png), "--query", "a cat", "--json").stdout)
    assert png.exists() and res["points"] >= len(list(root.rglob("*.*"))) - 2
    run_cli("plot", "--db", str(db), "--out", str(page), "--space", "image")
    assert "<svg" in page.read_text()
    bad = run_cli("plot", "--db", str(db), "--out", str(tmp_path / "x.gif"), check=False)
    assert bad.returncode != 0 and "png or .html" in bad.stderr
