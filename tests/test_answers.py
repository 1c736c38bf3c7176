"""blockgen/answers.py: the query pulled out of a model's answer, and repair() using it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blockgen import parse, repair
from blockgen.answers import AnswerError, extract_query
from blockgen.evaluate import Evaluator
from blockgen.query import And, Comparison, Field, Not, Node, Or, Phrase, Term
from blockgen.repair import RepairError

from tests.dialect_trees import documents, trees, word, words

QUERY = '("climate change" OR "global warming") AND twitter'


@pytest.mark.parametrize(
    "answer, source",
    [
        (json.dumps({"query": QUERY}), "json"),
        (repr({"query": QUERY}), "dict"),
        (json.dumps({"response": {"boolean_query": QUERY, "notes": "x"}}), "json"),
        (json.dumps({"Search Query": QUERY}), "json"),
        (json.dumps([QUERY, "other"]), "json"),
        (f"```\n{QUERY}\n```", "fence"),
        (f"Here it is:\n```boolean\n{QUERY}\n```\nGood luck!", "fence"),
        (f"```json\n{json.dumps({'query': QUERY})}\n```", "json"),
        (f"```\n{QUERY}", "fence"),  # a fence cut off by the budget
        (f"Query: {QUERY}", "prose"),
        (f"**Boolean query:** {QUERY}\n\nThis query combines two concepts.", "prose"),
        (f"Final search string:\n{QUERY}\n\nExplanation follows.", "prose"),
        (f"Sure, here is a query that should work well for you:\n{QUERY}\nIt finds papers on both topics.", "lines"),
        (f"`{QUERY}`", "quoted"),
    ],
)
def test_the_query_is_pulled_out_of_the_answer(answer, source):
    found = extract_query(answer)
    assert found.source == source
    assert parse(found.text.replace("'", '"')) == parse(QUERY)


def test_outer_quotes_are_removed_only_from_text_that_is_not_valid_as_it_stands():
    assert extract_query('"(a OR b) AND c"').text == '"(a OR b) AND c"'
    assert extract_query('"(a OR b) AND c"', keep_valid=False).text == "(a OR b) AND c"
    assert extract_query('"(a OR b) AND c(" ').source == "plain"


def test_a_cut_off_dict_still_gives_its_query_string():
    found = extract_query('{"query": "(climate change OR \\"global warm')
    assert found.source == "dict" and found.text == '(climate change OR "global warm'


@pytest.mark.parametrize("text", [QUERY, '"(a OR b) AND c"', "a AND b\nOR c", "climate change"])
def test_a_valid_query_is_left_as_it_is(text):
    assert extract_query(text).text == text and not extract_query(text).extracted


ES = {
    "query": {
        "bool": {
            "must": [
                {"match": {"title": "climate change"}},
                {"bool": {"should": [{"match_phrase": {"abstract": "social media"}}, {"match": {"abstract": {"query": "twitter x", "operator": "and"}}}]}},
            ],
            "filter": [{"range": {"yearPublished": {"gte": 2019}}}],
            "must_not": [{"term": {"language": "de"}}],
        }
    }
}


def test_an_elasticsearch_bool_query_is_converted():
    found = extract_query(json.dumps(ES))
    assert found.source == "elasticsearch"
    assert parse(found.text) == Not(
        And((
            Or((Term("climate", "ti"), Term("change", "ti"))),
            Or((Phrase("social media", "ab"), Term("twitter x", "ab"))),
            Comparison("yearPublished", ">=", "2019"),
        )),
        Field("language", "de", True),
    )


@pytest.mark.parametrize(
    "clause, message",
    [
        ({"bool": {"must": [{"match": {"title": "a"}}], "should": [{"match": {"title": "b"}}]}}, "minimum_should_match"),
        ({"bool": {"must_not": [{"match": {"title": "a"}}]}}, "only must_not"),
        ({"fuzzy": {"title": "a"}}, "fuzzy"),
        ({"bool": {"must": [{"script": {"source": "x"}}]}}, "script"),
    ],
)
def test_an_elasticsearch_query_that_cannot_be_converted_is_refused(clause, message):
    with pytest.raises(AnswerError, match=message):
        extract_query(json.dumps({"query": clause}))
    with pytest.raises(RepairError, match=message):
        repair(json.dumps({"query": clause}))


def test_a_json_boolean_tree_is_converted():
    answer = repr({"query": {"AND": [{"OR": ["Japanese encephalitis vaccine", "JE"]}, {"term": {"safety": {}}}, {"NOT": ["animals"]}]}})
    found = extract_query(answer)
    assert found.source == "json tree"
    assert parse(found.text) == Not(And((Or((Phrase("Japanese encephalitis vaccine"), Term("JE"))), Term("safety"))), Term("animals"))
    with pytest.raises(AnswerError, match="adjacency"):
        extract_query(repr({"query": {"AND": [{"pregnancy": {"adjacency": {"words_within": 5}}}]}}))


def test_prose_lines_are_removed_and_query_lines_kept():
    answer = '("acne vulgaris" OR acne) -- first concept\n\n(blue light OR phototherapy)\n\nThis query combines the two main concepts of the review.'
    found = extract_query(answer)
    assert found.source == "lines" and "blue light" in found.text and "combines" not in found.text


def test_ovid_lines_are_not_prose():
    strategy = "randomized controlled trial.pt.\nexp Malaria/\n1 or 2\n(rapid adj3 test$).ti,ab. AND placebo"
    assert not extract_query(strategy).extracted


def test_a_dict_without_a_query_is_refused():
    with pytest.raises(AnswerError, match="without a query"):
        extract_query('{"keywords": ["a", "b"]}')


def test_not_a_string_is_a_type_error():
    with pytest.raises(TypeError):
        extract_query(b"a")  # type: ignore[arg-type]


def test_repair_records_the_extraction_as_an_edit():
    result = repair(json.dumps({"query": QUERY}))
    assert result.query == parse(QUERY)
    assert result.edits[0].kind == "extracted query" and result.repaired


def test_repair_reads_typographic_quotes_as_quotes_beside_straight_ones():
    result = repair('“climate change” OR "global warming" OR „social media“')
    assert result.query == Or((Phrase("climate change"), Phrase("global warming"), Phrase("social media")))
    assert {e.kind for e in result.edits} == {"normalised quote"}
    assert all("typographic quote" in e.detail for e in result.edits)


def _es(node: Node) -> dict:
    """A tree as an Elasticsearch bool query (test helper)."""
    if isinstance(node, Term):
        return {"match": {"title": {"query": node.text, "operator": "and"}}}
    if isinstance(node, Phrase):
        return {"match_phrase": {"title": node.text}}
    if isinstance(node, Or):
        return {"bool": {"should": [_es(i) for i in node.items]}}
    if isinstance(node, And):
        return {"bool": {"must": [_es(i) for i in node.items]}}
    assert isinstance(node, Not)
    return {"bool": {"must": [_es(node.positive)], "must_not": [_es(node.negative)]}}


_leaf = st.one_of(st.builds(Term, word), st.builds(Phrase, words))


@given(trees(_leaf), st.sampled_from(["json", "dict", "fence", "prose"]))
def test_a_wrapped_query_repairs_to_the_query_and_no_wrapper_key_becomes_a_term(query, wrap):
    text = str(query)
    answer = {
        "json": json.dumps({"query": text}),
        "dict": repr({"query": text}),
        "fence": f"Here you go:\n```\n{text}\n```",
        "prose": f"Query: {text}",
    }[wrap]
    assert repair(answer).query == query


@given(trees(_leaf), st.lists(documents(fields=("ti",)), min_size=1, max_size=5))
def test_an_elasticsearch_query_repairs_to_what_it_means(query, docs):
    result = repair(json.dumps({"query": _es(query)}))
    words_out = {w.lower() for leaf in result.query.leaves() for w in getattr(leaf, "text", "").split()}
    assert not words_out & {"bool", "must", "should", "must_not", "match", "query", "title"}
    ev = Evaluator()
    titled = _title(query)
    for doc in docs:
        assert ev.matches(result.query, doc) == ev.matches(titled, doc)


def _title(node: Node) -> Node:
    from blockgen.dialects._walk import map_leaves

    return map_leaves(node, lambda leaf: type(leaf)(leaf.text, "ti"))  # type: ignore[return-value]


def test_typographic_quotes_inside_a_straight_quoted_phrase_are_its_text():
    assert repair('"the “big” one" OR (x').query == Or((Phrase("the “big” one"), Term("x")))
