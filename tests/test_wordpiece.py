"""blockgen.wordpiece: the byte convention for WordPiece tokens, and an encoder that reads back."""

from __future__ import annotations

import re
from functools import lru_cache

import pytest
from hypothesis import given, settings

from blockgen import is_valid, parse, wordpiece
from tests.test_grammar import query_strategy
from tests.tiny_models import llama3_tokenizer, save_tiny_bert


@lru_cache(maxsize=1)
def tokenizer():
    import tempfile

    from blockgen.minilm import load_tokenizer

    return load_tokenizer(save_tiny_bert(tempfile.mkdtemp(prefix="tinybert-")))


def pieces(text: str) -> list[str]:
    tok = tokenizer()
    return tok.convert_ids_to_tokens(wordpiece.encode(tok, text))


def test_only_wordpiece_tokenizers_are_wordpiece():
    assert wordpiece.is_wordpiece(tokenizer())
    assert not wordpiece.is_wordpiece(llama3_tokenizer())
    with pytest.raises(ValueError, match="not a WordPiece"):
        wordpiece.token_bytes(llama3_tokenizer())


def test_token_bytes_follow_the_convention():
    tok = tokenizer()
    table = wordpiece.token_bytes(tok)
    byte = dict(zip(tok.convert_ids_to_tokens(list(range(len(table)))), table))
    assert len(table) == len(tok)
    assert byte["[CLS]"] == byte["[SEP]"] == byte["[PAD]"] == byte["[unused0]"] == b""
    assert byte["##ing"] == b"ing" and byte["##-"] == b"-"
    assert byte["*"] == b"*" and byte['"'] == b'"' and byte["("] == b"("
    assert (byte["AND"], byte["OR"], byte["NOT"]) == (b" AND", b" OR", b" NOT")
    assert byte["climate"] == b" climate" and byte["7"] == b" 7"
    assert set(wordpiece.special_token_ids(tok)) >= {tok.cls_token_id, tok.sep_token_id, tok.convert_tokens_to_ids("[unused1]")}


@pytest.mark.parametrize("query, expected", [
    ("covid-19", ["covid", "-", "##1", "##9"]),  # no blank after inner punctuation
    ("alzheimer's", ["alzheimer", "'", "##s"]),
    ("child* OR behavio?r", ["child", "*", "OR", "b", "##e", "##h", "##a", "##v", "##i", "##o", "?", "##r"]),
    ('acne[tiab]', ["acne", "[", "##t", "##i", "##a", "##b", "]"]),  # a tag starts right after [
    ('("sea level")', ["(", '"', "sea", "level", '"', ")"]),  # after ( and " a word starts afresh
])
def test_encode_continues_a_word_after_inner_punctuation(query, expected):
    assert pieces(query) == expected


@pytest.mark.parametrize("query", [
    '(covid-19 OR "sea level") AND alzheimer\'s',
    'acne[tiab] OR "Acne Vulgaris"[Mesh] AND child* NOT behavio?r',
    'yearPublished>=2019 AND fieldsOfStudy:"biology" AND language:en',
    '"AND" OR climate',
])
def test_encoded_queries_read_back_as_the_same_lower_case_query(query):
    tok = tokenizer()
    text = wordpiece.decode(tok, wordpiece.encode(tok, query))
    assert parse(text) == parse(wordpiece.normalize(tok, query))
    assert wordpiece.round_trips(tok, query)


def test_text_the_vocabulary_cannot_spell_does_not_round_trip():
    tok = tokenizer()
    assert tok.unk_token_id in wordpiece.encode(tok, "气候")
    assert not wordpiece.round_trips(tok, '"气候" OR climate')
    assert not wordpiece.round_trips(tok, "climate AND")  # not a query


def test_normalize_lower_cases_but_keeps_the_operators():
    assert wordpiece.normalize(tokenizer(), 'Climate AND "Sea Level" OR Café') == 'climate AND "sea level" OR cafe'


_ASCII = re.compile(r"[\x20-\x7e]*\Z")


@settings(max_examples=40, deadline=None)
@given(query=query_strategy())
def test_encode_then_decode_changes_only_blanks(query):
    """For any query the grammar draws (ASCII ones: the tiny vocabulary spells those), the bytes of
    the encoded tokens are the normalised query with blanks added or dropped, and still valid."""
    if not _ASCII.match(query):
        return
    tok = tokenizer()
    text = wordpiece.decode(tok, wordpiece.encode(tok, query))
    assert re.sub(r"\s", "", text) == re.sub(r"\s", "", wordpiece.normalize(tok, query))
    assert is_valid(text), text
