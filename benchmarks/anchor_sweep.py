"""Choose the anchoring settings (:mod:`blockgen.anchor`) on saved candidates, without the model.

    python -m benchmarks.quality --split valid --rows copy,unanchored,reranked --name quality_valid  # ~6 min
    python -m benchmarks.anchor_sweep          # reads benchmarks/results/quality_valid.json

Reads the candidates a ``benchmarks.quality`` run saved for ``--row`` (default ``unanchored``: the
model's reranked candidates as written), anchors them on their prompts with each setting of the
sweep and scores them as ``benchmarks.quality`` does. Choose on ``--split valid`` only: the
held-out split is for the final figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from benchmarks import report
from benchmarks.quality import SOURCES, Item, score_source


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.anchor_sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, nargs="?", default=report.results_dir(None) / "quality_valid.json",
                   help="a JSON file written by benchmarks.quality (default: benchmarks/results/quality_valid.json)")
    p.add_argument("--row", default="unanchored", help="whose candidates to anchor (default: unanchored)")
    p.add_argument("--direct", default="0.5,0.6,0.7,0.8", help="cosines to try (comma-separated)")
    p.add_argument("--max-alternatives", default="1,2,3", help="alternatives per block to try")
    p.add_argument("--in-context", default="none", help="in-context cosines to try ('none': no check)")
    p.add_argument("--n", type=int, default=10, help="candidates per prompt scored (default 10)")
    args = p.parse_args(argv)
    try:
        data = json.loads(args.results.read_text(encoding="utf-8"))
        items = [Item(**i) for i in data["items"]]
        saved = data["candidates"][args.row]
        directs = [float(x) for x in args.direct.split(",")]
        alternatives = [int(x) for x in args.max_alternatives.split(",")]
        contexts = [None if x.strip() == "none" else float(x) for x in args.in_context.split(",")]
    except (OSError, ValueError, KeyError) as err:
        return report.fail(f"cannot read the candidates of row {args.row!r} from {args.results}: {err}")
    from benchmarks.embeddings import minilm_embed
    from blockgen.anchor import AnchorSettings
    from blockgen.generate import GeneratedQuery
    from blockgen.parser import QuerySyntaxError, parse
    from blockgen.rerank import default_reranker

    def saved_candidate(text: str) -> GeneratedQuery:
        try:
            query = parse(text)
        except QuerySyntaxError:
            query = None
        return GeneratedQuery(text, text, query, query is not None, False, 0.0, 0, 0.0, False)

    pools = {i.id: [saved_candidate(t) for t in saved.get(i.id, [])] for i in items}
    base = default_reranker()
    rows = []
    for direct, k, context in itertools.product(directs, alternatives, contexts):
        reranker = base.with_settings(min_blocks=2, anchor=AnchorSettings(direct=direct, max_alternatives=k,
                                                                          in_context=context))
        cands = {i.id: [c.text for c in reranker.rerank(i.prompt, pools[i.id], args.n)] for i in items}
        res = {s: score_source([i for i in items if i.source == s], cands, minilm_embed, args.n) for s in SOURCES}
        rows.append({"direct": direct, "max_alternatives": k, "in_context": context,
                     **{f"{s}_{m}": res[s][m] for s in SOURCES for m in ("similarity", "nonword_rate", "blocks")}})
        print(json.dumps(rows[-1]), flush=True)
    out = report.results_dir(None) / "anchor_sweep.json"
    report.write_json(out, {"meta": report.meta("anchor_sweep", list(argv) if argv is not None else sys.argv[1:],
                                                source=str(args.results), row=args.row), "rows": rows})
    report.print_table(rows, [("direct", "direct"), ("max_alternatives", "alternatives"), ("in_context", "in context"),
                              ("clef_similarity", "CLEF sim", ".3f"), ("clef_nonword_rate", "CLEF non-words", ".1%"),
                              ("sim4ia_similarity", "Sim4IA sim", ".3f"), ("sim4ia_blocks", "Sim4IA blocks", ".2f"),
                              ("sim4ia_nonword_rate", "Sim4IA non-words", ".1%")], f"anchoring sweep on {args.results}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
