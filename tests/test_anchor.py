"""blockgen.anchor: generated queries rebuilt on the prompt's concepts, with the model's close terms only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blockgen import parse
from blockgen.anchor import AnchorSettings, anchor_queries, broader, skeleton, trimmed
from blockgen.parser import is_valid
from blockgen.query import blocks, terms

HEADS = frozenset({"climate change", "social media"})
#: Topics of a stand-in encoder: a text points along the axis of the first topic whose stem it holds.
TOPICS = ("climat", "misinform", "media", "rail")


def embed_by_topic(texts):
    """A stand-in sentence encoder: unit vectors, one axis per topic (the last for anything else)."""
    out = np.zeros((len(texts), len(TOPICS) + 1))
    for i, text in enumerate(texts):
        axis = next((k for k, stem in enumerate(TOPICS) if stem in text.lower()), len(TOPICS))
        out[i, axis] = 1.0
    return out


def test_the_skeleton_is_the_prompts_concepts_in_order_with_filters_last():
    frame = skeleton('climate change misinformation AND language:"en"', HEADS)
    assert [str(c) for c in frame.concepts] == ['"climate change"', "misinformation"]
    assert [str(f) for f in frame.filters] == ['language:"en"']
    assert len(skeleton("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu", frozenset(),
                        max_blocks=2).concepts) == 2


def test_close_terms_join_their_concept_and_drift_is_dropped():
    frame = skeleton("climate change misinformation", HEADS)
    query = parse('("global climate" OR railway) AND (disinformation OR "climate change") AND misinformed')
    [anchored] = anchor_queries(frame, [query], embed_by_topic, AnchorSettings(direct=0.5))
    assert str(anchored) == '("climate change" OR "global climate") AND (misinformation OR misinformed)'


def test_terms_that_only_narrow_a_concept_are_left_out():
    frame = skeleton("climate change misinformation", HEADS)
    query = parse('("climate changes policy" OR "climate change*") AND misinformation')
    [anchored] = anchor_queries(frame, [query], embed_by_topic)
    assert str(anchored) == '("climate change" OR "climate change*") AND misinformation'


def test_terms_under_not_are_no_synonyms_and_max_alternatives_holds():
    frame = skeleton("climate change", HEADS)
    query = parse("(climatic OR climatology OR climates OR climatologist) NOT climatism")
    [anchored] = anchor_queries(frame, [query], embed_by_topic, AnchorSettings(max_alternatives=2))
    assert str(anchored) == '"climate change" OR climatic OR climatology'


def test_a_prompt_without_concepts_or_a_missing_query_is_left_as_it_is():
    query = parse("a OR b")
    assert anchor_queries(skeleton("of the and", HEADS), [query], embed_by_topic) == [query]
    assert anchor_queries(skeleton("climate change", HEADS), [None], embed_by_topic) == [None]


def test_trimmed_drops_alternatives_down_to_the_bare_concepts():
    frame = skeleton("climate change misinformation", HEADS)
    query = parse('("climate change" OR climatic OR "global climate") AND (misinformation OR misinformed)')
    assert [str(v) for v in trimmed(query, frame)] == [
        '("climate change" OR climatic) AND (misinformation OR misinformed)',
        '"climate change" AND (misinformation OR misinformed)',
        '"climate change" AND misinformation',
    ]


def test_broader_splits_each_phrase_concept_into_its_words():
    frame = skeleton("climate change misinformation", HEADS)
    assert [str(v) for v in broader(frame)] == ["climate AND change AND misinformation"]


@pytest.mark.parametrize("bad", [{"direct": 2.0}, {"max_alternatives": -1}, {"max_blocks": 0}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        AnchorSettings(**bad)


def test_unknown_setting_names_are_refused():
    with pytest.raises(ValueError, match="unknown anchor setting"):
        AnchorSettings.from_dict({"drect": 0.5})


WORDS = st.sampled_from(["climate", "change", "misinformation", "railway", "media", "climatic", "fake", "news"])
LEAF = st.lists(WORDS, min_size=1, max_size=3).map(lambda ws: '"' + " ".join(ws) + '"' if len(ws) > 1 else ws[0])
BLOCK = st.lists(LEAF, min_size=1, max_size=4).map(lambda ls: "(" + " OR ".join(ls) + ")")
QUERY = st.lists(BLOCK, min_size=1, max_size=4).map(" AND ".join)
PROMPT = st.lists(WORDS, min_size=1, max_size=6).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(PROMPT, st.lists(QUERY, min_size=1, max_size=4), st.floats(-1.0, 1.0), st.integers(0, 4))
def test_anchored_queries_are_valid_keep_every_concept_first_and_repeat_no_term(prompt, texts, direct, k):
    frame = skeleton(prompt, HEADS)
    out = anchor_queries(frame, [parse(t) for t in texts], embed_by_topic, AnchorSettings(direct=direct, max_alternatives=k))
    for query in out:
        assert is_valid(str(query)) and parse(str(query)) == query
        found = blocks(query)
        assert len(found) == len(frame.concepts)
        assert [b.terms()[0] for b in found] == list(frame.concepts)
        assert all(len(b.terms()) <= 1 + k for b in found)
        keys = [t.text.lower() for t in terms(query)]
        assert len(keys) == len(set(keys))


def test_terms_that_borrow_another_concepts_word_repeat_a_word_or_spell_an_operator_are_left_out():
    frame = skeleton("climate change misinformation", HEADS)
    query = parse('("climate misinformation" OR "climate climate" OR "climate AND change" OR "global climate") AND misinformation')
    [anchored] = anchor_queries(frame, [query], embed_by_topic, AnchorSettings(direct=0.5))
    assert str(anchored) == '("climate change" OR "global climate") AND misinformation'


def test_the_in_context_check_keeps_only_terms_that_fit_the_prompt():
    def embed(texts):  # "weather" alone is climate-like, but the prompt with it in place is not
        return embed_by_topic([t.replace("weather", "climat") if " " not in t else t for t in texts])

    frame = skeleton("climate change misinformation", HEADS)
    query = parse('("global climate" OR weather) AND misinformation')
    loose, strict = (anchor_queries(frame, [query], embed, AnchorSettings(direct=0.5, in_context=c))[0] for c in (None, 0.99))
    assert str(loose) == '("climate change" OR "global climate" OR weather) AND misinformation'
    assert str(strict) == '("climate change" OR "global climate") AND misinformation'
