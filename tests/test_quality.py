"""benchmarks.quality: the measures (pure functions, a stand-in embedder) and a smoke run without models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import quality
from blockgen import parse

VOCAB = tuple(sorted(["climate", "change", "depression", "depressive", "disorder", "misinformation", "news", "fake", "a"]))


def test_words_fold_case_and_accents_and_keep_wildcards():
    assert quality.words("Café COVID-19 depress* behavio?r") == ["cafe", "covid", "depress*", "behavio?r"]


@pytest.mark.parametrize("word, known", [
    ("climate", True), ("climat", False), ("depress*", True), ("depressive*", True), ("zzz*", False),
    ("disord?r", True), ("intratranskuble", False), ("prompted", True),
])
def test_a_word_is_known_from_the_list_or_the_prompt_and_a_stem_when_a_word_fits_it(word, known):
    assert quality.is_known(word, VOCAB, frozenset({"prompted"})) is known


def test_nonwords_count_words_outside_the_list_and_the_prompt():
    count, bad = quality.nonwords('(climate OR "conporat* tews") AND misinformation[tiab]', "climate", VOCAB)
    assert count == 4 and bad == ["conporat*", "tews"]


def test_strip_tags_and_term_keys():
    query = parse('("Acne Vulgaris"[Mesh] OR acne[tiab]) AND Acne')
    assert str(quality.strip_tags(query)) == '("Acne Vulgaris" OR acne) AND Acne'
    assert quality.term_keys('("Acne Vulgaris"[Mesh] OR acne[tiab]) AND Acne') == ["acne vulgaris", "acne"]
    assert quality.term_keys("not a (query") == ["not a (query"]


def test_precision_and_recall_with_truncation_on_either_side():
    p, r = quality.precision_recall(["depression", "sadness", "child*"], ["depress*", "children", "adult*"])
    assert (p, r) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert quality.precision_recall([], ["a"]) == (None, None)


def fake_embed(texts):
    """Vectors that only tell whether a text mentions climate."""
    return np.array([[1.0, 0.0] if "climate" in t.lower() else [0.0, 1.0] for t in texts])


def test_score_source_averages_ten_slots_and_counts_missing_candidates_as_zero(monkeypatch):
    monkeypatch.setattr(quality, "english_words", lambda: VOCAB)
    items = [quality.Item("sim4ia", "1", "climate change", "climate change news")]
    full = quality.score_source(items, {"1": ["climate OR change"] * 10}, fake_embed, 10)
    half = quality.score_source(items, {"1": ["climate OR change"] * 5}, fake_embed, 10)
    assert full["similarity"] == pytest.approx(1.0) and half["similarity"] == pytest.approx(0.5)
    assert full["term_precision"] == 1.0 and full["term_recall"] == pytest.approx(2 / 3)
    assert full["blocks"] == 1 and full["valid"] == 1 and full["repeat_share"] == 0
    repeated = quality.score_source(items, {"1": ["climate OR climate AND change"]}, fake_embed, 10)
    assert repeated["repeat_share"] == 1 and repeated["blocks"] == 2


def test_smoke_run_of_the_copy_row_writes_json_and_png(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(quality, "english_words", lambda: VOCAB)
    monkeypatch.setattr(quality, "load_items", lambda split, data: [
        quality.Item("clef", "CD1", "climate change", "(climate OR warming) AND change"),
        quality.Item("sim4ia", "1", "climate news", "climate news today")])
    import benchmarks.embeddings as embeddings

    monkeypatch.setattr(embeddings, "minilm_embed", fake_embed)
    assert quality.main(["--rows", "copy", "--out", str(tmp_path), "--quiet"]) == 0
    data = json.loads((tmp_path / "quality.json").read_text())
    assert data["results"]["copy"]["clef"]["similarity"] == pytest.approx(1.0)
    assert (tmp_path / "quality.png").stat().st_size > 0
    assert "CLEF TAR titles" in capsys.readouterr().out


def test_unknown_rows_are_a_clear_error(capsys):
    assert quality.main(["--rows", "copy,best"]) == 2
    assert "unknown row" in capsys.readouterr().err


def test_anchor_sweep_scores_each_setting_on_saved_candidates(tmp_path, monkeypatch, capsys):
    from benchmarks import anchor_sweep
    from tests.test_rerank import reranker

    monkeypatch.setattr(quality, "english_words", lambda: VOCAB)
    import benchmarks.embeddings as embeddings
    import blockgen.rerank as rerank

    monkeypatch.setattr(embeddings, "minilm_embed", fake_embed)
    monkeypatch.setattr(rerank, "default_reranker", reranker)
    monkeypatch.setenv("BLOCKGEN_BENCH_RESULTS", str(tmp_path))
    saved = tmp_path / "q.json"
    saved.write_text(json.dumps({
        "items": [{"source": "clef", "id": "CD1", "prompt": "climate change news", "reference": "climate OR warming"},
                  {"source": "sim4ia", "id": "1", "prompt": "fake news", "reference": "fake news today"}],
        "candidates": {"unanchored": {"CD1": ["(climate OR weather) AND news"], "1": ["fake AND news"]}}}))
    assert anchor_sweep.main([str(saved), "--direct=-1,1", "--max-alternatives", "1", "--n", "2"]) == 0
    rows = json.loads((tmp_path / "anchor_sweep.json").read_text())["rows"]
    assert [(r["direct"], r["max_alternatives"]) for r in rows] == [(-1.0, 1), (1.0, 1)]
    assert all(0 < r["clef_similarity"] <= 1 and r["sim4ia_blocks"] >= 1 for r in rows)
    assert anchor_sweep.main([str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
