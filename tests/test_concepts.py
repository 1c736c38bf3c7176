"""training.concepts: a text's own concepts as blocks, with synonyms only when they fit the context."""

from __future__ import annotations

import numpy as np
import pytest

from blockgen import parse
from training.concepts import close_synonyms, concept_query, concepts, segments, split_filters, synonym_candidates
from training.prepare_data import Sense

THESAURUS = {
    "climate change": [Sense("noun", ("global climate change", "global warming"))],
    "depression": [Sense("noun", ("clinical depression", "depressive disorder")), Sense("noun", ("economic crisis", "slump"))],
    "cancer": [Sense("noun", ("genus Cancer", "malignant neoplastic disease"))],
    "oct": [Sense("noun", ("October",))],
    "run": [Sense("verb", ("sprint",))],
}
HEADS = frozenset(h for h in THESAURUS if " " in h)


def embed_by_sense(texts):
    """A stand-in for the sentence encoder: texts about the economy point one way, everything else another."""
    economic = ("economic crisis", "slump")
    vectors = np.array([[0.0, 1.0] if any(w in t.lower() for w in economic) else [1.0, 0.0] for t in texts])
    return vectors


def test_filters_leave_the_text_and_become_leaves():
    text, filters = split_filters('multitasking stress AND fieldsOfStudy:"biology" AND yearPublished>=2019')
    assert text == "multitasking stress , ,"
    assert [str(f) for f in filters] == ['fieldsOfStudy:"biology"', "yearPublished>=2019"]


def test_segments_split_at_function_words_and_keep_abbreviations():
    assert segments("Diagnostic accuracy of computed tomography (CT) for the study of appendicitis") == [
        ("Diagnostic accuracy", None), ("computed tomography", "CT"), ("appendicitis", None)]


def test_concepts_cut_runs_around_thesaurus_entries():
    assert concepts("climate change misinformation", HEADS) == [("climate change", None), ("misinformation", None)]
    assert concepts("Impact of social media use", HEADS) == [("social media", None)]  # generic words at the edges go
    assert concepts("alpha beta gamma delta epsilon", frozenset(), max_words=3) == [("alpha beta gamma", None), ("delta epsilon", None)]


def test_synonym_candidates_take_every_noun_sense_but_not_proper_names_for_common_words():
    assert synonym_candidates("depression", THESAURUS) == ["clinical depression", "depressive disorder", "economic crisis", "slump"]
    assert synonym_candidates("oct", THESAURUS) == []
    assert synonym_candidates("run", THESAURUS) == []  # verbs are no concepts


def test_close_synonyms_keep_the_sense_of_the_text():
    text = "treatment-resistant depression in adults"
    found = close_synonyms(text, "depression", synonym_candidates("depression", THESAURUS), embed_by_sense)
    assert found == ["clinical depression", "depressive disorder"]
    assert close_synonyms(text, "cancer", synonym_candidates("cancer", THESAURUS), embed_by_sense) == []  # not in the text


def test_taxon_names_are_never_synonyms():
    found = close_synonyms("people with cancer", "cancer", synonym_candidates("cancer", THESAURUS), embed_by_sense)
    assert found == ["malignant neoplastic disease"]


@pytest.mark.parametrize("text, expected", [
    ("climate change misinformation", '("climate change" OR "global climate change" OR "global warming") AND misinformation'),
    ("Psychological therapies for depression in adults",
     '"Psychological therapies" AND (depression OR "clinical depression" OR "depressive disorder") AND adults'),
    ('cetirizine effects AND language:"zz"', 'cetirizine AND language:"zz"'),
])
def test_concept_query_copies_the_concepts_first(text, expected):
    query = concept_query(text, THESAURUS, embed_by_sense)
    assert str(query) == expected and parse(str(query)) == query


def test_a_text_without_concepts_gives_none():
    assert concept_query("the effects of", THESAURUS, embed_by_sense) is None


def test_in_place_replaces_the_first_whole_word_occurrence_in_any_case():
    from blockgen.concepts import in_place

    assert in_place("Climate change and climate", "climate", "weather") == "weather change and climate"
    assert in_place("microclimate change", "climate", "weather") is None
