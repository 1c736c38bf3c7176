"""The Sim4IA 2025 Task A1 metrics, reproduced offline.

Definitions (as the official evaluator computes them, see ``shared/data/README.md``):

* a run gives, per session, up to 10 ranked candidate queries; only the first 10 count and a
  missing or blank candidate counts as similarity 0;
* similarity of two texts = (cos + 1) / 2 of their all-MiniLM-L6-v2 embeddings; the true
  next query has its ``'`` characters removed before embedding;
* **Average Similarity**: mean over the 10 candidates of similarity(candidate, true query),
  averaged over sessions;
* **Rank-Diversity Score**: the reciprocal rank of the first candidate with similarity
  >= 0.7 (0 if none), averaged over sessions, times (1 - the run's Jaccard Redundancy). The
  official evaluator multiplies the two *run-level* means (not per session);
  :attr:`RunScores.rank_diversity_per_session` gives the per-session product too;
* **Redundancy**: mean pairwise similarity of the session's non-blank candidates (0 when
  fewer than two), averaged over sessions;
* **Jaccard Redundancy**: mean over all 45 pairs of the 10 candidate slots of the Jaccard
  index of their lower-cased whitespace-separated word sets (a pair with a blank slot
  counts 0), averaged over sessions.

Everything here is pure: the embedding function is passed in (``embed(texts) -> matrix``),
so tests can use a fake one and the real model is loaded only by :mod:`benchmarks.embeddings`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

TOP_K = 10
RELEVANCE_THRESHOLD = 0.7

#: ``embed(texts)`` -> array of shape (len(texts), dim).
Embed = Callable[[Sequence[str]], np.ndarray]


def clean_truth(query: str) -> str:
    """The true next query as the official evaluator embeds it: without ``'``."""
    return query.replace("'", "")


def pad_candidates(candidates: Optional[Sequence[object]], k: int = TOP_K) -> list[str]:
    """The first ``k`` candidates, non-strings as blank, padded with blanks to ``k``."""
    cands = [c if isinstance(c, str) else "" for c in list(candidates or [])[:k]]
    return cands + [""] * (k - len(cands))


def is_blank(candidate: str) -> bool:
    return not candidate.strip()


def word_jaccard(a: str, b: str) -> float:
    """Jaccard index of the lower-cased whitespace-separated word sets (1.0 if both are empty)."""
    sa, sb = set(a.lower().split()), set(b.lower().split())
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def jaccard_redundancy(candidates: Sequence[str]) -> float:
    """Mean :func:`word_jaccard` over all pairs of candidate slots; a pair with a blank slot counts 0."""
    pairs = list(combinations(candidates, 2))
    if not pairs:
        return 0.0
    return sum(0.0 if is_blank(a) or is_blank(b) else word_jaccard(a, b) for a, b in pairs) / len(pairs)


def reciprocal_rank(similarities: Sequence[float], threshold: float = RELEVANCE_THRESHOLD) -> float:
    """1 / rank of the first similarity >= ``threshold`` (ranks from 1), 0.0 if there is none."""
    for i, sim in enumerate(similarities):
        if sim >= threshold:
            return 1.0 / (i + 1)
    return 0.0


def similarity_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(cos + 1) / 2 between every row of ``a`` and every row of ``b``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (an @ bn.T + 1.0) / 2.0


@dataclass
class SessionScores:
    """The metrics of one session."""

    similarities: list[float]
    average_similarity: float
    reciprocal_rank: float
    redundancy: float
    jaccard_redundancy: float

    @property
    def rank_diversity(self) -> float:
        """Per-session product RR × (1 - Jaccard Redundancy) (not the official aggregation)."""
        return self.reciprocal_rank * (1.0 - self.jaccard_redundancy)


def score_session(candidates: Optional[Sequence[object]], truth: str, embed: Embed, k: int = TOP_K) -> SessionScores:
    """Score one session's candidate list against its true next query."""
    cands = pad_candidates(candidates, k)
    present = [i for i, c in enumerate(cands) if not is_blank(c)]
    vectors = embed([cands[i] for i in present] + [clean_truth(truth)]) if present else None
    sims = [0.0] * k
    redundancy = 0.0
    if vectors is not None:
        cand_vecs, truth_vec = vectors[:-1], vectors[-1:]
        for i, s in zip(present, similarity_matrix(cand_vecs, truth_vec)[:, 0]):
            sims[i] = float(s)
        if len(present) >= 2:
            pair = similarity_matrix(cand_vecs, cand_vecs)
            iu = np.triu_indices(len(present), 1)
            redundancy = float(pair[iu].mean())
    return SessionScores(
        similarities=sims,
        average_similarity=sum(sims) / k,
        reciprocal_rank=reciprocal_rank(sims),
        redundancy=redundancy,
        jaccard_redundancy=jaccard_redundancy(cands),
    )


@dataclass
class RunScores:
    """The run-level metrics, with the per-session scores they come from."""

    average_similarity: float
    rank_diversity: float
    redundancy: float
    jaccard_redundancy: float
    mean_reciprocal_rank: float
    rank_diversity_per_session: float
    sessions: dict[str, SessionScores] = field(default_factory=dict)

    def as_row(self) -> dict[str, float]:
        """The four published columns (plus MRR), as in ``evaluation_results_A1.csv``."""
        return {
            "Average Similarity": self.average_similarity,
            "Average Rank-Diversity Score": self.rank_diversity,
            "Average Redundancy": self.redundancy,
            "Average Jaccard Redundancy": self.jaccard_redundancy,
            "MRR@0.7": self.mean_reciprocal_rank,
        }


def score_run(run: Mapping[str, Sequence[object]], truths: Mapping[str, str], embed: Embed, k: int = TOP_K) -> RunScores:
    """Score a run (candidates per session key) against the true next query of every session in ``truths``.

    Sessions missing from the run count with an empty candidate list (all zeros).
    """
    if not truths:
        raise ValueError("no sessions to score")
    sessions = {key: score_session(run.get(key, []), truth, embed, k) for key, truth in truths.items()}
    values = list(sessions.values())

    def mean(xs: Sequence[float]) -> float:
        return float(sum(xs) / len(xs)) if xs else math.nan

    mrr = mean([s.reciprocal_rank for s in values])
    jac = mean([s.jaccard_redundancy for s in values])
    return RunScores(
        average_similarity=mean([s.average_similarity for s in values]),
        rank_diversity=mrr * (1.0 - jac),
        redundancy=mean([s.redundancy for s in values]),
        jaccard_redundancy=jac,
        mean_reciprocal_rank=mrr,
        rank_diversity_per_session=mean([s.rank_diversity for s in values]),
        sessions=sessions,
    )
