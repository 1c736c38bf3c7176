"""Tests for training/prepare_data.py on small synthetic fixtures (tests/fixtures/)."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pytest

from blockgen.parser import is_valid, parse
from blockgen.query import Or, Phrase, Term, blocks, terms
from training.prepare_data import (
    DataError,
    Pair,
    Sense,
    cap_pairs,
    choose_heldout,
    completion_shape,
    concept_synonyms,
    dedupe_and_validate,
    extract_concepts,
    load_sim4ia,
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
SOURCES = {"clef", "clef_full", "sim4ia", "thesaurus", "concepts"}


def fake_embed(texts):
    """Unit bag-of-words vectors (hashed): texts that share words are close; no model is loaded."""
    import zlib

    import numpy as np

    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i, zlib.crc32(word.encode()) % 64] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def run_prepare(out: Path, data: Path = DATA, **options) -> dict:
    options = {"seed": 0, "max_thesaurus": 8, "thesaurus_path": THESAURUS, "heldout_sim4ia": 1, "heldout_clef": 2,
               "embed": fake_embed, "sim4ia_min_cosine": -1.0, **options}
    return prepare(data, out, **options)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("prepared")
    return out, run_prepare(out)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ------------------------------------------------------------------------------ output


def test_no_topic_is_in_two_splits(prepared):
    out, _ = prepared
    train = {r["topic"] for r in read_jsonl(out / "train.jsonl")}
    valid = {r["topic"] for r in read_jsonl(out / "valid.jsonl")}
    assert train and valid
    assert not train & valid


def test_heldout_topics_never_reach_train_or_valid(prepared):
    out, _ = prepared
    held = json.loads((out / "heldout.json").read_text())
    assert len(held["sim4ia_sessions"]) == 1 and len(held["clef_topics"]) == 2
    held_topics = {f"sim4ia:{k}" for k in held["sim4ia_sessions"]} | {f"clef:{t}" for t in held["clef_topics"]}
    assert {p["topic"] for p in held["prompts"]} == held_topics
    assert all(p["prompt"].endswith(". Output:") and p["source"] in ("clef", "sim4ia") for p in held["prompts"])
    rows = read_jsonl(out / "train.jsonl") + read_jsonl(out / "valid.jsonl")
    assert not held_topics & {r["topic"] for r in rows}
    # The held-out prompts are not training prompts either (thesaurus prompts are head words).
    assert not {p["prompt"] for p in held["prompts"]} & {r["prompt"] for r in rows}


def test_all_completions_are_valid_canonical_queries(prepared):
    out, _ = prepared
    rows = read_jsonl(out / "train.jsonl") + read_jsonl(out / "valid.jsonl")
    assert {r["source"] for r in rows} == SOURCES
    for row in rows:
        assert set(row) == {"prompt", "completion", "source", "topic"}
        assert is_valid(row["completion"])
        assert str(parse(row["completion"])) == row["completion"]
        assert row["prompt"].endswith(". Output:")
        if row["source"] == "concepts":  # a curated pair belongs to the topic of its text
            assert row["topic"].split(":", 1)[0] in ("clef", "sim4ia", "sim4ia_b")
        else:
            assert row["topic"].split(":", 1)[0] == row["source"].replace("_full", "")


def test_pairs_are_deduplicated(prepared):
    out, stats = prepared
    rows = read_jsonl(out / "train.jsonl") + read_jsonl(out / "valid.jsonl")
    keys = [(r["prompt"], r["completion"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert stats["dropped"]["sim4ia: duplicate"] == 6  # one repeated candidate per fixture session


def test_stats_count_the_written_files(prepared):
    out, stats = prepared
    assert stats == json.loads((out / "stats.json").read_text())
    for name in ("train", "valid"):
        rows = read_jsonl(out / f"{name}.jsonl")
        assert stats[name]["pairs"] == len(rows)
        for source, s in stats[name]["sources"].items():
            chosen = [r for r in rows if r["source"] == source]
            shapes = [completion_shape(r["completion"]) for r in chosen]
            assert s["pairs"] == len(chosen) and s["topics"] == len({r["topic"] for r in chosen})
            assert s["blocks_mean"] == round(statistics.fmean(b for b, _ in shapes), 2)
            assert s["terms_median"] == statistics.median(t for _, t in shapes)
    assert stats["all"]["pairs"] == stats["train"]["pairs"] + stats["valid"]["pairs"]


def test_same_seed_same_files(prepared, tmp_path):
    out, _ = prepared
    run_prepare(tmp_path)
    for name in ("train.jsonl", "valid.jsonl", "heldout.json", "stats.json"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_max_pairs_caps_train_and_valid_only(prepared, tmp_path):
    out, _ = prepared
    stats = run_prepare(tmp_path, max_pairs=10)
    assert stats["train"]["pairs"] + stats["valid"]["pairs"] == 10
    assert (tmp_path / "heldout.json").read_bytes() == (out / "heldout.json").read_bytes()


def test_clef_full_keeps_tags_and_trimmed_drops_them(prepared):
    out, _ = prepared
    rows = read_jsonl(out / "train.jsonl") + read_jsonl(out / "valid.jsonl")
    full = [r for r in rows if r["source"] == "clef_full"]
    trimmed = [r for r in rows if r["source"] == "clef"]
    assert full and trimmed
    assert all("[Mesh]" in r["completion"] for r in full)
    assert not any("[" in r["completion"] for r in trimmed)


def test_long_full_queries_are_left_out(tmp_path):
    stats = run_prepare(tmp_path, max_full_chars=10)
    assert "clef_full" not in stats["all"]["sources"]
    assert stats["dropped"]["clef_full: longer than --max-full-chars"] == 10


# ------------------------------------------------------------------------------ errors


def test_missing_file_error_names_the_file(tmp_path):
    shutil.copytree(DATA, tmp_path / "data")
    (tmp_path / "data" / "sim4ia" / "llm_queries_boolean_run.json").unlink()
    with pytest.raises(DataError, match="llm_queries_boolean_run.json"):
        run_prepare(tmp_path / "out", data=tmp_path / "data")
    assert not (tmp_path / "out").exists()


def test_malformed_jsonl_line_names_file_and_line(tmp_path, capsys):
    shutil.copytree(DATA, tmp_path / "data")
    topics = tmp_path / "data" / "clef_tar" / "topics.jsonl"
    lines = topics.read_text(encoding="utf-8").splitlines()
    topics.write_text("\n".join(lines[:2] + ['{"topic": "x", "title": '] + lines[2:]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"topics\.jsonl:3: not JSON"):
        run_prepare(tmp_path / "out", data=tmp_path / "data")
    topics.write_text(lines[0] + "\n" + '{"topic": "x"}\n', encoding="utf-8")
    code = main(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--thesaurus", str(THESAURUS)])
    err = capsys.readouterr().err
    assert code == 2 and "topics.jsonl:2: missing text field(s) title, query" in err


def test_malformed_context_row_names_file_and_line(tmp_path):
    shutil.copytree(DATA, tmp_path / "data")
    context = tmp_path / "data" / "sim4ia" / "predetermined_queries_Task_A_test.csv"
    context.write_text(context.read_text(encoding="utf-8") + "13,test_user\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"predetermined_queries_Task_A_test\.csv:13"):
        load_sim4ia(tmp_path / "data" / "sim4ia")


def test_missing_thesaurus_names_the_apt_package(tmp_path, capsys):
    with pytest.raises(DataError, match="mythes-en-us"):
        load_thesaurus(tmp_path / "nope.dat")
    code = main(["--data", str(DATA), "--out", str(tmp_path / "out"), "--thesaurus", str(tmp_path / "nope.dat")])
    assert code == 2 and "apt-get install mythes-en-us" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ Sim4IA


def test_sim4ia_never_uses_the_true_last_query():
    pairs, skipped = sim4ia_pairs(load_sim4ia(DATA / "sim4ia"))
    assert pairs and skipped["sim4ia: run query not valid"] == 6
    assert not any("TRUE LAST QUERY" in p.prompt or "TRUE LAST QUERY" in p.completion for p in pairs)
    # session "1" is s17 (first in the sessions file); its context ends with "reading habits students".
    assert {p.prompt for p in pairs if p.topic == "sim4ia:1"} == {"reading habits students. Output:"}
    assert len([p for p in pairs if p.topic == "sim4ia:1"]) == 9  # 10 run queries, one not valid


def test_sim4ia_answers_far_from_the_prompt_are_left_out():
    from training.prepare_data import Sim4IA

    data = Sim4IA(sessions={"1": ["reading", "reading habits students", "TRUE LAST QUERY"]},
                  context={"1": ["reading", "reading habits students"]},
                  boolean={"1": ["(reading habits OR reading) AND students", "marine species OR oceanic biodiversity"]})
    everything, _ = sim4ia_pairs(data, embed=fake_embed, min_cosine=-1.0)
    close, skipped = sim4ia_pairs(data, embed=fake_embed, min_cosine=0.3)
    assert len(everything) == 2 and [p.completion for p in close] == ["(reading habits OR reading) AND students"]
    assert skipped["sim4ia: run query far from the prompt"] == 1


def test_filter_blocks_are_left_out_of_the_trimmed_clef_answers():
    from training.prepare_data import drop_filter_blocks

    query = parse('(asthma OR wheez*) AND (randomized controlled trial OR placebo OR trial) AND (inhaler OR spacer)')
    generic = frozenset({"randomized controlled trial", "placebo", "trial"})
    assert str(drop_filter_blocks(query, generic)) == "(asthma OR wheez*) AND (inhaler OR spacer)"
    only = parse("randomized controlled trial OR placebo")
    assert drop_filter_blocks(only, generic) == only  # at least one block stays
    assert str(trim_query(drop_filter_blocks(parse("a AND (placebo OR trial) NOT b"), generic))) == "a"


def test_concept_pairs_follow_their_texts_topic_into_the_split(prepared):
    out, _ = prepared
    held = json.loads((out / "heldout.json").read_text(encoding="utf-8"))
    held_topics = {f"clef:{t}" for t in held["clef_topics"]} | {f"sim4ia:{s}" for s in held["sim4ia_sessions"]}
    rows = read_jsonl(out / "train.jsonl") + read_jsonl(out / "valid.jsonl")
    concepts = [r for r in rows if r["source"] == "concepts"]
    assert concepts and not {r["topic"] for r in concepts} & held_topics
    valid_topics = {r["topic"] for r in read_jsonl(out / "valid.jsonl")}
    train_topics = {r["topic"] for r in read_jsonl(out / "train.jsonl")}
    assert not valid_topics & train_topics


def test_sim4ia_sessions_are_numbered_in_order_of_first_appearance():
    data = load_sim4ia(DATA / "sim4ia")
    assert data.sessions["1"][0] == "reading habits" and data.sessions["2"][0] == "solar power"
    assert all(data.sessions[k][:-1] == data.context[k] for k in data.sessions)


# --------------------------------------------------------------------------- thesaurus


def test_thesaurus_parser_on_fixture():
    thesaurus = parse_thesaurus(THESAURUS.read_text(encoding="utf-8").splitlines())
    # notes stripped, similar terms kept, antonyms and generic terms gone
    assert thesaurus["happy"] == [Sense("adj", ("felicitous", "glad", "well-chosen")), Sense("adj", ("content", "joyful"))]
    assert thesaurus["car"] == [Sense("noun", ("auto", "automobile", "machine"))]
    assert thesaurus["cervical"] == [Sense("adj", ("orifice", "opening"), related=True)]
    assert "broken entry" not in thesaurus  # its sense lines are missing
    assert thesaurus["house"] == [Sense("noun", ("home", "dwelling"))]  # the entry after the junk survives


def test_concept_synonyms_take_one_usable_sense():
    thesaurus = load_thesaurus(THESAURUS)
    assert concept_synonyms(thesaurus["sleep"], "sleep") == [Term("slumber")]  # the noun, not the verb
    assert concept_synonyms(thesaurus["river"], "river") == [Term("stream")]  # "AND" is no word
    assert concept_synonyms(thesaurus["big"], "big") == [Term("large"), Term("great"), Term("huge")]
    assert concept_synonyms(thesaurus["malaria"], "malaria") == [Term("paludism"), Phrase("swamp fever")]
    # Title-case synonyms of a lower-case head are skipped (names), acronyms kept
    assert concept_synonyms(thesaurus["tomography"], "tomography") == [Term("CT")]
    assert concept_synonyms(thesaurus["cervical"], "cervical") == []  # related terms only


def test_extract_concepts_finds_head_words_in_order():
    thesaurus = load_thesaurus(THESAURUS)
    assert extract_concepts("Rapid tests for malaria in children", thesaurus) == ["rapid", "malaria"]
    assert extract_concepts("solar power students", thesaurus) == ["solar power", "students"]
    assert extract_concepts("for the car in the house", thesaurus) == ["house"]  # stop words, short words


def test_thesaurus_queries_are_or_groups_of_synonyms():
    thesaurus = load_thesaurus(THESAURUS)
    texts = ["river pollution students", "Rapid tests for malaria", "car"]
    pairs = thesaurus_pairs(texts, thesaurus, count=100, seed=0)
    assert len(pairs) == 5  # 3 pairs + 1 triple from the first text, 1 pair from the second
    for pair in pairs:
        query = parse(pair.completion)
        heads = [h for h in pair.prompt.removesuffix(". Output:").split()]
        assert 2 <= len(blocks(query)) <= 3 and len(blocks(query)) == len(heads)
        assert [b.node.items[0] for b in blocks(query)] == [Term(h) for h in heads]
        assert all(isinstance(b.node, Or) and len(b.node.items) <= 6 for b in blocks(query))
        assert any(all(h in text.lower() for h in heads) for text in texts)  # the concepts occur together
    assert len(thesaurus_pairs(texts, thesaurus, count=2, seed=0)) == 2


def test_thesaurus_concepts_never_come_from_heldout_texts(tmp_path):
    run_prepare(tmp_path, max_thesaurus=1000)
    held = json.loads((tmp_path / "heldout.json").read_text())
    thesaurus = load_thesaurus(THESAURUS)
    sim = load_sim4ia(DATA / "sim4ia")
    topics = [json.loads(x) for x in (DATA / "clef_tar" / "topics.jsonl").read_text().splitlines()]

    def concept_sets(texts):
        out = set()
        for text in texts:
            concepts = extract_concepts(text, thesaurus)
            out |= {"+".join(sorted({a, b})) for a in concepts for b in concepts if a != b}
        return out

    held_texts = [t["title"] for t in topics if t["topic"] in held["clef_topics"]]
    held_texts += [q for k in held["sim4ia_sessions"] for q in sim.context[k]]
    rest_texts = [t["title"] for t in topics if t["topic"] not in held["clef_topics"]]
    rest_texts += [q for k in sim.context if k not in held["sim4ia_sessions"] for q in sim.context[k]]
    held_only = concept_sets(held_texts) - concept_sets(rest_texts)
    assert held_only  # the fixture has concept pairs that only held-out texts hold
    rows = read_jsonl(tmp_path / "train.jsonl") + read_jsonl(tmp_path / "valid.jsonl")
    used = {r["topic"].split(":", 1)[1] for r in rows if r["source"] == "thesaurus"}
    assert used and not used & held_only


# ------------------------------------------------------------------------------- split


def test_dedupe_drops_invalid_and_repeated():
    pairs = [Pair("a. Output:", "a OR b", "x", "t1"), Pair("a. Output:", "a OR b", "x", "t1"), Pair("b. Output:", "(a", "x", "t2")]
    kept, dropped = dedupe_and_validate(pairs)
    assert kept == pairs[:1]
    assert dropped == {"x: duplicate": 1, "x: invalid completion": 1}


def test_split_puts_about_ten_percent_of_topics_in_valid():
    pairs = [Pair(f"p{i}. Output:", f"q{i}", "thesaurus", f"thesaurus:{i}") for i in range(100)]
    pairs += [Pair("h. Output:", "h", "clef", "clef:H")]
    split = split_pairs(pairs, {"clef:H"}, seed=1)
    assert len({p.topic for p in split.valid}) == 10
    assert [p.topic for p in split.heldout] == ["clef:H"]
    assert split_pairs(pairs, {"clef:H"}, seed=1).valid == split.valid  # fixed seed


def test_choose_heldout_is_seeded_and_sized():
    a = choose_heldout([str(i) for i in range(1, 36)], [f"CD{i}" for i in range(50)], seed=0)
    assert a == choose_heldout([str(i) for i in range(1, 36)], [f"CD{i}" for i in range(50)], seed=0)
    assert len(a["sim4ia_sessions"]) == 5 and len(a["clef_topics"]) == 10
    assert a != choose_heldout([str(i) for i in range(1, 36)], [f"CD{i}" for i in range(50)], seed=1)


def test_cap_pairs_keeps_order():
    pairs = [Pair(f"p{i}. Output:", f"q{i}", "x", f"x:{i}") for i in range(20)]
    capped = cap_pairs(pairs, 5, seed=0)
    assert len(capped) == 5 and capped == sorted(capped, key=pairs.index)
    assert cap_pairs(pairs, None, seed=0) == pairs


def test_trim_query_limits_blocks_and_terms_and_drops_tags():
    query = parse("(a[tiab] OR b OR c OR d OR e OR f OR g) AND x[Mesh] AND y AND z AND w AND v NOT (n OR m)")
    trimmed = trim_query(query)
    assert len(blocks(trimmed)) == 4
    assert all(len(terms(b.node)) <= 6 for b in blocks(trimmed))
    assert all(getattr(leaf, "tag", None) is None for leaf in terms(trimmed))
    assert not any(b.negated for b in blocks(trimmed))


def test_trim_query_keeps_one_nested_and_per_block():
    query = parse("((a OR b OR c OR d) AND (e OR f) AND g AND h) OR ((x OR y) AND z) OR k OR l[tiab]")
    trimmed = trim_query(query)
    assert str(trimmed) == "((a OR b OR c) AND (e OR f) AND g) OR k OR l"
