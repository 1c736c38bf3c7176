"""Tests for blockgen/ovid.py: Ovid MEDLINE strategies -> one block query."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blockgen.ovid import LIMIT_KINDS, OvidConversion, OvidError, convert_ovid, from_ovid, summarize


def note_kind(note):
    return note.kind
from blockgen.parser import is_valid, parse
from blockgen.query import And, Node, Not, Or, Phrase, Term, make_and, make_or, terms


def conv(text: str) -> OvidConversion:
    result = convert_ovid(text)
    assert is_valid(str(result.query)), str(result.query)
    return result


@pytest.mark.parametrize(
    "line, expected",
    [
        ("exp Malaria/", Phrase("Malaria", "Mesh")),
        ("Malaria/", Phrase("Malaria", "Mesh:NoExp")),
        ('exp "Typhoid Fever"/', Phrase("Typhoid Fever", "Mesh")),
        ("malaria.ti,ab.", Term("malaria", "tiab")),
        ("malaria.ti,ab", Term("malaria", "tiab")),
        ("malaria.tw.", Term("malaria", "tw")),
        ("malaria.tw,kf.", Term("malaria", "tw")),
        ("malaria.mp.", Term("malaria", "tw")),
        ("malaria.kw.", Term("malaria", "tw")),
        ("malaria.ti,ab,kf.", Term("malaria", "tw")),
        ("malaria.tw,ot.", Term("malaria", "tw")),
        ("malaria.ti,ab,kf,hw.", Term("malaria", "tw")),
        ("malaria.ab,ti.", Term("malaria", "tiab")),
        ("Smith J.au.", Phrase("Smith J", "au")),
        ("*Dementia/", Phrase("Dementia", "majr:NoExp")),
        ("exp *Stroke/", Phrase("Stroke", "majr")),
        ("exp Neck Injuries/ [includes whiplash injuries]", Phrase("Neck Injuries", "Mesh")),
        ("tu.xs.", Term("tu", "sh")),
        ("malaria [Title/Abstract]", Term("malaria", "tiab")),
        ("Infant [mh:noexp]", Term("Infant", "Mesh:NoExp")),
        ("randomized controlled trial.pt.", Phrase("randomized controlled trial", "pt")),
        ("placebo.ab.", Term("placebo", "ab")),
        ("trial.ti.", Term("trial", "ti")),
        ("humans.sh.", Term("humans", "Mesh:NoExp")),
        ("drug therapy.fs.", Phrase("drug therapy", "sh")),
        ('"typhoid fever".ti,ab,kw', Phrase("typhoid fever", "tw")),
        ("rapid diagnos* test*.ti,ab", Phrase("rapid diagnos* test*", "tiab")),
        ("fungal infection[tw]", Term("fungal infection", "tw")),
        ('"Aspergillus"[MeSH]', Phrase("Aspergillus", "Mesh")),
    ],
)
def test_single_line_constructs(line, expected):
    result = conv(line)
    assert result.query == expected
    assert result.dropped == ()


@pytest.mark.parametrize(
    "word, expected",
    [("dermat$", "dermat*"), ("random:", "random*"), ("behavio#r", "behavio?r"), ("tumo?r", "tumo?r"), ("exercise$1", "exercise*")],
)
def test_truncation_maps_to_grammar_wildcards(word, expected):
    assert conv(f"{word}.tw.").query == Term(expected, "tw")


def test_subheadings_keep_heading_and_are_noted():
    result = conv("Lung/ra, ri [Radiography]")
    assert result.query == Phrase("Lung", "Mesh:NoExp")
    assert [note.kind for note in result.dropped] == ["subheading dropped"]


def test_group_suffix_tags_every_term():
    result = conv("((dermat$ or eczema) and (hand$ or palm$)).ti,ab.")
    assert result.query == And((Or((Term("dermat*", "tiab"), Term("eczema", "tiab"))), Or((Term("hand*", "tiab"), Term("palm*", "tiab")))))


def test_line_references_resolve_from_the_final_line():
    strategy = "exp Malaria/\nmalaria.ti,ab.\n1 or 2\n(rapid adj3 test$).tw.\n3 and 4\nlimit 5 to humans"
    result = conv(strategy)
    # adj3: any order, at most 2 words between, as PubMed's [tw:~2] says it.
    assert result.query == And((Or((Phrase("Malaria", "Mesh"), Term("malaria", "tiab"))), Phrase("rapid test*", "tw:~2")))
    assert result.lines == 6
    assert [(n.kind, n.line) for n in result.dropped] == [("limit line dropped", 6)]


@pytest.mark.parametrize("combine", ["or/1-3", "OR 1-3", "1 or 2 or 3", "(1 OR 2 OR 3)", "#1 OR #2 OR #3", "1 Or 2 oR 3"])
def test_or_combinations(combine):
    result = conv(f"a.tw.\nb.tw.\nc.tw.\n{combine}")
    assert result.query == Or((Term("a", "tw"), Term("b", "tw"), Term("c", "tw")))


def test_and_list_and_not():
    assert conv("a\nb\nc\nand/1,3").query == And((Term("a"), Term("c")))
    assert conv("a\nb\n1 not 2").query == Not(Term("a"), Term("b"))
    assert conv("exp animals/ not humans/").query == Not(Phrase("animals", "Mesh"), Phrase("humans", "Mesh:NoExp"))


def test_inline_nested_boolean_any_case():
    result = conv("(a OR (b and c)) Not d")
    assert result.query == Not(Or((Term("a"), And((Term("b"), Term("c"))))), Term("d"))


@pytest.mark.parametrize(
    "prox, tag, noted",
    [("adj", "tw", False), ("adj3", "tw:~2", False), ("adj1", "tw:~0", False), ("near/2", "tw:~1", True), ("ADJ5", "tw:~4", False)],
)
def test_proximity_becomes_a_phrase_with_a_proximity_tag(prox, tag, noted):
    result = conv(f"(heart {prox} attack).tw.")
    assert result.query == Phrase("heart attack", tag)
    assert bool(result.dropped) == noted


def test_proximity_distributes_over_or_groups():
    result = conv("((heart or cardiac) adj3 (attack or failure)).ti,ab.")
    assert result.query == Or(tuple(Phrase(f"{a} {b}", "tiab:~2") for a in ("heart", "cardiac") for b in ("attack", "failure")))
    assert result.clean


def test_proximity_that_cannot_be_a_phrase_is_and_noted():
    result = conv("(heart adj3 (attack and failure)).tw.")
    assert result.query == And((Term("heart", "tw"), Term("attack", "tw"), Term("failure", "tw")))
    assert [n.kind for n in result.dropped] == ["proximity approximated"]


@pytest.mark.parametrize(
    "strategy",
    [
        "1. a.tw.\n2. b.tw.\n3. 1 or 2",
        "#1 a.tw.\n#2 b.tw.\n#3 #1 or #2",
        "1 a.tw. (120)\n2 b.tw. (33)\n3 1 or 2 (150)",
        "a.tw.\nb.tw.\nor/1-2 [block A]\nremove duplicates from 3",
        "a.tw. OR b.tw. Total references = 1551",
    ],
)
def test_numbering_counts_and_comments_are_not_query_text(strategy):
    result = conv(strategy)
    assert result.query == Or((Term("a", "tw"), Term("b", "tw")))
    assert result.clean


def test_unknown_bracket_after_words_is_noted():
    result = conv("malaria [Some Field]")
    assert result.query == Term("malaria")
    assert [note_kind(n) for n in result.dropped] == ["bracket note dropped"]


def test_unbalanced_parenthesis_keeps_the_operators_after_it():
    result = conv("(a OR b)) NOT c")
    assert result.query == Not(Or((Term("a"), Term("b"))), Term("c"))
    assert [note_kind(n) for n in result.dropped] == ["malformed syntax repaired"]


def test_stray_star_after_a_group_is_dropped():
    result = conv("(a OR b)* AND c")
    assert result.query == And((Or((Term("a"), Term("b"))), Term("c")))
    assert len(result.dropped) == 1


SECTIONED = """1 Index test: tests in the clinic
1a
"straight leg raising"[tw] OR lasegue[tw]
1b
Physical examination[mesh]
OR "physical test"[tw]
2. Population: low-back pain
back pain[mesh] OR sciatica[tw]
3 Exclusion: animals
animals[mesh] NOT humans[mesh]
Searches (combinations)
A. 1a and 2 not 3
B. 1b and 2
Final search: A or B"""


def test_sectioned_strategy_resolves_labels():
    result = conv(SECTIONED)
    block2 = Or((Term("back pain", "Mesh"), Term("sciatica", "tw")))
    a = Not(And((Or((Phrase("straight leg raising", "tw"), Term("lasegue", "tw"))), block2)), Not(Term("animals", "Mesh"), Term("humans", "Mesh")))
    b = And((Or((Term("Physical examination", "Mesh"), Phrase("physical test", "tw"))), block2))
    assert result.query == Or((a, b))
    assert result.clean


def test_parent_label_means_its_sub_labels():
    text = "1 Test: x\n1a\nfoo[tw] OR bar[tw]\n1b\nbaz[tw]\n2 Population: y\nqux[tw] OR quux[tw]\n1 AND 2"
    result = conv(text)
    assert result.query == And((Or((Term("foo", "tw"), Term("bar", "tw"), Term("baz", "tw"))), Or((Term("qux", "tw"), Term("quux", "tw")))))


def test_note_kinds_and_only_limits():
    limited = conv("a.tw.\n(2017* or 2018*).ed.\n1 and 2\nlimit 3 to english language")
    assert limited.query == Term("a", "tw")
    assert {note_kind(n) for n in limited.dropped} == {"limit line dropped", "date limit dropped"} == set(LIMIT_KINDS)
    assert limited.only_limits_dropped and not limited.clean
    approx = conv("(a adj3 (b and c)).tw.\nlimit 1 to humans")
    assert not approx.only_limits_dropped
    assert conv("a.tw.").only_limits_dropped


def test_summarize_counts_conversions():
    figures = summarize([("t1", "a.tw."), ("t2", "a.tw.\nlimit 1 to humans"), ("t3", "(a adj (b and c)).tw."), ("t4", "  ")])
    assert (figures["total"], figures["converted"], figures["clean"], figures["only_limits"]) == (4, 3, 1, 2)
    assert dict(figures["kinds"]) == {"limit line dropped": 1, "proximity approximated": 1}
    assert figures["failures"] == ["t4: the strategy is empty"]


def test_date_lines_and_missing_refs_are_dropped_and_noted():
    result = conv("a.tw.\n(2017* or 2018*).ed.\n1 and 2 and 9")
    assert result.query == Term("a", "tw")
    assert any(n.kind == "date limit dropped" for n in result.dropped)
    assert any(n.kind == "reference to a missing line" and "missing line 9" in n.detail for n in result.dropped)


def test_multi_word_terms_stay_one_term():
    # Ovid reads words side by side as a phrase; PubMed-tagged words stay PubMed's words side by side.
    assert conv("low molecular weight heparin.tw.").query == Phrase("low molecular weight heparin", "tw")
    assert conv("low molecular weight heparin[tw]").query == Term("low molecular weight heparin", "tw")


def test_operator_words_are_quoted():
    result = conv('"OR".ti.\n"AND"\n1 or 2')
    assert result.query == Or((Phrase("OR", "ti"), Phrase("AND")))
    assert "OR" in str(result.query)


def test_error_names_the_line():
    with pytest.raises(OvidError, match=r"line 3 .*line 2: reference to missing line 5"):
        convert_ovid("a\n5 and 6\nlimit 2 to humans")
    with pytest.raises(OvidError):
        convert_ovid("   \n  ")


def test_from_ovid_is_the_query():
    assert from_ovid("a\nb\n1 or 2") == convert_ovid("a\nb\n1 or 2").query


@given(st.text(alphabet=st.sampled_from(list("ab ()/$:#.\"*,[]\n1234orndtiexpj-")), max_size=60))
def test_conversion_output_always_parses(text):
    try:
        result = convert_ovid(text)
    except OvidError:
        return
    assert parse(str(result.query)) == result.query


_SUFFIX = {"tiab": ".ti,ab.", "tw": ".tw.", "ti": ".ti.", "ab": ".ab.", "pt": ".pt."}
_plain_word = st.from_regex(r"[a-z]{2,9}", fullmatch=True).filter(lambda w: w not in ("and", "or", "not", "adj", "exp", "limit", "near", "to"))
_leaf = st.one_of(
    st.builds(lambda w, tag: Term(w, tag), _plain_word, st.sampled_from(sorted(_SUFFIX))),
    st.builds(lambda ws, tag: Phrase(" ".join(ws).title(), tag), st.lists(_plain_word, min_size=1, max_size=3), st.sampled_from(["Mesh", "Mesh:NoExp"])),
)
_tree = st.recursive(
    _leaf,
    lambda kids: st.one_of(
        st.builds(lambda xs: make_or(xs), st.lists(kids, min_size=2, max_size=3)),
        st.builds(lambda xs: make_and(xs), st.lists(kids, min_size=2, max_size=3)),
        st.builds(Not, kids, kids),
    ),
    max_leaves=8,
)


def render_ovid(query: Node) -> str:
    """``query`` as a line-numbered Ovid strategy: one line per leaf and per operator."""
    lines: list[str] = []

    def line_of(node: Node) -> int:
        if isinstance(node, Term):
            lines.append(node.text + _SUFFIX[node.tag])
        elif isinstance(node, Phrase):
            lines.append(("exp " if node.tag == "Mesh" else "") + node.text + "/")
        elif isinstance(node, Not):
            a, b = line_of(node.positive), line_of(node.negative)
            lines.append(f"{a} not {b}")
        else:
            refs = [line_of(item) for item in node.items]
            op = "or" if isinstance(node, Or) else "and"
            lines.append(f" {op} ".join(map(str, refs)))
        return len(lines)

    line_of(query)
    return "\n".join(lines)


@given(_tree)
def test_from_ovid_inverts_rendering_as_ovid_lines(query):
    strategy = render_ovid(query)
    result = convert_ovid(strategy)
    assert result.query == query, strategy
    assert result.clean and is_valid(str(result.query))


# Measured with `python -m blockgen.cli ovid --topics ../shared/data/clef_tar/topics.jsonl`:
# 128/128 valid, 25 clean, 65 clean or with only limits dropped.
CLEAN_LOWER_BOUND = 25
ONLY_LIMITS_LOWER_BOUND = 65


def test_all_clef_topics_convert_to_valid_queries(shared_data):
    rows = [json.loads(line) for line in (shared_data / "clef_tar" / "topics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 128
    clean = only_limits = 0
    for row in rows:
        result = convert_ovid(row["query"])
        assert is_valid(str(result.query)), (row["topic"], str(result.query))
        assert parse(str(result.query)) == result.query
        clean += result.clean
        only_limits += result.only_limits_dropped
    assert clean >= CLEAN_LOWER_BOUND
    assert only_limits >= ONLY_LIMITS_LOWER_BOUND


# ------------------------------------------------------------------ issue 10: any depth, no stray exception


def test_any_depth_of_parentheses_converts():
    assert convert_ovid("(" * 1000 + "a" + ")" * 1000).query == Term("a")


def test_a_thousand_operators_without_a_left_operand_convert_with_one_note():
    result = convert_ovid("or " * 1000 + "a")
    assert result.query == Term("a")
    assert [n.kind for n in result.dropped] == ["malformed syntax repaired"]


@pytest.mark.parametrize("op, cls", [("or", Or), ("and", And), ("not", Not)])
def test_a_601_line_chain_of_references_converts(op, cls):
    strategy = "a\n" + "\n".join(f"{i} {op} x{i}" for i in range(1, 601))
    result = convert_ovid(strategy)
    assert isinstance(result.query, cls) and result.lines == 601 and result.clean
    assert len(terms(result.query)) == 601


@pytest.mark.parametrize("combine", ["or/1-2-3", "or/3-1", "or/1-100000"])
def test_a_malformed_range_is_an_ovid_error_never_a_value_error(combine):
    with pytest.raises(OvidError, match="line 4"):
        convert_ovid(f"a\nb\nc\n{combine}")


def test_characters_a_word_cannot_hold_are_dropped_with_a_note():
    result = convert_ovid("C++.ti,ab.")
    assert result.query == Term("C", "tiab")
    assert [n.kind for n in result.dropped] == ["characters dropped"] and not result.clean


def test_control_characters_are_dropped_with_a_note():
    result = convert_ovid("mal\x00aria")
    assert result.query == Term("malaria")
    assert [(n.kind, n.line) for n in result.dropped] == [("control character dropped", 1)]


@pytest.mark.parametrize("sep", ["\u2028", "\u0085", "\x0b", "\x0c"])
def test_lines_split_on_newline_only(sep):
    result = convert_ovid(f"a{sep}b\nc\n1 or 2")
    assert result.lines == 3
    assert result.query == Or((Phrase("a b"), Term("c")))


def test_crlf_ends_a_line():
    assert convert_ovid("a\r\nb\r\n1 or 2").query == Or((Term("a"), Term("b")))


def test_hash_wildcard_is_read_as_question_mark_with_a_note():
    result = convert_ovid("wom#n.tw.")
    assert result.query == Term("wom?n", "tw")
    assert [n.kind for n in result.dropped] == ["wildcard approximated"]


def test_notes_are_structured_with_kind_line_and_detail():
    result = convert_ovid("a.tw.\nlimit 1 to humans")
    (note,) = result.dropped
    assert (note.kind, note.line) == ("limit line dropped", 2) and "humans" in note.detail
    assert str(note) == "line 2: limit dropped: limit 1 to humans"


def test_a_long_chain_of_references_builds_the_same_flat_query():
    """Referenced lines are kept whole while lines are built and flattened once at the end:
    a chain of 5,000 lines gives one flat OR (linear time; each line copied its items before)."""
    strategy = "a\n" + "\n".join(f"{i} or x{i}" for i in range(1, 5001))
    result = convert_ovid(strategy)
    assert isinstance(result.query, Or) and len(result.query.items) == 5001
    assert parse(str(result.query)) == result.query


def test_words_of_every_script_keep_their_letters():
    """The reader's letters are the grammar's (shared by import): Київ keeps its ї."""
    result = convert_ovid("Київ.ti,ab. or 气候变化.ti.")
    assert str(result.query) == "Київ[tiab] OR 气候变化[ti]" and result.clean
