"""BudgetedMatcher: grammar + budget-aware closing for any model, tested with hand-made logits."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from blockgen import is_valid, parse
from blockgen.constrained import BatchMasks, GrammarEngine, allowed_bits, bits_to_bool, token_classes
from blockgen.need import Prefix
from blockgen.repeats import repeated_terms
from tests.test_grammar import query_strategy
from tests.tiny_models import llama3_tokenizer, small_tokenizer


@lru_cache(maxsize=None)
def engine(kind: str) -> GrammarEngine:
    return GrammarEngine.for_tokenizer(llama3_tokenizer() if kind == "llama3" else small_tokenizer())


@lru_cache(maxsize=None)
def opener_boost(kind: str) -> np.ndarray:
    """Scores that favour tokens opening groups, phrases and tags, and operators: hard to close in time."""
    e = engine(kind)
    return np.array(
        [6.0 if any(c in t for c in b'(["') else 3.0 if (b"OR" in t or b"AND" in t or b"NOT" in t) else 0.0 for t in e.tokens]
    )


def write(e: GrammarEngine, budget: int, seed: int, *, greedy: bool, boost: np.ndarray, no_repeats: bool = False):
    """Decode with hand-made logits: random scores plus ``boost``, sampled (or argmax) over ``allowed``."""
    rng = np.random.default_rng(seed)
    m = e.matcher(budget, no_repeats=no_repeats)
    while not m.done and m.remaining > 0:
        scores = rng.normal(size=e.vocab_size) * 2 + boost
        allowed = m.allowed(scores)
        assert allowed.any()
        masked = np.where(allowed, scores, -np.inf)
        if greedy:
            tok = int(np.argmax(masked))
        else:
            p = np.exp(masked - masked.max())
            tok = int(rng.choice(len(p), p=p / p.sum()))
        m.advance(tok)
    return m


def test_token_classes_mark_whole_words_single_bytes_and_bounds():
    tokens = [b"a", b" climate", b"(", b'")', b"AND", b" OR", b"\xc3", b"child*", b"x-"]
    classes = token_classes(tokens, use_disk=False, k=1)
    assert classes.content.tolist() == [True, True, False, False, False, False, False, True, False]
    assert classes.single_byte.tolist() == [True, False, True, False, False, False, True, False, False]
    # words and blanks cannot raise the need; "(" opens a group (a term and a closer); a cut byte misses one
    assert classes.bound.tolist()[:3] == [0, 0, 2] and classes.bound[6] == 1


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["small", "llama3"]), budget=st.integers(1, 24), seed=st.integers(0, 2**31), greedy=st.booleans())
def test_sampling_from_allowed_always_writes_a_valid_query_within_the_budget(kind, budget, seed, greedy):
    m = write(engine(kind), budget, seed, greedy=greedy, boost=opener_boost(kind))
    assert is_valid(m.text.decode()), m.text
    assert len(m.tokens) + int(m.done) <= budget


@settings(max_examples=40, deadline=None)
@given(query_strategy(), st.data())
def test_the_token_bound_never_underestimates_how_much_a_token_raises_the_need(text, data):
    e = engine("small")
    prefix = Prefix.empty().extend(text[: data.draw(st.integers(0, len(text)))].encode())
    assert prefix is not None
    before = e.need_tokens(prefix.need)
    for tok in data.draw(st.lists(st.integers(0, e.vocab_size - 1), min_size=1, max_size=20)):
        after = prefix.extend(e.tokens[tok])
        if after is not None:
            assert e.need_tokens(after.need) - before <= e.classes.bound[tok], (prefix.text, e.tokens[tok])


def test_advance_refuses_a_token_that_leaves_no_room_to_close():
    e = engine("small")
    m = e.matcher(3)
    m.advance(e.encode("(")[0])  # needs a term and ")": both tokens left
    with pytest.raises(ValueError):
        m.advance(e.encode("(")[0])  # another group could not be closed in time
    assert m.finishing
    token, cls = m.finish_plan()
    assert token is None and cls is e.classes.content  # a term first


def test_the_closer_is_forced_when_the_budget_runs_out():
    e = engine("llama3")
    m = e.matcher(3)
    for text in ("(", "a"):
        m.advance(e.encode(text)[0])
    close = e.encode(")")[0]
    assert m.finishing and m.finish_plan() == (close, None)
    with pytest.raises(ValueError):
        m.advance(e.encode(" OR")[0])
    allowed = m.allowed(np.zeros(e.vocab_size))
    assert np.flatnonzero(allowed).tolist() == [close]
    m.advance(close)
    assert m.text == b"(a)" and m.prefix.complete


def test_allowed_at_the_last_token_lets_only_complete_queries_through():
    e = engine("small")
    m = e.matcher(3)
    m.advance(e.encode("(")[0])
    allowed = m.allowed(np.zeros(e.vocab_size))
    for tok in np.flatnonzero(allowed):
        prefix = m.prefix.extend(e.tokens[tok])
        assert prefix is not None and e.need_tokens(prefix.need) <= 1


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_no_repeats_writes_no_repeated_term_when_the_budget_allows(seed):
    """Scores that love ' a', ' b' and ' OR': the matcher must avoid 'a OR a'."""
    e = engine("llama3")
    boost = np.zeros(e.vocab_size)
    for text, value in ((" a", 9.0), (" b", 8.0), (" OR", 8.5)):
        boost[e.encode(text)[0]] = value
    m = write(e, 40, seed, greedy=False, boost=boost, no_repeats=True)
    query = parse(m.text.decode())
    assert not m.forced_repeat and repeated_terms(query) == [], m.text


def test_batch_masks_equal_single_masks_and_fill_a_shared_matcher_once():
    e = engine("small")
    a, b = e.matcher(8), e.matcher(8)
    b.advance(e.encode("(")[0])
    with BatchMasks(e, 3, threads=1) as masks:
        masks.start([(a, 0), (b, 1), (a, 2)])
        allowed = masks.allowed()
        bias = masks.result(e.vocab_size + 5)
    assert (allowed[0] == a.grammar_mask()).all() and (allowed[1] == b.grammar_mask()).all()
    assert (allowed[2] == allowed[0]).all()
    assert bias.shape == (3, e.vocab_size + 5) and np.isinf(bias[:, e.vocab_size :]).all()
    assert ((bias[:, : e.vocab_size] == 0) == allowed).all()


#: Tokens whose bound needs care: operators inside and outside words, wildcards, closers before operators.
TRICKY = [b" AND", b"AND", b"AN", b"D", b" NOT", b"NO", b"T", b" OR", b"O", b"R", b".NOT", b"-AND", b"ANDROID", b"a*", b"***",
          b"?", b")AND", b'"OR', b" AND OR", b"xAND", b"A", b" a", b"b", b"(", b")", b'"', b"[", b"]", b"-", b" ", b"ORT", b"ANDx"]


@settings(max_examples=60, deadline=None)
@given(query_strategy(), st.data())
def test_the_bound_of_operator_word_and_wildcard_tokens_never_underestimates_the_raise(text, data):
    e = engine("small")
    classes = token_classes(TRICKY, use_disk=False, k=e._forced_width())
    prefix = Prefix.empty().extend(text[: data.draw(st.integers(0, len(text)))].encode())
    assert prefix is not None
    before = e.need_tokens(prefix.need)
    for i, raw in enumerate(TRICKY):
        after = prefix.extend(raw)
        if after is not None:
            assert e.need_tokens(after.need) - before <= classes.bound[i], (prefix.text, raw)


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["small", "llama3"]), budget=st.integers(1, 16), seed=st.integers(0, 2**31), no_repeats=st.booleans())
def test_allowed_bits_allow_only_tokens_that_keep_the_query_finishable(kind, budget, seed, no_repeats):
    e = engine(kind)
    rng = np.random.default_rng(seed)
    matchers = [e.matcher(budget, no_repeats=no_repeats) for _ in range(3)]
    with BatchMasks(e, 3, threads=1, convert=False) as masks:
        while any(not m.done and m.remaining > 0 for m in matchers):
            live = [m if not m.done and m.remaining > 0 else None for m in matchers]
            masks.start([(m, r) for r, m in enumerate(live) if m is not None])
            grammar = masks.bits()
            scores = rng.normal(size=(3, e.vocab_size)) * 2 + opener_boost(kind)
            bits = allowed_bits(e, live, grammar, scores, [e.eos_token_id])
            allowed = bits_to_bool(bits, e.vocab_size)
            for r, m in enumerate(live):
                if m is None:
                    assert np.flatnonzero(allowed[r]).tolist() == [e.eos_token_id]
                    continue
                ids = np.flatnonzero(allowed[r])
                assert len(ids) and (bits_to_bool(grammar[r : r + 1], e.vocab_size)[0][ids]).all()
                for tok in rng.choice(ids, size=min(5, len(ids)), replace=False):
                    assert m.preview(int(tok), repeats=False) is not None, (m.text, e.tokens[tok])
                masked = np.where(allowed[r], scores[r], -np.inf)
                m.advance(int(np.argmax(masked)))
    for m in matchers:
        assert is_valid(m.text.decode()) and len(m.tokens) + int(m.done) <= budget, m.text


def test_allowed_bits_never_refuse_a_token_the_bound_vouches_for():
    e = engine("llama3")
    m = e.matcher(12)
    m.advance(e.encode("(")[0])
    with BatchMasks(e, 1, threads=1, convert=False) as masks:
        masks.start([(m, 0)])
        grammar = masks.bits()
        allowed = bits_to_bool(allowed_bits(e, [m], grammar, np.zeros((1, e.vocab_size)), [e.eos_token_id]), e.vocab_size)[0]
    vouched = bits_to_bool(grammar, e.vocab_size)[0] & (e.classes.bound <= m.remaining - 1 - m.need_tokens)
    vouched[e.eos_token_id] = False
    assert vouched.any() and not (vouched & ~allowed).any()


@pytest.mark.parametrize("text", ["(Київ OR Kyiv) AND Việt", '"气候变化" OR 气候变化 OR हिन्दी'])
def test_the_grammar_mask_lets_words_of_every_script_through(text):
    """llguidance compiles the grammar's \\p{..} classes: each token of a Unicode query is allowed in turn."""
    e = engine("llama3")
    ids = llama3_tokenizer().encode(text, add_special_tokens=False)
    m = e.matcher(64)
    for tok in ids:
        assert m.grammar_mask()[tok], (text, e.tokens[tok])
        m.advance(tok)
    assert is_valid(text)


def test_token_classes_count_letters_of_every_script_as_word_content():
    tokens = ["Київ".encode(), "气候".encode(), "हिन्दी".encode(), b"_x"]
    assert token_classes(tokens, use_disk=False, k=1).content.tolist() == [True, True, True, False]
