"""blockgen.rerank: candidates most similar to the prompt first (a tiny BERT as the encoder here)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from blockgen import parse
from blockgen.generate import GeneratedQuery
from blockgen.rerank import Reranker, dedupe, generate_reranked, without_repeats
from tests.tiny_models import save_tiny_bert


def candidate(text: str, logprob: float = -1.0) -> GeneratedQuery:
    return GeneratedQuery(text, text, parse(text), True, False, logprob, 3, 0.0, False)


@lru_cache(maxsize=1)
def reranker() -> Reranker:
    import tempfile

    return Reranker(save_tiny_bert(Path(tempfile.mkdtemp(prefix="tinybert-")), seed=5))


def test_embeddings_are_unit_vectors_and_the_same_text_scores_one():
    vectors = reranker().embed(["acne treatment", "climate change", "acne treatment"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5) and np.allclose(vectors[0], vectors[2])
    assert reranker().similarities("acne treatment", ["acne treatment"])[0] == pytest.approx(1.0, abs=1e-5)


def test_rerank_drops_repeats_merges_duplicates_and_sorts_by_similarity():
    prompt = "acne treatment"
    cands = [candidate("climate OR change"), candidate("acne OR acne"), candidate("acne"), candidate("acne AND treatment")]
    ranked = reranker().rerank(prompt, cands)
    assert [c.text for c in ranked].count("acne") == 1 and len(ranked) == 3
    scores = reranker().similarities(prompt, [c.text for c in ranked])
    assert scores == sorted(scores, reverse=True)
    assert len(reranker().rerank(prompt, cands, n=2)) == 2


def test_without_repeats_keeps_candidates_without_repeats_as_they_are():
    c = candidate("a OR b")
    assert without_repeats(c) is c
    assert without_repeats(candidate("a OR a")).text == "a"
    assert [x.text for x in dedupe([candidate("a"), candidate("b"), candidate("a")])] == ["a", "b"]


def test_generate_reranked_draws_more_and_keeps_n():
    class Stub:
        def generate(self, prompts, n, **options):
            self.n = n
            return [[candidate(f"acne OR x{i}") for i in range(n)] for _ in prompts]

    stub = Stub()
    [best] = generate_reranked(stub, reranker(), ["acne"], n=3, oversample=2, seed=0)
    assert stub.n == 6 and len(best) == 3


def test_min_blocks_ranks_candidates_with_enough_blocks_first():
    tiny = reranker()
    prompt = "acne treatment"
    cands = [candidate("acne treatment"), candidate("acne AND therapy"), candidate("climate AND change")]
    tiny.min_blocks = 2
    try:
        ranked = [c.text for c in tiny.rerank(prompt, cands)]
    finally:
        tiny.min_blocks = 1
    assert ranked[-1] == "acne treatment" and set(ranked[:2]) == {"acne AND therapy", "climate AND change"}


def test_candidates_with_tags_pubmed_does_not_know_rank_after_the_others():
    prompt = "acne treatment"
    hidden = candidate('"acne treatment"[s people OR changing]')
    cands = [hidden, candidate("acne[tiab] AND therapy[MeSH Terms]"), candidate("climate")]
    ranked = [c.text for c in reranker().rerank(prompt, cands)]
    assert ranked[-1] == hidden.text and len(ranked) == 3


def test_a_generator_with_a_reranker_draws_oversample_times_n_and_reranks():
    from blockgen import QueryGenerator
    from tests.tiny_models import small_tokenizer, tiny_llama

    class Recorder:
        def __init__(self):
            self.seen = []

        def rerank(self, prompt, cands, n):
            self.seen.append(len(cands))
            return list(reversed(cands))[:n]

    tok = small_tokenizer()
    rec = Recorder()
    gen = QueryGenerator(tiny_llama(tok, seed=3), tok, reranker=lambda: rec, oversample=3)
    [plain] = gen.generate(["acne"], n=2, max_new_tokens=12, seed=0, rerank=False)
    assert rec.seen == [] and len(plain) <= 2
    [ranked] = gen.generate(["acne"], n=2, max_new_tokens=12, seed=0)
    assert rec.seen and rec.seen[0] > 2 and len(ranked) <= 2


def test_anchoring_rebuilds_candidates_on_the_prompt_concepts_and_fills_n():
    from blockgen.anchor import AnchorSettings

    anchoring = reranker().with_settings(anchor=AnchorSettings(direct=-1.0, max_alternatives=2))
    prompt = "acne treatment"
    cands = [candidate("(acne OR pimples) AND climate"), candidate("therapy AND acne")]
    ranked = anchoring.rerank(prompt, cands, n=4)
    texts = [c.text for c in ranked]
    assert len(texts) == len(set(texts)) == 4
    anchored = [c for c in ranked if c.anchored]
    assert anchored and all(str(c.query).startswith(('"acne treatment"', "acne")) for c in anchored)
    assert "climate" not in " ".join(texts[:1])  # a drifting block is never a block of its own
    assert anchoring.rerank(prompt, cands, n=4, anchor=False) == reranker().rerank(prompt, cands, n=4)
    assert reranker().anchor is None  # with_settings left the shared reranker as it was


def test_anchoring_falls_back_to_the_candidates_as_written_after_the_anchored_ones():
    from blockgen.anchor import AnchorSettings

    strict = reranker().with_settings(anchor=AnchorSettings(direct=1.0, max_alternatives=0))
    cands = [candidate("pimples AND therapy"), candidate("climate"), candidate("acne OR spots")]
    ranked = [c.text for c in strict.rerank("acne", cands, n=3)]
    assert ranked[0] == "acne" and set(ranked[1:]) <= {"pimples AND therapy", "climate", "acne OR spots"}
    assert len(ranked) == 3


def test_a_prompt_without_concepts_keeps_its_candidates_unanchored():
    from blockgen.anchor import AnchorSettings

    anchoring = reranker().with_settings(anchor=AnchorSettings(direct=-1.0))
    ranked = anchoring.rerank("of the", [candidate("acne OR spots"), candidate("climate")], n=2)
    assert sorted(c.text for c in ranked) == ["acne OR spots", "climate"] and not any(c.anchored for c in ranked)


def test_the_candidates_as_written_lose_the_filters_the_prompt_did_not_ask_for():
    from blockgen.anchor import AnchorSettings

    strict = reranker().with_settings(anchor=AnchorSettings(direct=1.0, max_alternatives=0))
    cands = [candidate('pimples AND documenttype:"thesis"'), candidate('spots AND (acne OR zits) AND language:"en"')]
    ranked = [c.text for c in strict.rerank("acne", cands, n=3)]
    assert ranked[0] == "acne" and set(ranked[1:]) == {"pimples", "spots AND (acne OR zits)"}
    # a filter the prompt asks for stays (in any letter case), and so does a candidate that is only a filter
    asked = [c.text for c in strict.rerank('acne documentType:"thesis"', cands + [candidate('language:"en"')], n=4)]
    assert 'pimples AND documenttype:"thesis"' in asked and 'spots AND (acne OR zits)' in asked
    assert 'language:"en"' in asked
    # a comparison is a filter too, and the one asked for is the one with the same operator
    years = [c.text for c in strict.rerank("acne yearPublished>=2019", [candidate("spots AND yearPublished<2019"),
                                                                      candidate("zits AND yearPublished>=2019")], n=4)]
    assert "spots" in years and "zits AND yearPublished>=2019" in years
