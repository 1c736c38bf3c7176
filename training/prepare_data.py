"""Build prompt -> completion pairs for fine-tuning a small model to write block queries.

    python -m training.prepare_data --data ../shared/data --out training/data [--seed 0] [--max-thesaurus 1500]

Each pair is ``{"prompt": "<keywords>. Output:", "completion": "<canonical query>",
"source": ..., "topic": ...}``; every completion is ``str(node)`` of a parsed query and
passes ``blockgen.is_valid``. Three sources:

* ``clef``: CLEF TAR systematic reviews. Prompt: the review title. Completion: the Ovid
  strategy converted with :func:`blockgen.ovid.convert_ovid`, then *trimmed* to a generic
  query a small model can learn: field tags dropped, at most 4 AND-blocks (the first
  non-negated blocks of the converted tree) with at most 6 distinct terms each (the first
  leaves of the block, OR-ed; nested structure inside a block is flattened).
* ``sim4ia``: Sim4IA 2025 Task A sessions. Prompt: the LAST query of the session's
  context (``predetermined_queries_Task_A_test.csv``, which lacks the true last query).
  Completions: the 10 queries of ``llm_queries_boolean_run.json`` for that session,
  rendered canonically. The session's true last query is never used.
* ``thesaurus``: synthetic queries from the MyThes English thesaurus
  (``apt-get install mythes-en-us``): 2-3 concepts, each an OR-group of the head word and
  up to 5 synonyms. Prompt: the head words joined by spaces.

Pairs are deduplicated and split by topic (CLEF topic / Sim4IA session / thesaurus concept
set) with a fixed seed: about 10% of the topics go to ``valid.jsonl``. 5 Sim4IA sessions
and 10 CLEF topics are held out entirely (``heldout.json``). ``train.jsonl`` is written
last, atomically (temporary file, then rename).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from tqdm import tqdm

from blockgen.grammar import terminal_regex
from blockgen.ovid import OvidError, convert_ovid
from blockgen.parser import QuerySyntaxError, is_valid, parse
from blockgen.query import And, Comparison, Field, Node, Not, Or, Phrase, Term, blocks, make_and, make_or, terms

THESAURUS_PATH = Path("/usr/share/mythes/th_en_US_v2.dat")
THESAURUS_PACKAGE = "mythes-en-us"
PROMPT_SUFFIX = ". Output:"
MAX_BLOCKS = 4
MAX_TERMS = 6
MAX_SYNONYMS = 5


class DataError(Exception):
    """Input data that is missing or unusable (the message names the file)."""


@dataclass(frozen=True)
class Pair:
    """One training example."""

    prompt: str
    completion: str
    source: str
    topic: str


def make_prompt(keywords: str) -> str:
    """The prompt for ``keywords``: ``"<keywords>. Output:"``."""
    return " ".join(keywords.split()) + PROMPT_SUFFIX


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(f"missing {what}: {path}")
    return path


# ---------------------------------------------------------------------------- CLEF TAR


def _generic_leaf(leaf: Node) -> Optional[Node]:
    """A leaf without its tag; one-word phrases become bare words."""
    if isinstance(leaf, (Field, Comparison)):
        return None
    text = leaf.text  # type: ignore[attr-defined]
    word = terminal_regex("WORD")
    words = text.split()
    if isinstance(leaf, Term) or (len(words) == 1 and word.fullmatch(words[0]) and words[0].upper() not in ("AND", "OR", "NOT")):
        return Term(text) if all(word.fullmatch(w) for w in words) else Phrase(text)
    return Phrase(text)


def _block_items(node: Node) -> Iterator[Node]:
    """The synonyms of one block, generic: OR-items flattened, a short AND of bare words
    (an Ovid proximity such as ``rapid adj3 test$``) joined into one multi-word term,
    other nested structure skipped."""
    if isinstance(node, Or):
        for item in node.items:
            yield from _block_items(item)
    elif isinstance(node, And):
        leaves = [_generic_leaf(x) if isinstance(x, (Term, Phrase)) else None for x in node.items]
        if len(leaves) <= 3 and all(isinstance(x, Term) for x in leaves):
            yield Term(" ".join(x.text for x in leaves))  # type: ignore[union-attr]
    elif isinstance(node, Not):
        yield from _block_items(node.positive)
    else:
        leaf = _generic_leaf(node)
        if leaf is not None:
            yield leaf


def trim_query(query: Node, max_blocks: int = MAX_BLOCKS, max_terms: int = MAX_TERMS) -> Node:
    """A generic, short variant of ``query``: no tags, the first ``max_blocks`` non-negated
    blocks, each the OR of its first ``max_terms`` distinct synonyms (see :func:`_block_items`)."""
    out: list[Node] = []
    for block in blocks(query):
        if block.negated:
            continue
        seen: set[str] = set()
        items: list[Node] = []
        candidates = list(_block_items(block.node))
        if not candidates:  # deeply nested block: fall back to its leaves
            candidates = [x for x in (_generic_leaf(leaf) for leaf in terms(block.node)) if x is not None]
        for node in candidates:
            key = str(node).lower().strip('"')
            if key in seen:
                continue
            seen.add(key)
            items.append(node)
            if len(items) == max_terms:
                break
        if items:
            out.append(make_or(items))
        if len(out) == max_blocks:
            break
    if not out:
        raise ValueError("the query has no positive block")
    return make_and(out)


def clef_pairs(topics_path: Path) -> tuple[list[Pair], Counter]:
    """CLEF TAR pairs (title -> trimmed converted strategy) and counts of skipped topics."""
    skipped: Counter = Counter()
    pairs: list[Pair] = []
    rows = _read_jsonl(_require(topics_path, "CLEF TAR topics file"))
    for row in tqdm(rows, desc="clef", unit="topic", leave=False):
        try:
            query = trim_query(convert_ovid(row["query"]).query)
        except (OvidError, ValueError, KeyError):
            skipped["clef: strategy not convertible"] += 1
            continue
        pairs.append(Pair(make_prompt(row["title"]), str(query), "clef", f"clef:{row['topic']}"))
    return pairs, skipped


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{n}: not JSON ({err.msg})") from None
    return rows


# ------------------------------------------------------------------------------ Sim4IA


def session_numbers(sessions_csv: Path) -> dict[str, str]:
    """Sim4IA session id -> its number "1".."35" (order of first appearance)."""
    numbers: dict[str, str] = {}
    with _require(sessions_csv, "Sim4IA sessions file").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            numbers.setdefault(row["session_id"], str(len(numbers) + 1))
    return numbers


def session_queries(sessions_csv: Path) -> dict[str, list[str]]:
    """Session number -> all its queries in order (the last one is the Task A1 target)."""
    numbers = session_numbers(sessions_csv)
    out: dict[str, list[str]] = defaultdict(list)
    with sessions_csv.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out[numbers[row["session_id"]]].append(row["query"])
    return dict(out)


def context_last_queries(predetermined_csv: Path) -> dict[str, str]:
    """Session number -> the last query of its context (no header; column 2 is the session)."""
    last: dict[str, str] = {}
    with _require(predetermined_csv, "Sim4IA predetermined queries file").open(encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh):
            if len(row) >= 4:
                last[row[2].strip()] = row[3]
    return last


def sim4ia_pairs(sim_dir: Path) -> tuple[list[Pair], Counter]:
    """Sim4IA pairs: context's last query -> each of the run's 10 Boolean queries."""
    skipped: Counter = Counter()
    full = session_queries(sim_dir / "evaluation_sessions_Task_A.csv")
    context = context_last_queries(sim_dir / "predetermined_queries_Task_A_test.csv")
    run_path = _require(sim_dir / "llm_queries_boolean_run.json", "Sim4IA Boolean run file")
    run = json.loads(run_path.read_text(encoding="utf-8"))
    pairs: list[Pair] = []
    for k in tqdm(sorted(full, key=int), desc="sim4ia", unit="session", leave=False):
        if k not in context or k not in run:
            skipped["sim4ia: session without context or run queries"] += 1
            continue
        keywords = context[k]
        target = full[k][-1]
        if keywords == target and full[k].count(target) == 1:  # pragma: no cover - data guard
            raise DataError(f"session {k}: the context's last query is the held-back target query")
        for text in run[k]:
            try:
                completion = str(parse(text))
            except QuerySyntaxError:
                skipped["sim4ia: run query not valid"] += 1
                continue
            pairs.append(Pair(make_prompt(keywords), completion, "sim4ia", f"sim4ia:{k}"))
    return pairs, skipped


# --------------------------------------------------------------------------- thesaurus

_NOTE_RE = re.compile(r"\s*\([^)]*\)\s*")


def parse_thesaurus(lines: Iterable[str]) -> dict[str, list[str]]:
    """Parse MyThes ``.dat`` lines: ``word|n`` then n lines ``(pos)|syn|syn (generic term)|...``.

    Returns head word -> distinct synonyms (parenthesised notes stripped, antonyms skipped).
    Entries whose count does not match the lines that follow are skipped.
    """
    out: dict[str, list[str]] = {}
    rows = [raw.rstrip("\n") for raw in lines]
    i = 0
    while i < len(rows):
        head, sep, count = rows[i].partition("|")
        i += 1
        if not sep or not count.strip().isdigit() or head.startswith("("):
            continue  # the encoding line, or junk
        senses: list[str] = []
        while len(senses) < int(count) and i < len(rows) and rows[i].startswith("(") and "|" in rows[i]:
            senses.append(rows[i])
            i += 1
        if len(senses) != int(count):
            continue  # malformed entry: its sense lines are missing
        syns: list[str] = []
        for sense in senses:
            for item in sense.split("|")[1:]:
                if "antonym" in item:
                    continue
                text = " ".join(_NOTE_RE.sub(" ", item).split())
                if text and text.lower() != head.lower() and text.lower() not in (s.lower() for s in syns):
                    syns.append(text)
        if syns:
            out[head] = syns
    return out


def thesaurus_leaf(text: str) -> Optional[Node]:
    """A one-word synonym as a bare word, several words as a phrase; None if unusable."""
    words = text.split()
    if not words or '"' in text:
        return None
    word = terminal_regex("WORD")
    fits = all(word.fullmatch(w) and w.upper() not in ("AND", "OR", "NOT") for w in words)
    if len(words) == 1 and fits:
        return Term(text)
    if len(words) > 1 and all(re.fullmatch(r"[A-Za-z][A-Za-z'-]*", w) for w in words):
        return Phrase(text)
    return None


def load_thesaurus(path: Path) -> dict[str, list[str]]:
    """Read a MyThes ``.dat`` file (errors name the apt package if it is missing)."""
    if not path.is_file():
        raise DataError(f"missing thesaurus file {path}: install it with `apt-get install {THESAURUS_PACKAGE}`")
    with path.open(encoding="utf-8", errors="replace") as fh:
        return parse_thesaurus(fh)


def thesaurus_pairs(thesaurus: dict[str, list[str]], count: int, seed: int) -> list[Pair]:
    """``count`` synthetic queries of 2-3 thesaurus concepts (head word OR up to 5 synonyms)."""
    concepts: list[tuple[str, Node]] = []
    for head in sorted(thesaurus):
        if not re.fullmatch(r"[a-z][a-z]{2,}", head):
            continue  # plain lower-case single words make readable prompts
        leaves = [leaf for leaf in (thesaurus_leaf(s) for s in thesaurus[head]) if leaf is not None]
        if len(leaves) < 2:
            continue
        concepts.append((head, make_or([Term(head)] + leaves[:MAX_SYNONYMS])))
    if len(concepts) < 3:
        return []
    rng = random.Random(seed)
    pairs: list[Pair] = []
    seen: set[tuple[str, ...]] = set()
    attempts = 0
    with tqdm(total=count, desc="thesaurus", unit="query", leave=False) as bar:
        while len(pairs) < count and attempts < count * 20:
            attempts += 1
            chosen = rng.sample(concepts, rng.choice((2, 3)))
            key = tuple(sorted(h for h, _ in chosen))
            if key in seen:
                continue
            seen.add(key)
            query = make_and([node for _, node in chosen])
            prompt = make_prompt(" ".join(h for h, _ in chosen))
            pairs.append(Pair(prompt, str(query), "thesaurus", "thesaurus:" + "+".join(key)))
            bar.update(1)
    return pairs


# ------------------------------------------------------------------------ split, stats


def dedupe_and_validate(pairs: Iterable[Pair]) -> tuple[list[Pair], Counter]:
    """Drop pairs whose completion is not valid, and repeated (prompt, completion) pairs."""
    out: list[Pair] = []
    seen: set[tuple[str, str]] = set()
    dropped: Counter = Counter()
    for pair in pairs:
        if not is_valid(pair.completion):
            dropped[f"{pair.source}: invalid completion"] += 1
            continue
        key = (pair.prompt, pair.completion)
        if key in seen:
            dropped[f"{pair.source}: duplicate"] += 1
            continue
        seen.add(key)
        out.append(pair)
    return out, dropped


@dataclass(frozen=True)
class Split:
    train: list[Pair]
    valid: list[Pair]
    heldout: list[Pair]
    heldout_topics: dict[str, list[str]]


def split_pairs(pairs: list[Pair], seed: int, valid_fraction: float = 0.1, heldout_sim4ia: int = 5, heldout_clef: int = 10) -> Split:
    """Split by topic: hold out whole Sim4IA sessions / CLEF topics, ~10% of the rest to valid."""
    rng = random.Random(seed)
    by_source: dict[str, list[str]] = defaultdict(list)
    for pair in pairs:
        if pair.topic not in by_source[pair.source]:
            by_source[pair.source].append(pair.topic)
    held: set[str] = set()
    held_topics: dict[str, list[str]] = {"sim4ia_sessions": [], "clef_topics": []}
    for source, n, key in (("sim4ia", heldout_sim4ia, "sim4ia_sessions"), ("clef", heldout_clef, "clef_topics")):
        topics = sorted(by_source.get(source, []))
        chosen = rng.sample(topics, min(n, len(topics)))
        held.update(chosen)
        held_topics[key] = sorted((t.split(":", 1)[1] for t in chosen), key=lambda s: (len(s), s))
    valid_topics: set[str] = set()
    for source in sorted(by_source):
        rest = sorted(t for t in by_source[source] if t not in held)
        n_valid = max(1, round(len(rest) * valid_fraction)) if len(rest) >= 2 else 0
        valid_topics.update(rng.sample(rest, n_valid))
    train = [p for p in pairs if p.topic not in held and p.topic not in valid_topics]
    valid = [p for p in pairs if p.topic in valid_topics]
    heldout = [p for p in pairs if p.topic in held]
    rng.shuffle(train)
    return Split(train, valid, heldout, held_topics)


def completion_shape(completion: str) -> tuple[int, int]:
    """(number of blocks, number of terms) of a completion."""
    query = parse(completion)
    return len(blocks(query)), len(terms(query))


def stats_of(split: Split, dropped: Counter) -> dict:
    """Pairs per split and source, mean blocks/terms per completion, drop counts."""
    out: dict = {"dropped": dict(dropped)}
    for name, pairs in (("train", split.train), ("valid", split.valid), ("heldout", split.heldout)):
        per_source: dict[str, dict] = {}
        for source in sorted({p.source for p in pairs}):
            chosen = [p for p in pairs if p.source == source]
            shapes = [completion_shape(p.completion) for p in chosen]
            per_source[source] = {
                "pairs": len(chosen),
                "topics": len({p.topic for p in chosen}),
                "mean_blocks": round(sum(b for b, _ in shapes) / len(shapes), 2),
                "mean_terms": round(sum(t for _, t in shapes) / len(shapes), 2),
            }
        out[name] = {"pairs": len(pairs), "sources": per_source}
    return out


# ------------------------------------------------------------------------------ output


def _write_jsonl(path: Path, pairs: list[Pair]) -> None:
    """Write ``pairs`` atomically: a temporary file beside ``path``, then rename."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for pair in pairs:
            fh.write(json.dumps(asdict(pair), ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def prepare(
    data: Path,
    out: Path,
    seed: int = 0,
    max_thesaurus: int = 1500,
    thesaurus_path: Path = THESAURUS_PATH,
    heldout_sim4ia: int = 5,
    heldout_clef: int = 10,
) -> dict:
    """Build every pair, split, write the files into ``out``; returns the stats."""
    clef, skipped_clef = clef_pairs(data / "clef_tar" / "topics.jsonl")
    sim, skipped_sim = sim4ia_pairs(data / "sim4ia")
    thes = thesaurus_pairs(load_thesaurus(thesaurus_path), max_thesaurus, seed) if max_thesaurus > 0 else []
    pairs, dropped = dedupe_and_validate(clef + sim + thes)
    dropped.update(skipped_clef)
    dropped.update(skipped_sim)
    split = split_pairs(pairs, seed, heldout_sim4ia=heldout_sim4ia, heldout_clef=heldout_clef)
    stats = stats_of(split, dropped)
    out.mkdir(parents=True, exist_ok=True)
    heldout = {
        **split.heldout_topics,
        "prompts": sorted(
            ({"prompt": p, "source": s, "topic": t} for p, s, t in {(x.prompt, x.source, x.topic) for x in split.heldout}),
            key=lambda d: (d["source"], d["topic"]),
        ),
    }
    _write_json(out / "heldout.json", heldout)
    _write_jsonl(out / "valid.jsonl", split.valid)
    _write_json(out / "stats.json", stats)
    _write_jsonl(out / "train.jsonl", split.train)  # last: its appearance means "final"
    return stats


def _print_stats(stats: dict, out: Path) -> None:
    for name in ("train", "valid", "heldout"):
        print(f"{name}: {stats[name]['pairs']} pairs")
        for source, s in stats[name]["sources"].items():
            print(f"  {source:9s} {s['pairs']:5d} pairs, {s['topics']:4d} topics, "
                  f"{s['mean_blocks']:.2f} blocks, {s['mean_terms']:.2f} terms per completion")
    if stats["dropped"]:
        print("dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(stats["dropped"].items())))
    for name in ("train.jsonl", "valid.jsonl", "heldout.json", "stats.json"):
        print(f"wrote {out / name} ({(out / name).stat().st_size:,} bytes)")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.prepare_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    parser.add_argument("--out", type=Path, default=Path("training/data"), help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-thesaurus", type=int, default=1500, help="synthetic thesaurus queries (0: none)")
    parser.add_argument("--thesaurus", type=Path, default=THESAURUS_PATH, help="MyThes .dat file")
    args = parser.parse_args(argv)
    try:
        stats = prepare(args.data, args.out, args.seed, args.max_thesaurus, args.thesaurus)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _print_stats(stats, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
