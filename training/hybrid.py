"""Concept queries enriched with the real answers' terms, and Sim4IA session steps: the default model's data.

Measured on the validation split (``training/EXPERIMENTS.md``), the deterministic concept query of a
prompt (:mod:`training.concepts`: the prompt's concepts as blocks, its own words first) is closer to
the experts' CLEF strategies than the title itself, while the real answers (expert strategies, the
Sim4IA Boolean runs) taught the first MiniLM model long lists that drift off the topic. Two kinds of
pairs combine both, made from ``train.jsonl`` as it is (no new source text, the split kept):

* ``hybrid``: a prompt that has both a concept pair and real pairs -> its concept query, each block
  extended with up to ``max_extra`` terms of the real answers that are close to that block's concept
  in all-MiniLM-L6-v2 space (cosine >= ``threshold``; each real term goes to its closest block only):
  ``"human papillomaviruses" ...`` -> ``("human papillomaviruses" OR HPV* OR "human papilloma virus*") AND ...``;
* ``steps``: a Sim4IA session's consecutive distinct queries ``q_i -> q_(i+1)`` on one topic (cosine >= 0.5) (the user's real
  next query, Task A1's target) as ``q_i`` -> the concept query of ``q_(i+1)``, for the sessions
  whose concept pairs are in ``train.jsonl`` (held-out and validation sessions never are).

``python -m training.hybrid --data training/data`` writes ``<data>/hybrid.jsonl`` (deterministic).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

THRESHOLD = 0.6
MAX_EXTRA = 3
#: A session step whose two queries are less similar than this changes the topic: not used.
STEP_COSINE = 0.5
PROMPT_SUFFIX = ". Output:"


def _leaves(text: str) -> list:
    from blockgen.parser import QuerySyntaxError, parse

    try:
        return list(parse(text).leaves())
    except QuerySyntaxError:
        return []


def enrich(concept_completion: str, real_answers: Sequence[str], embed: Callable, threshold: float = THRESHOLD,
           max_extra: int = MAX_EXTRA) -> Optional[str]:
    """The concept query with each block extended by the close terms of ``real_answers`` (see the module)."""
    from blockgen.parser import QuerySyntaxError, parse
    from blockgen.query import And, Or, make_and, make_or
    from blockgen.repeats import term_key

    try:
        query = parse(concept_completion)
    except QuerySyntaxError:
        return None
    blocks = list(query.items) if isinstance(query, And) else [query]
    groups = [list(b.items) if isinstance(b, Or) else [b] for b in blocks]
    seen = {term_key(leaf) for leaf in query.leaves()}
    candidates, keys = [], set()
    for answer in real_answers:
        for leaf in _leaves(answer):
            key = term_key(leaf)
            if key in seen or key in keys or getattr(leaf, "tag", None):
                continue
            text = getattr(leaf, "text", None)
            if not text or len(text) > 40:
                continue
            keys.add(key)
            candidates.append(leaf)
    heads = [getattr(g[0], "text", None) for g in groups]
    usable = [i for i, h in enumerate(heads) if h and len(groups[i]) < 1 + MAX_EXTRA + 3]
    if not candidates or not usable:
        return str(query)
    vectors = embed([heads[i] for i in usable] + [c.text.replace("*", "").replace("?", "") for c in candidates])
    concept_vecs, cand_vecs = vectors[: len(usable)], vectors[len(usable):]
    sims = cand_vecs @ concept_vecs.T  # (candidates, blocks)
    best = sims.argmax(1)
    extra: dict[int, list[tuple[float, object]]] = {}
    for c, leaf in enumerate(candidates):
        score = float(sims[c, best[c]])
        if score >= threshold:
            extra.setdefault(usable[int(best[c])], []).append((score, leaf))
    for i, found in extra.items():
        found.sort(key=lambda x: -x[0])
        groups[i] = groups[i] + [leaf for _, leaf in found[:max_extra]]
    out = make_and([make_or(g) for g in groups])
    text = str(out)
    try:
        parse(text)
    except QuerySyntaxError:
        return str(query)
    return text


def hybrid_rows(rows: Sequence[dict], embed: Callable, threshold: float = THRESHOLD, max_extra: int = MAX_EXTRA) -> list[dict]:
    """``hybrid`` rows for every prompt of ``rows`` with a concept pair and at least one real pair."""
    concept = {r["prompt"]: r for r in rows if r.get("source") == "concepts"}
    real: dict[str, list[str]] = {}
    for r in rows:
        if r.get("source") in ("clef", "sim4ia"):
            real.setdefault(r["prompt"], []).append(r["completion"])
    out = []
    for prompt, answers in real.items():
        base = concept.get(prompt)
        if base is None:
            continue
        text = enrich(base["completion"], answers, embed, threshold, max_extra)
        if text:
            out.append({"prompt": prompt, "completion": text, "source": "hybrid", "topic": base.get("topic", "")})
    return out


def step_rows(rows: Sequence[dict], context: dict, embed: Optional[Callable] = None,
              min_cosine: float = STEP_COSINE) -> list[dict]:
    """``steps`` rows: consecutive distinct queries of the training sessions (see the module); with
    ``embed``, only steps whose two queries have cosine >= ``min_cosine`` (a new topic is not a step)."""
    concept = {r["prompt"][: -len(PROMPT_SUFFIX)] if r["prompt"].endswith(PROMPT_SUFFIX) else r["prompt"]: r
               for r in rows if r.get("source") == "concepts" and str(r.get("topic", "")).startswith("sim4ia:")}
    train_sessions = {r["topic"] for r in concept.values()}
    out = []
    for number, queries in sorted(context.items()):
        topic = f"sim4ia:{number}"
        if topic not in train_sessions:
            continue
        distinct = []
        for q in queries:
            q = q.strip()
            if q and (not distinct or q.lower() != distinct[-1].lower()):
                distinct.append(q)
        for a, b in zip(distinct, distinct[1:]):
            target = concept.get(b)
            if target is None:
                continue
            if embed is not None:
                va, vb = embed([a, b])
                if float(va @ vb) < min_cosine:
                    continue
            out.append({"prompt": a + PROMPT_SUFFIX, "completion": target["completion"], "source": "steps", "topic": topic})
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.hybrid", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("training/data"))
    p.add_argument("--threshold", type=float, default=THRESHOLD)
    p.add_argument("--max-extra", type=int, default=MAX_EXTRA)
    a = p.parse_args(argv)
    from benchmarks.data import load_context
    from benchmarks.embeddings import minilm_embed

    rows = [json.loads(line) for line in (a.data / "train.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]

    def embed(texts):
        return np.asarray(minilm_embed(list(texts)), dtype=np.float32)

    out = hybrid_rows(rows, embed, a.threshold, a.max_extra) + step_rows(rows, load_context(), embed)
    path = a.data / "hybrid.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for r in out:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for r in out:
        counts[r["source"]] = counts.get(r["source"], 0) + 1
    print(f"wrote {len(out)} pairs to {path}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
