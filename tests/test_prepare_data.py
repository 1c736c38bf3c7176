"""Tests for training/prepare_data.py on small synthetic fixtures (tests/fixtures/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from blockgen.parser import is_valid, parse
from blockgen.query import Or, Term, blocks, terms
from training.prepare_data import (
    DataError,
    Pair,
    dedupe_and_validate,
    load_thesaurus,
    main,
    parse_thesaurus,
    prepare,
    sim4ia_pairs,
    split_pairs,
    thesaurus_pairs,
    trim_query,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DATA = FIXTURES / "prepare_data"
THESAURUS = FIXTURES / "th_tiny.dat"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("prepared")
    stats = prepare(DATA, out, seed=0, max_thesaurus=8, thesaurus_path=THESAURUS, heldout_sim4ia=1, heldout_clef=2)
    return out, stats


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_no_topic_is_in_two_splits(prepared):
    out, _ = prepared
    train = {r["topic"] for r in read_jsonl(out / "train.jsonl")}
    valid = {r["topic"] for r in read_jsonl(out / "valid.jsonl")}
    held = {p["topic"] for p in json.loads((out / "heldout.json").read_text())["prompts"]}
    assert train and valid and held
    assert not train & valid and not train & held and not valid & held


def test_heldout_lists_whole_sessions_and_topics(prepared):
    out, _ = prepared
    held = json.loads((out / "heldout.json").read_text())
    assert len(held["sim4ia_sessions"]) == 1 and len(held["clef_topics"]) == 2
    rows = read_jsonl(out / "train.jsonl") + read_jsonl(out / "valid.jsonl")
    used = {r["topic"] for r in rows}
    assert not {f"sim4ia:{k}" for k in held["sim4ia_sessions"]} & used
    assert not {f"clef:{t}" for t in held["clef_topics"]} & used


def test_all_completions_are_valid_canonical_queries(prepared):
    out, _ = prepared
    rows = read_jsonl(out / "train.jsonl") + read_jsonl(out / "valid.jsonl")
    assert {r["source"] for r in rows} == {"clef", "sim4ia", "thesaurus"}
    for row in rows:
        assert is_valid(row["completion"])
        assert str(parse(row["completion"])) == row["completion"]
        assert row["prompt"].endswith(". Output:")


def test_pairs_are_deduplicated(prepared):
    out, stats = prepared
    rows = read_jsonl(out / "train.jsonl") + read_jsonl(out / "valid.jsonl")
    keys = [(r["prompt"], r["completion"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert stats["dropped"]["sim4ia: duplicate"] == 6  # one repeated candidate per fixture session


def test_sim4ia_never_uses_the_true_last_query():
    pairs, skipped = sim4ia_pairs(DATA / "sim4ia")
    assert pairs and skipped["sim4ia: run query not valid"] == 6
    assert not any("TRUE LAST QUERY" in p.prompt or "TRUE LAST QUERY" in p.completion for p in pairs)
    # session "1" is s17 (first in the sessions file); its context ends with "reading habits students".
    assert {p.prompt for p in pairs if p.topic == "sim4ia:1"} == {"reading habits students. Output:"}


def test_dedupe_drops_invalid_and_repeated():
    pairs = [Pair("a. Output:", "a OR b", "x", "t1"), Pair("a. Output:", "a OR b", "x", "t1"), Pair("b. Output:", "(a", "x", "t2")]
    kept, dropped = dedupe_and_validate(pairs)
    assert kept == pairs[:1]
    assert dropped == {"x: duplicate": 1, "x: invalid completion": 1}


def test_split_puts_about_ten_percent_of_topics_in_valid():
    pairs = [Pair(f"p{i}. Output:", f"q{i}", "thesaurus", f"thesaurus:{i}") for i in range(100)]
    split = split_pairs(pairs, seed=1)
    assert len({p.topic for p in split.valid}) == 10
    assert split_pairs(pairs, seed=1).valid == split.valid  # fixed seed


def test_missing_file_error_names_the_file(tmp_path):
    shutil.copytree(DATA, tmp_path / "data")
    (tmp_path / "data" / "sim4ia" / "llm_queries_boolean_run.json").unlink()
    with pytest.raises(DataError, match="llm_queries_boolean_run.json"):
        prepare(tmp_path / "data", tmp_path / "out", thesaurus_path=THESAURUS, max_thesaurus=2)
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_missing_thesaurus_names_the_apt_package(tmp_path, capsys):
    with pytest.raises(DataError, match="mythes-en-us"):
        load_thesaurus(tmp_path / "nope.dat")
    code = main(["--data", str(DATA), "--out", str(tmp_path / "out"), "--thesaurus", str(tmp_path / "nope.dat")])
    assert code == 2 and "mythes-en-us" in capsys.readouterr().err


def test_thesaurus_parser_on_fixture():
    thesaurus = parse_thesaurus(THESAURUS.read_text(encoding="utf-8").splitlines())
    assert thesaurus["happy"] == ["felicitous", "glad", "well-chosen", "content", "joyful"]  # notes stripped, antonym gone
    assert thesaurus["car"] == ["auto", "automobile", "motor vehicle", "machine"]
    assert "broken entry" not in thesaurus  # its sense lines are missing
    assert thesaurus["house"] == ["home", "dwelling", "domicile"]  # the entry after the junk survives


def test_thesaurus_queries_are_or_groups_of_synonyms():
    thesaurus = load_thesaurus(THESAURUS)
    pairs = thesaurus_pairs(thesaurus, count=5, seed=0)
    assert pairs
    for pair in pairs:
        query = parse(pair.completion)
        heads = pair.prompt.removesuffix(". Output:").split()
        assert 2 <= len(blocks(query)) <= 3 and len(blocks(query)) == len(heads)
        assert [b.node.items[0] for b in blocks(query)] == [Term(h) for h in heads]
        assert all(isinstance(b.node, Or) and len(b.node.items) <= 6 for b in blocks(query))
        assert '"quoted"' not in pair.completion and " AND)" not in pair.completion


def test_trim_query_limits_blocks_and_terms_and_drops_tags():
    query = parse(
        "(a[tiab] OR b OR c OR d OR e OR f OR g) AND x[Mesh] AND y AND z AND w AND v NOT (n OR m)"
    )
    trimmed = trim_query(query)
    assert len(blocks(trimmed)) == 4
    assert all(len(terms(b.node)) <= 6 for b in blocks(trimmed))
    assert all(getattr(leaf, "tag", None) is None for leaf in terms(trimmed))
    assert not any(b.negated for b in blocks(trimmed))
