"""blockgen/dialects/lucene.py: Lucene/Elasticsearch query_string, checked against tantivy."""

from __future__ import annotations

import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import blockgen
from blockgen.dialects import DialectSyntaxError, read, write
from blockgen.dialects.lucene import Lucene
from blockgen.evaluate import Document, Evaluator
from blockgen.query import And, Comparison, Field, Not, Or, Phrase, Term

from tests.dialect_trees import ANY_LEAVES, HIERARCHY, LUCENE_LEAVES, WORDS, documents, trees

EV = Evaluator(HIERARCHY)


def q(text, dialect="lucene"):
    return read(text, dialect).query


def kinds(text):
    return [n.kind for n in read(text, "lucene").notes]


def test_and_binds_tighter_than_or():
    assert q("a OR b AND c") == Or((Term("a"), And((Term("b"), Term("c")))))
    assert q("a AND b OR c") == Or((And((Term("a"), Term("b"))), Term("c")))
    assert q("a || b && c") == q("a OR b AND c")


@pytest.mark.parametrize("text", ["a NOT b", "a -b", "a AND NOT b", "a AND -b", "a && !b"])
def test_every_spelling_of_exclusion_means_a_not_b(text):
    assert q(text) == Not(Term("a"), Term("b"))


def test_several_exclusions_exclude_any_of_them():
    assert q("a AND -b AND -c") == Not(Term("a"), Or((Term("b"), Term("c"))))


def test_exclusion_after_an_or_list_is_read_for_its_operand_and_noted():
    assert q("a OR c NOT b") == Or((Term("a"), Not(Term("c"), Term("b"))))
    assert "ambiguous exclusion" in kinds("a OR c NOT b")


@pytest.mark.parametrize("text, column", [("-a", 1), ("a OR -b", 6), ("NOT a AND NOT b", 1)])
def test_an_exclusion_from_nothing_is_an_error_at_its_position(text, column):
    with pytest.raises(DialectSyntaxError) as err:
        read(text, "lucene")
    assert err.value.column == column


def test_default_operator_joins_operands_side_by_side_and_is_noted():
    assert q("a b") == Or((Term("a"), Term("b")))
    assert kinds("a b") == ["implicit operator"]
    assert Lucene(default_operator="AND").read("a b").query == And((Term("a"), Term("b")))
    assert q("+a +b") == And((Term("a"), Term("b")))


def test_lower_case_operators_are_words():
    assert q("a and b") == Or((Term("a"), Term("and"), Term("b")))
    assert "lower-case operator" in kinds("a and b")


def test_fields_become_tags_or_filters():
    assert q('title:heart AND abstract:"heart attack"') == And((Term("heart", "ti"), Phrase("heart attack", "ab")))
    assert q("(title:x OR abstract:x)") == Term("x", "tiab")
    assert q("title:(a OR b)") == Or((Term("a", "ti"), Term("b", "ti")))
    assert q('fieldsOfStudy:"biology"') == Field("fieldsOfStudy", "biology", True)
    assert q("yearPublished>=2019") == Comparison("yearPublished", ">=", "2019")
    assert q("year:[2019 TO 2021}") == And((Comparison("year", ">=", "2019"), Comparison("year", "<", "2021")))


def test_a_sloppy_phrase_pair_is_exact_proximity_and_a_lone_one_is_noted():
    assert q('("a b"~3 OR "b a"~3)') == Phrase("a b", "all:~3")
    assert kinds('("a b"~3 OR "b a"~3)') == []
    assert q('"a b"~3') == Phrase("a b", "all:~3")
    assert kinds('"a b"~3') == ["proximity approximated"]


def test_boosts_fuzziness_and_wildcards_are_noted():
    assert q("a^2") == Term("a") and kinds("a^2") == ["boost dropped"]
    assert q("roam~1") == Term("roam") and kinds("roam~1") == ["fuzziness dropped"]
    assert kinds("te?t") == ["wildcard approximated"]
    assert q("(behavior OR behavio?r)") == Term("behavio?r") and kinds("(behavior OR behavio?r)") == []


def test_escapes_and_typographic_quotes():
    assert q(r"COVID\-19") == Term("COVID-19")
    assert q("“social media”") == Phrase("social media")
    assert kinds("“social media”") == ["typographic quote"]


@pytest.mark.parametrize(
    "node, text",
    [
        (Not(Or((Term("a"), Term("b"))), Term("c")), "(a OR b) AND -c"),
        (Not(Term("a"), Not(Term("b"), Term("c"))), "a AND -(b AND -c)"),
        (Term("x", "tiab"), "(title:x OR abstract:x)"),
        (Phrase("a b", "ti:~2"), '(title:"a b"~2 OR title:"b a"~2)'),
        (Term("behavio?r"), "(behavior OR behavio?r)"),
        (Term("COVID-19"), r"COVID\-19"),
    ],
)
def test_writer(node, text):
    writing = write(node, "lucene")
    assert writing.text == text and writing.exact


@pytest.mark.parametrize(
    "node, kind",
    [
        (Phrase("Malaria", "Mesh"), "tag approximated"),
        (Phrase("a b c", "tiab:~2"), "proximity approximated"),
        (Phrase("rapid tes*"), "truncation approximated"),
        (Term("x", "au"), "tag dropped"),
    ],
)
def test_writer_notes_what_lucene_cannot_express(node, kind):
    writing = write(node, "lucene")
    assert [n.kind for n in writing.notes] == [kind] and not writing.exact


def _title_and_abstract_of_one_leaf(query) -> bool:
    """An OR holding the same text tagged ti and ab (same proximity): read back as one [tiab] leaf."""
    from blockgen.dialects._walk import children

    stack = [query]
    while stack:
        node = stack.pop()
        stack.extend(children(node))
        if isinstance(node, Or):
            tags = {(type(c), c.text, c.tag) for c in node.items if isinstance(c, (Term, Phrase)) and c.tag}
            if any(tag.startswith("ti") and (kind, text, "ab" + tag[2:]) in tags for kind, text, tag in tags):
                return True
    return False


@given(trees(LUCENE_LEAVES))
def test_lucene_round_trip_is_the_identity(query):
    assume(not _title_and_abstract_of_one_leaf(query))
    writing = write(query, "lucene")
    assert writing.exact, writing.notes
    assert read(writing.text, "lucene").query == query, writing.text


@given(trees(ANY_LEAVES), st.lists(documents(), min_size=1, max_size=6))
def test_lucene_writing_means_the_tree_when_it_is_exact(query, docs):
    writing = write(query, "lucene")
    back = read(writing.text, "lucene").query
    if writing.exact:
        for doc in docs:
            assert EV.matches(back, doc) == EV.matches(query, doc), (writing.text, doc)
    else:
        assert writing.notes


# ------------------------------------------------------------------------------ tantivy

tantivy = pytest.importorskip("tantivy")

#: Small vocabulary, short fields: phrases and proximity match often.
_VOCAB = WORDS[:6]


def _corpus(seed: int, n: int = 80) -> list[Document]:
    rnd = random.Random(seed)
    docs = []
    for _ in range(n):
        docs.append(Document({f: " ".join(rnd.choice(_VOCAB) for _ in range(rnd.randint(0, 7))) for f in ("ti", "ab")}))
    return docs


@pytest.fixture(scope="module")
def engine():
    """A tantivy index of generated documents (fields title and abstract, with positions)."""
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("title", stored=False, index_option="position")
    builder.add_text_field("abstract", stored=False, index_option="position")
    builder.add_integer_field("id", stored=True, indexed=True)
    index = tantivy.Index(builder.build())
    writer = index.writer(15_000_000, 1)
    docs = _corpus(7)
    for i, doc in enumerate(docs):
        writer.add_document(tantivy.Document(title=doc.fields["ti"], abstract=doc.fields["ab"], id=i))
    writer.commit()
    index.reload()
    return index, docs


def _tantivy_ids(index, text: str) -> list[int]:
    searcher = index.searcher()
    query = index.parse_query(text, ["title", "abstract"])
    hits = searcher.search(query, 1000).hits
    return sorted(searcher.doc(address)["id"][0] for _, address in hits)


_vocab_word = st.sampled_from(_VOCAB)
_TANTIVY_LEAVES = st.one_of(
    st.builds(Term, _vocab_word, st.sampled_from([None, "ti", "ab", "tiab"])),
    st.builds(Phrase, st.lists(_vocab_word, min_size=2, max_size=3).map(" ".join), st.sampled_from([None, "ti", "ab", "tiab"])),
    st.builds(
        lambda ws, f, n: Phrase(" ".join(ws), f"{f}:~{n}"),
        st.lists(_vocab_word, min_size=2, max_size=2, unique=True), st.sampled_from(["all", "ti", "ab", "tiab"]), st.integers(0, 3),
    ),
)


@settings(deadline=None)
@given(trees(_TANTIVY_LEAVES, max_leaves=8))
def test_tantivy_finds_exactly_what_the_evaluator_selects(engine, query):
    index, docs = engine
    writing = write(query, "lucene")
    assert writing.exact
    assert _tantivy_ids(index, writing.text) == EV.select(query, docs), writing.text


def test_tantivy_agrees_on_precedence_and_exclusion(engine):
    index, docs = engine
    for text in ["heart OR attack AND malaria", "heart AND -attack", '("heart attack"~1 OR "attack heart"~1) OR malaria', "(heart OR fever) AND -(attack OR malaria)"]:
        assert _tantivy_ids(index, text) == EV.select(q(text), docs), text


@pytest.mark.parametrize(
    "text", ['ж:gA', 'a AND 0:"0"', "ë>4", 'X?y>="v"', 'year>="2019"', "a-b:c", "x.y:z", "HIV/AIDS:x"]
)
def test_lucene_writes_field_names_and_quoted_comparisons_it_reads_back(text):
    query = blockgen.parse(text)
    assert read(write(query, "lucene").text, "lucene").query == query


@pytest.mark.parametrize("text", ["(OR? q)", '"C-x AND? "', "NOT? a"])
def test_lucene_escapes_a_wildcard_variant_spelt_like_an_operator(text):
    written = write(blockgen.parse(text), "lucene").text
    assert read(written, "lucene").query is not None and "\\" in written


@pytest.mark.parametrize("text", ['"??" AND a', '"x ??"'])
def test_lucene_writes_no_empty_wildcard_variant(text):
    writing = write(blockgen.parse(text), "lucene")
    assert read(writing.text, "lucene").query is not None
    assert "wildcard approximated" in [n.kind for n in writing.notes]
