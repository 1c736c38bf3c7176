"""benchmarks/dialects.py: the measures behind the dialect figures."""

from __future__ import annotations

import json

from benchmarks.dialects import DATA, answer_record, content_words, pubmed_strategies, retention, summarize_answers
from blockgen import parse


def test_content_words_skip_tags_suffixes_operators_and_line_syntax():
    assert content_words('"Malaria"[Mesh] OR rapid[tiab] AND (test$ adj3 kit).ti,ab. NOT or/1-3') == {"malaria", "rapid", "test", "kit"}


def test_retention_is_the_share_of_content_words_in_the_tree():
    assert retention("heart attack OR stroke", parse("heart OR stroke")) == 2 / 3
    assert retention("heart attack", None) == 0.0
    assert retention("AND OR", parse("a")) is None


def test_the_pubmed_strategies_file_cites_every_source():
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(pubmed_strategies()) >= 25
    assert all(r["source"] and r["url"].startswith("http") and r["query"].strip() for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)


def test_wrapper_words_become_terms_only_without_the_extraction():
    rec = answer_record(json.dumps({"query": "(heart OR cardiac) AND attack"}))
    assert rec["extracted"] == "json"
    assert rec["without_extraction"]["wrapper_terms"] == ["query"]
    assert rec["with_extraction"] == {"valid": True, "wrapper_terms": []}
    summary = summarize_answers("x", [rec])
    assert (summary["wrapper_terms_without_extraction"], summary["wrapper_terms_with_extraction"]) == (1, 0)
