"""Build blockgen's embedded default model from scratch, reproducibly (fixed seed).

    python -m training.train_default --data training/data --out blockgen/default_model [--quick]

1. a byte-level BPE tokenizer trained on the training texts (:mod:`training.tokenizer`);
2. a small Llama pretrained from scratch on ``prompt + " " + completion + EOS``
   (:mod:`training.pretrain`);
3. a LoRA adapter fine-tuned on the pairs with :mod:`training.finetune` (loss on the
   completion only), on the base weights exactly as shipped (float16-rounded);
4. ``<out>/base`` (model + tokenizer; weights stored as float16, loaded as float32),
   ``<out>/adapter`` (PEFT) and ``<out>/MODEL_CARD.md`` with the measured figures and example
   outputs on held-out topics.

``--quick`` builds a tiny model on a few hundred pairs in well under a minute (smoke tests).
Intermediate files go to ``--work`` (default ``build/train_default``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

from training.augment import augment
from training.examples import DataError, Pair, format_example, read_pairs
from training.finetune import FinetuneConfig, FinetuneError, run_finetune
from training.loop import TrainingError
from training.pretrain import ModelSize, PretrainConfig, pretrain
from training.tokenizer import byte_coverage, portable_tokenizer_config, save_tokenizer, train_tokenizer

#: Size limit of base + adapter together, in bytes.
SIZE_LIMIT = 20 * 1024 * 1024
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
BASE_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


@dataclass
class Recipe:
    """Every setting of the default model (the full recipe, or the ``--quick`` one)."""

    vocab_size: int = 3000
    size: ModelSize = field(default_factory=lambda: ModelSize(hidden=256, layers=6, heads=4, kv_heads=4, max_positions=256))
    max_length: int = 160
    pretrain_epochs: int = 8
    pretrain_lr: float = 2e-3
    pretrain_batch: int = 16
    lora_rank: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.05
    lora_targets: tuple = ("q_proj", "k_proj", "v_proj", "o_proj")
    lora_epochs: int = 1
    lora_lr: float = 1e-3
    lora_batch: int = 16
    #: Copy-augmented variants per training pair (:mod:`training.augment`): keywords swapped
    #: for random corpus words in prompt and answer alike, so the model learns to copy them.
    augment_copies: int = 3
    seed: int = 0
    max_train_pairs: Optional[int] = None
    max_valid_pairs: Optional[int] = None
    max_examples: int = 6
    threads: int = 1


QUICK = Recipe(
    vocab_size=400,
    size=ModelSize(hidden=64, layers=2, heads=2, kv_heads=2, max_positions=128),
    max_length=96,
    pretrain_epochs=1,
    pretrain_lr=3e-3,
    pretrain_batch=16,
    lora_rank=4,
    lora_alpha=8.0,
    lora_epochs=1,
    lora_lr=2e-3,
    max_train_pairs=240,
    max_valid_pairs=40,
    max_examples=3,
    augment_copies=0,
)


def read_heldout(path: Path) -> list[str]:
    """Keywords of the held-out topics in ``heldout.json``, one per distinct prompt.

    Accepts a list of strings or of objects giving ``keywords``, ``prompt``
    (``"<keywords>. Output:"``), ``title`` or ``topic``, or a dict holding such a list under
    ``"prompts"`` (the layout of ``training/prepare_data.py``) or another key. When the
    objects name their ``source``, the sources take turns (round robin), so the first few
    keywords cover every source.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        if isinstance(data.get("prompts"), list):
            data = data["prompts"]
        else:
            lists = [v for v in data.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
            lists = lists or [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if lists else []
    by_source: dict[str, list[str]] = {}
    seen: set[str] = set()
    for item in data:
        text, source = None, ""
        if isinstance(item, str):
            text = item
        elif isinstance(item, dict):
            source = str(item.get("source", ""))
            for key in ("keywords", "prompt", "title", "topic"):
                if isinstance(item.get(key), str) and item[key].strip():
                    text = item[key]
                    break
        if not text:
            continue
        text = text.strip()
        if text.endswith("Output:"):
            text = text[: -len("Output:")].rstrip().rstrip(".").rstrip()
        if text and text not in seen:
            seen.add(text)
            by_source.setdefault(source, []).append(text)
    out: list[str] = []
    queues = list(by_source.values())
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def _write_pairs(pairs: Sequence[Pair], path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for p in pairs:
            fh.write(json.dumps({"prompt": p.prompt, "completion": p.completion}, ensure_ascii=False) + "\n")
    return path


def export_base(model_dir: Path, dest: Path) -> Path:
    """Copy the pretrained model to ``dest`` with float16 weights (loaded back as float32)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    if dest.exists():
        shutil.rmtree(dest)
    model.half().save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    portable_tokenizer_config(dest)
    config_path = dest / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["dtype"] = "float32"  # stored small, computed in float32 (CPU float16 is slow)
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    set_sampling_defaults(dest)
    return dest


#: Sampling defaults shipped in the default model's ``generation_config.json`` (read by
#: ``QueryGenerator.sampling_defaults``). Measured on the 15 held-out prompts (3 candidates
#: each, seed 0; the model card's table): the share of output words that occur in the
#: training answers was 0.82 at temperature 0.5 against 0.74 at 1.0; below 1.0 a 5 M model
#: writes fewer made-up words.
SAMPLING = {"do_sample": True, "temperature": 0.5, "top_p": 0.95}


def set_sampling_defaults(model_dir: Path, sampling: Optional[dict] = None) -> None:
    """Write the sampling defaults into ``model_dir/generation_config.json``."""
    path = model_dir / "generation_config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    config.update(SAMPLING if sampling is None else sampling)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def ship(base_src: Path, adapter_src: Path, out: Path) -> dict:
    """Copy base and adapter files into ``out/base`` and ``out/adapter``; returns their sizes."""
    sizes = {}
    for name, src, files in (("base", base_src, None), ("adapter", adapter_src, ADAPTER_FILES)):
        dest = out / name
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for f in sorted(src.iterdir()) if files is None else [src / f for f in files]:
            if f.is_file():
                shutil.copyfile(f, dest / f.name)
                (dest / f.name).chmod(0o644)
    missing = [f for f in BASE_FILES if not (out / "base" / f).is_file()]
    if missing:
        raise TrainingError(f"the exported base model lacks {', '.join(missing)}")
    cfg_path = out / "adapter" / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["base_model_name_or_path"] = "blockgen/default_model/base"
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    for name in ("base", "adapter"):  # measured after the config rewrite above
        sizes[name] = sum(f.stat().st_size for f in (out / name).iterdir())
    sizes["total"] = sizes["base"] + sizes["adapter"]
    return sizes


def examples_on(out: Path, keywords: Sequence[str], seed: int = 0) -> list[dict]:
    """Outputs of the shipped model for ``keywords``, one prompt at a time.

    ``sampled``: ``QueryGenerator.generate([kw], n=3, max_new_tokens=64, seed=seed)`` (the
    library's defaults: grammar-constrained sampling); ``free_raw``: greedy free decoding as
    written. A generation error on one prompt is recorded in the row (``error``) instead of
    losing the whole run.
    """
    from blockgen.generate import QueryGenerator
    from blockgen.parser import is_valid

    gen = QueryGenerator.from_pretrained(out / "base", adapter=out / "adapter", device="cpu")
    rows = []
    for kw in keywords:
        row: dict = {"keywords": kw, "free_raw": "", "free_raw_valid": False, "sampled": [], "sampled_valid": []}
        try:
            free = gen.generate([kw], n=1, constrained=False, temperature=0.0, max_new_tokens=96, seed=seed)[0][0]
            row["free_raw"], row["free_raw_valid"] = free.raw_text.strip(), is_valid(free.raw_text)
        except Exception as err:  # noqa: BLE001 - reported in the model card, not fatal
            row["free_error"] = f"{type(err).__name__}: {err}"
        try:
            cands = gen.generate([kw], n=3, max_new_tokens=64, seed=seed)[0]
            row["sampled"] = [c.text for c in cands]
            row["sampled_valid"] = [c.valid for c in cands]
        except Exception as err:  # noqa: BLE001
            row["error"] = f"{type(err).__name__}: {err}"
        rows.append(row)
    return rows


def free_validity(out: Path, keywords: Sequence[str]) -> dict:
    """How many greedy free-decoding outputs parse as written (no repair), out of all ``keywords``."""
    from blockgen.generate import QueryGenerator
    from blockgen.parser import is_valid

    gen = QueryGenerator.from_pretrained(out / "base", adapter=out / "adapter", device="cpu")
    try:
        results = gen.generate(list(keywords), n=1, constrained=False, temperature=0.0, max_new_tokens=128)
    except Exception as err:  # noqa: BLE001 - a figure for the model card, not fatal
        print(f"free-decoding check failed: {err}", file=sys.stderr)
        return None
    valid = sum(is_valid(r[0].raw_text) for r in results)
    cut = sum(r[0].cut_off for r in results)
    return {"prompts": len(keywords), "valid_as_written": valid, "cut_off": cut}


def copy_rate(out: Path, keywords: Sequence[str], seed: int = 0, train: Optional[Path] = None,
              temperatures: Sequence[Optional[float]] = (None, 1.0)) -> list[dict]:
    """Two rough quality figures of the model's constrained queries for held-out prompts.

    For each prompt, 3 constrained candidates, once per entry of ``temperatures`` (``None``:
    the model's sampling defaults; a number: that temperature with top_p 1). ``copied``: how
    many content words of the prompts (3+ letters, not stop words) reappear as a word of a
    candidate; ``known_words``: the share of the candidates' words that occur in the answers
    of ``train`` (a word the model made up from word pieces does not).
    """
    import re

    from blockgen.generate import QueryGenerator
    from training.augment import STOPWORDS

    vocabulary: set[str] = set()
    if train is not None and train.exists():
        for pair in read_pairs(train):
            vocabulary.update(w.lower() for w in re.findall(r"[A-Za-z]+", pair.completion))
    gen = QueryGenerator.from_pretrained(out / "base", adapter=out / "adapter", device="cpu")
    rows = []
    for temperature in temperatures:
        total = copied = known = words_out = 0
        for kw in keywords:
            words = {w.lower() for w in re.findall(r"[A-Za-z]{3,}", kw)} - STOPWORDS
            options = {} if temperature is None else {"temperature": temperature, "top_p": 1.0}
            try:
                cands = gen.generate([kw], n=3, max_new_tokens=64, seed=seed, **options)[0]
            except Exception as err:  # noqa: BLE001 - a figure for the model card, not fatal
                print(f"copy-rate check failed on {kw!r}: {err}", file=sys.stderr)
                continue
            out_words = [w.lower() for c in cands for w in re.findall(r"[A-Za-z]+", c.text)]
            total += len(words)
            copied += len(words & set(out_words))
            words_out += len(out_words)
            known += sum(w in vocabulary for w in out_words)
        t, p = gen.sampling_defaults() if temperature is None else (temperature, 1.0)
        rows.append({"sampling": "model defaults" if temperature is None else "fixed", "temperature": t, "top_p": p,
                     "prompts": len(keywords), "keywords": total, "copied": copied, "output_words": words_out,
                     "known_words": round(known / words_out, 3) if words_out and vocabulary else None})
    return rows


#: How many short validation prompts the model card's copy figures use.
SHORT_PROMPTS = 60


def copy_rates(out: Path, heldout: Sequence[str], valid: Sequence[Pair], train: Optional[Path], seed: int = 0) -> list[dict]:
    """:func:`copy_rate` on the held-out topics and on short validation prompts (<= 4 words)."""
    short = [p.prompt[: -len(". Output:")] for p in valid
             if p.prompt.endswith(". Output:") and len(p.prompt.split()) <= 5][:SHORT_PROMPTS]
    rows = []
    for name, prompts in (("held-out topics", list(heldout)[:40]), ("short validation prompts", short)):
        if prompts:
            rows += [dict(r, prompt_set=name) for r in copy_rate(out, prompts, seed=seed, train=train)]
    return rows


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.2f} MB"


def write_card(path: Path, summary: dict) -> None:
    """Write ``MODEL_CARD.md`` from the run's ``summary``."""
    s = summary
    r = s["recipe"]
    size = r["size"]
    lines = [
        "# blockgen default model" + (" (quick smoke-test build)" if s["quick"] else ""),
        "",
        "A small Llama-architecture causal LM trained from scratch on this repository's query",
        "corpus, plus a LoRA adapter, embedded in the package so that `QueryGenerator.default()`",
        "works offline. It writes Boolean block queries for keywords: prompt `\"<keywords>. Output:\"`,",
        "the model continues with `\" \" + query + <|eos|>`. It is a *demonstration-size* model:",
        "it has learnt the syntax and the common shapes of block queries, not deep domain knowledge.",
        "",
        "## Data",
        "",
        f"- training pairs: {s['data']['train_pairs']} (`{s['data']['train']}`)"
        + (f" plus {s['data']['augmented_pairs']} copy-augmented variants (`training/augment.py`)"
           if s['data'].get('augmented_pairs') else "")
        + ", validation pairs: "
        f"{s['data']['valid_pairs']} (`{s['data']['valid']}`), held-out topics: {s['data']['heldout']}",
        f"- pairs used: pretraining {json.dumps(s['pretrain']['counts']['train'])}, "
        f"LoRA {json.dumps(s['lora']['counts']['train'])} (`truncated` = cut at a concept-block boundary to fit "
        f"{r['max_length']} tokens, still valid; `skipped` = did not fit even then)",
    ]
    if s["data"].get("stats"):
        lines += [f"- corpus statistics (`stats.json` of `training/prepare_data.py`): `{json.dumps(s['data']['stats'])[:1200]}`"]
    lines += [
        "- sources: see `training/prepare_data.py` and `training/data/` (Sim4IA 2025 and CLEF TAR 2017-2019,",
        "  both MIT-licensed; the licence files are kept next to the data).",
        "",
        "## Model",
        "",
        f"- tokenizer: byte-level BPE, {s['tokenizer']['vocab']} tokens (all 256 bytes, `<|eos|>`, `<|pad|>`), trained on the training texts",
        f"- base: `LlamaForCausalLM`, hidden {size['hidden']}, {size['layers']} layers, {size['heads']} heads "
        f"({size['kv_heads']} KV heads), MLP {s['base']['intermediate']}, tied embeddings, "
        f"{s['base']['params']:,} parameters; weights stored as float16, loaded as float32",
        f"- adapter: LoRA rank {r['lora_rank']}, alpha {r['lora_alpha']}, dropout {r['lora_dropout']}, "
        f"on {', '.join(r['lora_targets'])}: {s['lora']['trainable_params']:,} parameters",
        f"- files: base {_mb(s['sizes']['base'])}, adapter {_mb(s['sizes']['adapter'])}, "
        f"together {_mb(s['sizes']['total'])} (limit 20 MB)",
        "",
        "## Training",
        "",
        "```bash",
        s["command"],
        "```",
        "",
        f"Seed {r['seed']}; deterministic data order. Measured on {s['machine']}.",
        "",
        "| stage | settings | time | validation loss |",
        "|---|---|---|---|",
        f"| tokenizer | vocab {r['vocab_size']} | {s['seconds']['tokenizer']:.0f} s | |",
        f"| pretraining (all tokens) | {r['pretrain_epochs']} epochs, lr {r['pretrain_lr']}, batch {r['pretrain_batch']}, "
        f"AdamW, cosine | {s['seconds']['pretrain']:.0f} s | {_losses(s['pretrain'])} |",
        f"| LoRA (completion tokens) | {r['lora_epochs']} epochs, lr {r['lora_lr']}, batch {r['lora_batch']} "
        f"| {s['seconds']['lora']:.0f} s | {_losses(s['lora'])} |",
        f"| total (incl. export, examples) | | {s['seconds']['total']:.0f} s ({s['seconds']['total'] / 60:.1f} min) | |",
        "",
        "Validation losses are mean cross-entropy per token (nats) on `valid.jsonl`: over all tokens for",
        "pretraining, over the query and EOS tokens only for LoRA (the first figure is the base",
        "model before LoRA, on the same tokens).",
        "",
        "## Outputs on held-out topics",
        "",
    ]
    fv = s.get("free_validity")
    if fv:
        lines += [
            f"Greedy free decoding (no grammar, no repair) writes a valid query for "
            f"{fv['valid_as_written']} of {fv['prompts']} held-out prompts ({fv['cut_off']} cut off at 128 tokens). "
            "Grammar-constrained decoding (`QueryGenerator`, the default) is valid by construction.",
            "",
        ]
    rates = s.get("copy_rate")
    if isinstance(rates, dict):  # an older summary: one row
        rates = [rates]
    if rates and rates[0].get("keywords"):
        lines += [
            "Quality, roughly, over 3 constrained candidates per prompt (seed 0): *copied* = content words of the "
            "prompts (3+ letters, no stop words) that reappear in a candidate; *known words* = share of the "
            "candidates' words that occur in the training answers (the rest are words made up from word pieces). "
            "Prompts: the held-out topics (long CLEF titles and Sim4IA queries), and the first "
            f"{SHORT_PROMPTS} validation prompts of at most 4 words (keyword lists, like the thesaurus pairs).",
            "",
            "| prompts | sampling | temperature | top_p | copied | known words |",
            "|---|---|---|---|---|---|",
        ]
        for r in rates:
            known = "" if r.get("known_words") is None else f"{100 * r['known_words']:.0f}%"
            lines.append(f"| {r.get('prompt_set', 'held-out topics')} ({r['prompts']}) | {r.get('sampling', '')} | "
                         f"{r.get('temperature', '')} | {r.get('top_p', '')} | {r['copied']} of {r['keywords']} | {known} |")
        lines.append("")
    sampling = s.get("sampling") or {}
    lines += ["Each block: greedy free decoding as written, then",
              "`QueryGenerator.from_pretrained(out/'base', adapter=out/'adapter').generate([keywords], n=3, max_new_tokens=64, seed=0)`"
              + (f" (constrained, with the model's sampling defaults from `base/generation_config.json`: temperature "
                 f"{sampling.get('temperature')}, top_p {sampling.get('top_p')})." if sampling.get("do_sample") else "."),
              ""]
    for ex in s["examples"]:
        lines += [f"**{ex['keywords']}**", ""]
        if ex.get("free_error"):
            lines.append(f"- free, greedy: error `{ex['free_error']}`")
        else:
            lines.append(f"- free, greedy ({'valid' if ex['free_raw_valid'] else 'INVALID'}): `{ex['free_raw']}`")
        lines += [f"- generate ({'valid' if ok else 'INVALID'}): `{q}`" for q, ok in zip(ex["sampled"], ex["sampled_valid"])]
        if ex.get("error"):
            lines.append(f"- generate: error `{ex['error']}`")
        lines.append("")
    lines += [
        "## Use",
        "",
        "```python",
        "from blockgen.generate import QueryGenerator",
        "gen = QueryGenerator.default()   # this model",
        "gen.generate([\"climate change misinformation\"], n=5)",
        "```",
        "",
        "Plain transformers + PEFT: `AutoTokenizer.from_pretrained(\"blockgen/default_model/base\")`,",
        "`AutoModelForCausalLM.from_pretrained(\"blockgen/default_model/base\")`,",
        "`PeftModel.from_pretrained(model, \"blockgen/default_model/adapter\")`.",
        "",
        "## Limits",
        "",
        "A 5 M-parameter model trained from scratch on under two thousand pairs (plus copy-augmented",
        "variants): it has learnt the *shape* of block queries (brackets, OR lists, AND between blocks,",
        "quoted phrases), and the grammar makes every output valid. For short keyword prompts it copies",
        "the keywords and adds thesaurus-like synonyms, often of the wrong sense; for long titles its",
        "terms have little to do with the topic (see the figures and examples above). It is there so that the library,",
        "its CLI and its tests work offline out of the box; for useful queries fine-tune a real base",
        "model (e.g. Llama 3.2 3B) with `training.finetune` and load it with",
        "`QueryGenerator.from_pretrained(base, adapter=...)`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _losses(stage: dict) -> str:
    parts = []
    if stage.get("initial_eval_loss") is not None:
        parts.append(f"{stage['initial_eval_loss']:.3f}")
    parts += [f"{x:.3f}" for x in stage["eval_losses"] if x is not None]
    return " → ".join(parts)


def train_default(data: Path, out: Path, work: Path, quick: bool = False, progress: bool = True,
                  command: str = "", examples: bool = True, threads: Optional[int] = None) -> dict:
    """Run the whole recipe; returns the summary written to ``<out>/training_summary.json``."""
    import torch

    t_start = time.perf_counter()
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    recipe = QUICK if quick else Recipe()
    if threads is not None:
        recipe = replace(recipe, threads=threads)
    # One thread by default: the same float summation order on every machine (reproducible
    # weights), and on a shared 2-core machine one thread ran 2.5x faster than two
    # (OpenMP threads spin while they wait for a busy core).
    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    train_path, valid_path = data / "train.jsonl", data / "valid.jsonl"
    train_pairs = read_pairs(train_path)
    valid_pairs = read_pairs(valid_path) if valid_path.exists() else []
    if recipe.max_train_pairs:
        train_pairs = train_pairs[: recipe.max_train_pairs]
    if recipe.max_valid_pairs:
        valid_pairs = valid_pairs[: recipe.max_valid_pairs]
    heldout_path = data / "heldout.json"
    heldout = read_heldout(heldout_path) if heldout_path.exists() else []
    if not heldout:
        heldout = [p.prompt[: -len(". Output:")] if p.prompt.endswith(". Output:") else p.prompt
                   for p in (valid_pairs or train_pairs)[:recipe.max_examples]]
    stats_path = data / "stats.json"
    stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.exists() else None

    augmented = augment(train_pairs, copies=recipe.augment_copies, seed=recipe.seed) if recipe.augment_copies else []
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    train_file = _write_pairs(list(train_pairs) + augmented, work / "train.jsonl")
    valid_file = _write_pairs(valid_pairs, work / "valid.jsonl") if valid_pairs else None

    seconds: dict[str, float] = {}
    t = time.perf_counter()
    print(f"[1/4] tokenizer (vocab {recipe.vocab_size}) on {len(train_pairs)} training texts "
          f"(+{len(augmented)} copy-augmented pairs for the model)", flush=True)
    tokenizer = train_tokenizer((format_example(p.prompt, p.completion) for p in train_pairs),
                                vocab_size=recipe.vocab_size, progress=progress)
    problem = byte_coverage(tokenizer)
    if problem:
        raise TrainingError(f"tokenizer: {problem}")
    save_tokenizer(tokenizer, work / "tokenizer")
    seconds["tokenizer"] = time.perf_counter() - t

    t = time.perf_counter()
    print("[2/4] pretraining the base model from scratch", flush=True)
    pre = pretrain(PretrainConfig(
        train=train_file, valid=valid_file, tokenizer=work / "tokenizer", out=work / "pretrain", size=recipe.size,
        epochs=recipe.pretrain_epochs, lr=recipe.pretrain_lr, batch_size=recipe.pretrain_batch,
        max_length=recipe.max_length, seed=recipe.seed, progress=progress,
    ))
    seconds["pretrain"] = time.perf_counter() - t
    base_export = export_base(work / "pretrain", work / "base")

    t = time.perf_counter()
    print("[3/4] LoRA fine-tuning with training.finetune", flush=True)
    lora = run_finetune(FinetuneConfig(
        base=base_export, train=train_file, valid=valid_file, out=work / "adapter", rank=recipe.lora_rank,
        alpha=recipe.lora_alpha, dropout=recipe.lora_dropout, target_modules=recipe.lora_targets,
        epochs=recipe.lora_epochs, lr=recipe.lora_lr, batch_size=recipe.lora_batch, max_length=recipe.max_length,
        seed=recipe.seed, device="cpu", progress=progress,
    ))
    seconds["lora"] = time.perf_counter() - t

    print(f"[4/4] shipping to {out}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    sizes = ship(base_export, work / "adapter", out)
    if sizes["total"] > SIZE_LIMIT:
        raise TrainingError(f"the model is {_mb(sizes['total'])}, over the {_mb(SIZE_LIMIT)} limit")
    t = time.perf_counter()
    measured = measure(out, recipe, heldout, valid_pairs, train_path, examples=examples, figures=examples and not quick)
    seconds["examples"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_start
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    summary = {
        "quick": quick,
        "command": command or f"python -m training.train_default --data {data} --out {out}" + (" --quick" if quick else ""),
        "machine": f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch "
                   f"{torch.__version__} with {torch.get_num_threads()} threads, load average "
                   f"{load_start:.1f} at the start and {load_end:.1f} at the end (other jobs share the cores)"
        if load_start is not None else f"{os.cpu_count()} CPU cores",
        "recipe": {**asdict(recipe), "lora_targets": list(recipe.lora_targets)},
        "data": {"train": str(train_path), "valid": str(valid_path), "train_pairs": len(train_pairs),
                 "augmented_pairs": len(augmented),
                 "valid_pairs": len(valid_pairs), "heldout": len(heldout), "stats": stats},
        "tokenizer": {"vocab": len(tokenizer)},
        "base": {"params": pre.params, "intermediate": recipe.size.intermediate_size()},
        "pretrain": {"counts": pre.counts, "initial_eval_loss": pre.loop.initial_eval_loss,
                     "eval_losses": pre.loop.eval_losses, "train_losses": pre.loop.train_losses},
        "lora": {"counts": lora.counts, "initial_eval_loss": lora.initial_eval_loss, "eval_losses": lora.eval_losses,
                 "train_losses": lora.train_losses, "trainable_params": lora.trainable_params},
        "sizes": sizes,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        **measured,
    }
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_card(out / "MODEL_CARD.md", summary)
    print(f"done in {seconds['total']:.0f} s: base {_mb(sizes['base'])} + adapter {_mb(sizes['adapter'])}; "
          f"LoRA eval loss {_losses(summary['lora'])}", flush=True)
    return summary


def refresh_card(data: Path, out: Path, quick: bool = False) -> dict:
    """Re-measure the example outputs, free validity and copy rate of the model in ``out``
    (e.g. after changing the sampling defaults) and rewrite its card; no training."""
    summary_path = out / "training_summary.json"
    if not summary_path.exists():
        raise TrainingError(f"{summary_path} not found: train the model first")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    recipe = QUICK if quick else Recipe()
    heldout = read_heldout(data / "heldout.json") if (data / "heldout.json").exists() else []
    valid_path = data / "valid.jsonl"
    valid = read_pairs(valid_path) if valid_path.exists() else []
    summary.update(measure(out, recipe, heldout, valid, data / "train.jsonl"))
    summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_card(out / "MODEL_CARD.md", summary)
    return summary


def measure(out: Path, recipe: Recipe, heldout: Sequence[str], valid: Sequence[Pair], train: Optional[Path],
            examples: bool = True, figures: bool = True) -> dict:
    """The model card's measurements of the model in ``out``: example outputs (``examples``),
    free-decoding validity and copy rates (``figures``), and the shipped sampling defaults."""
    return {
        "free_validity": free_validity(out, heldout[:40]) if figures else None,
        "copy_rate": copy_rates(out, heldout, valid, train, seed=recipe.seed) if figures else None,
        "sampling": _sampling_of(out),
        "examples": examples_on(out, heldout[: recipe.max_examples], seed=recipe.seed) if examples else [],
    }


def _sampling_of(out: Path) -> dict:
    path = out / "base" / "generation_config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return {k: config[k] for k in ("do_sample", "temperature", "top_p") if k in config}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.train_default", description=__doc__.splitlines()[0])
    p.add_argument("--data", default="training/data", help="directory with train.jsonl, valid.jsonl, heldout.json")
    p.add_argument("--out", default="blockgen/default_model", help="where base/, adapter/ and MODEL_CARD.md go")
    p.add_argument("--work", default="build/train_default", help="intermediate files (deleted and rebuilt)")
    p.add_argument("--quick", action="store_true", help="a tiny model on a few hundred pairs (smoke test)")
    p.add_argument("--no-examples", action="store_true", help="skip the example generations in the model card")
    p.add_argument("--threads", type=int, help="torch CPU threads (default 1: reproducible, and fastest on a busy machine)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--card-only", action="store_true",
                   help="no training: re-measure the examples of the model in --out and rewrite its card")
    a = p.parse_args(argv)
    if a.card_only:
        try:
            refresh_card(Path(a.data), Path(a.out), quick=a.quick)
        except (DataError, TrainingError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    command = "python -m training.train_default " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        train_default(Path(a.data), Path(a.out), Path(a.work), quick=a.quick, progress=not a.quiet,
                      command=command.strip(), examples=not a.no_examples, threads=a.threads)
    except (DataError, FinetuneError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
