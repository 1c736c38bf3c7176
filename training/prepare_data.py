"""Build prompt -> completion pairs for fine-tuning a small model to write block queries.

    python -m training.prepare_data --data ../shared/data --out training/data [--seed 0] [--max-pairs N]

Each pair is ``{"prompt": "<keywords>. Output:", "completion": "<canonical query>",
"source": ..., "topic": ...}``; every completion is ``str(node)`` of a parsed query (the
canonical format) and passes ``blockgen.is_valid``. Sources:

* ``clef``: CLEF TAR systematic reviews. Prompt: the review title. Completion: the Ovid
  strategy converted with :func:`blockgen.ovid.convert_ovid`, then *trimmed* to a generic
  query a small model can learn: field tags dropped, at most 4 AND-blocks (the first
  non-negated blocks of the converted tree) with at most 6 distinct terms each (the first
  synonyms of the block, OR-ed; a short AND of words inside a block, an Ovid proximity such
  as ``rapid adj3 test$``, becomes one multi-word term; a longer AND inside a block stays
  one nested item (at most one per block) of at most 3 blocks x 3 terms; deeper
  nesting is flattened).
* ``clef_full``: the same title -> the whole converted strategy with its field tags
  (``[tiab]``, ``[Mesh]``), for the strategies whose canonical text has at most
  ``--max-full-chars`` characters (longer ones would not fit a small model's context).
* ``sim4ia``: Sim4IA 2025 Task A sessions. Prompt: the LAST query of the session's
  context (``predetermined_queries_Task_A_test.csv``, which lacks the true last query).
  Completions: the 10 queries of ``llm_queries_boolean_run.json`` for that session (keys
  "1".."35" = sessions in order of first appearance in ``evaluation_sessions_Task_A.csv``),
  rendered canonically. The session's true last query (the Task A1 target) is never used.
* ``thesaurus``: synthetic queries whose OR-groups are real synonym sets of the MyThes
  English thesaurus (``apt-get install mythes-en-us``). Concepts are thesaurus head words
  (1-3 words) found in the CLEF titles and Sim4IA context queries of the topics that are
  not held out; 2-3 concepts that occur together in one title or query make a query, each
  OR-ed with up to 5 synonyms of one sense. Prompt: the head words, in the text's order.

Every completion is validated by the grammar; pairs are deduplicated on (prompt,
completion) and split by topic (a CLEF topic id, a Sim4IA session or a thesaurus concept
set) with a fixed seed. 5 Sim4IA sessions and 10 CLEF topics are held out entirely for
the benchmarks (``heldout.json``); about 10% of the other topics of each source go to
``valid.jsonl``. ``train.jsonl`` is written last, atomically (temporary file, then rename).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import random
import re
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

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
NESTED_BLOCKS = 3
NESTED_TERMS = 3
MAX_FULL_CHARS = 600
#: Synthetic queries of random thesaurus head words (the first default model's data): off by
#: default since issue 8 (they taught random synonyms of the wrong sense); ``--max-thesaurus N``.
MAX_THESAURUS = 0
#: A term that occurs in at least this share of the (not held-out) CLEF strategies is a filter
#: term (``randomized controlled trial``, ``humans``); a block made mostly of them is a filter
#: block and is left out of the trimmed ``clef`` answers (``--keep-filters`` keeps them).
FILTER_TERM_SHARE = 0.1
#: A Sim4IA Boolean-run query is kept only when its all-MiniLM-L6-v2 cosine to the prompt (the
#: session's last context query) is at least this: some run queries are about something else
#: (``nervous system journal`` -> ``marine species OR oceanic biodiversity ...``).
SIM4IA_MIN_COSINE = 0.4
HELDOUT_SIM4IA = 5
HELDOUT_CLEF = 10
VALID_FRACTION = 0.1


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


def read_jsonl(path: Path, what: str, keys: Sequence[str] = ()) -> list[dict]:
    """The JSON objects of a JSONL file; errors name the file and line."""
    rows = []
    text = _require(path, what).read_text(encoding="utf-8")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{n}: not JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
        missing = [k for k in keys if not isinstance(row.get(k), str)]
        if missing:
            raise DataError(f"{path}:{n}: missing text field(s) {', '.join(missing)}")
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- CLEF TAR


def load_clef_topics(path: Path) -> list[dict]:
    """CLEF TAR topics ``{topic, title, query}`` from a JSONL file."""
    return read_jsonl(path, "CLEF TAR topics file", ("topic", "title", "query"))


def _generic_leaf(leaf: Node) -> Optional[Node]:
    """A leaf without its tag; None for CORE fields and comparisons."""
    if isinstance(leaf, (Field, Comparison)):
        return None
    text = leaf.text  # type: ignore[attr-defined]
    word = terminal_regex("WORD")
    words = text.split()
    if all(word.fullmatch(w) and w.upper() not in ("AND", "OR", "NOT") for w in words) and (isinstance(leaf, Term) or len(words) == 1):
        return Term(text)
    return Phrase(text)


def _block_items(node: Node, nest: bool = True) -> Iterator[Node]:
    """The synonyms of one block, generic: OR-items flattened; a short AND of bare words
    (an Ovid proximity such as ``rapid adj3 test$``) joined into one multi-word term; a
    longer AND (``(typhoid* OR salmonell*) AND vaccin*`` inside an OR) kept as one nested,
    trimmed item when ``nest`` (one level deep), else skipped; NOT keeps its positive side."""
    if isinstance(node, Or):
        for item in node.items:
            yield from _block_items(item, nest)
    elif isinstance(node, And):
        leaves = [_generic_leaf(x) if isinstance(x, (Term, Phrase)) else None for x in node.items]
        if len(leaves) <= 3 and all(isinstance(x, Term) for x in leaves):
            yield Term(" ".join(x.text for x in leaves))  # type: ignore[union-attr]
        elif nest:
            try:
                yield _trim(node, NESTED_BLOCKS, NESTED_TERMS, nest=False)
            except ValueError:
                return
    elif isinstance(node, Not):
        yield from _block_items(node.positive, nest)
    else:
        leaf = _generic_leaf(node)
        if leaf is not None:
            yield leaf


def trim_query(query: Node, max_blocks: int = MAX_BLOCKS, max_terms: int = MAX_TERMS) -> Node:
    """A generic, short variant of ``query``: no tags, the first ``max_blocks`` non-negated
    blocks, each the OR of its first ``max_terms`` distinct synonyms (see :func:`_block_items`;
    a nested AND inside a block counts as one synonym, at most one per block, trimmed to
    at most ``NESTED_BLOCKS`` blocks of ``NESTED_TERMS`` terms)."""
    return _trim(query, max_blocks, max_terms, nest=True)


def _trim(query: Node, max_blocks: int, max_terms: int, nest: bool) -> Node:
    out: list[Node] = []
    for block in blocks(query):
        if block.negated:
            continue
        seen: set[str] = set()
        items: list[Node] = []
        candidates = list(_block_items(block.node, nest))
        if not candidates:  # deeply nested block: fall back to its leaves
            candidates = [x for x in (_generic_leaf(leaf) for leaf in terms(block.node)) if x is not None]
        nested = False
        for node in candidates:
            key = str(node).lower().strip('"')
            if key in seen or (nested and isinstance(node, And)):
                continue  # a repeated synonym, or a second nested AND
            seen.add(key)
            nested = nested or isinstance(node, And)
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


def _leaf_key(leaf: Node) -> str:
    text = getattr(leaf, "text", None)
    return " ".join((text if text is not None else str(leaf)).lower().split())


def filter_terms(rows: Iterable[dict], share: float = FILTER_TERM_SHARE) -> frozenset:
    """Terms (lower case, tags dropped) found in at least ``share`` of the strategies of ``rows``."""
    counts: Counter = Counter()
    n = 0
    for row in rows:
        try:
            query = convert_ovid(row["query"]).query
        except (OvidError, ValueError):
            continue
        n += 1
        counts.update({_leaf_key(leaf) for leaf in terms(query)})
    return frozenset(k for k, c in counts.items() if n and c >= share * n)


def drop_filter_blocks(query: Node, generic: frozenset) -> Node:
    """``query`` without its filter blocks: the non-negated blocks at least half of whose terms are
    in ``generic`` (at least one block stays; the negated blocks stay: :func:`trim_query` drops them)."""
    parts = blocks(query)

    def is_filter(block) -> bool:
        leaves = terms(block.node)
        return not block.negated and sum(_leaf_key(x) in generic for x in leaves) * 2 >= len(leaves)

    kept = [b for b in parts if not is_filter(b)]
    if len(kept) == len(parts) or not any(not b.negated for b in kept):
        return query
    node = kept[0].node
    for block in kept[1:]:
        node = Not(node, block.node) if block.negated else make_and([node, block.node])
    return node


def clef_pairs(rows: Iterable[dict], max_full_chars: int = MAX_FULL_CHARS,
               generic: frozenset = frozenset()) -> tuple[list[Pair], Counter]:
    """CLEF TAR pairs: title -> trimmed generic query (``clef``; its filter blocks, made of
    ``generic`` terms, left out) and, when short enough, title -> the whole tagged query
    (``clef_full``); plus counts of what was skipped."""
    skipped: Counter = Counter()
    pairs: list[Pair] = []
    for row in tqdm(list(rows), desc="clef", unit="topic", leave=False):
        topic, prompt = f"clef:{row['topic']}", make_prompt(row["title"])
        try:
            full = convert_ovid(row["query"]).query
            trimmed = trim_query(drop_filter_blocks(full, generic) if generic else full)
        except (OvidError, ValueError):
            skipped["clef: strategy not convertible"] += 1
            continue
        pairs.append(Pair(prompt, str(trimmed), "clef", topic))
        if len(str(full)) > max_full_chars:
            skipped["clef_full: longer than --max-full-chars"] += 1
        elif str(full) != str(trimmed):
            pairs.append(Pair(prompt, str(full), "clef_full", topic))
    return pairs, skipped


# ------------------------------------------------------------------------------ Sim4IA


@dataclass(frozen=True)
class Sim4IA:
    """The Sim4IA data used here, by session number "1".."35"."""

    sessions: dict[str, list[str]]  # every query in order; the last is the Task A1 target
    context: dict[str, list[str]]  # the queries a system sees (all but the last)
    boolean: dict[str, list[str]]  # the Boolean run's queries


def _csv_rows(path: Path, what: str, header: bool) -> Iterator[tuple[int, list[str]]]:
    with _require(path, what).open(encoding="utf-8", newline="") as fh:
        try:
            for n, row in enumerate(csv.reader(fh), 1):
                if n == 1 and header:
                    continue
                if any(cell.strip() for cell in row):
                    yield n, row
        except csv.Error as err:
            raise DataError(f"{path}: not valid CSV ({err})") from None


def load_sim4ia(sim_dir: Path) -> Sim4IA:
    """Read the sessions, the context file and the Boolean run (errors name the file)."""
    sessions_csv = sim_dir / "evaluation_sessions_Task_A.csv"
    with _require(sessions_csv, "Sim4IA sessions file").open(encoding="utf-8", newline="") as fh:
        head = next(csv.reader(fh), [])
    if "session_id" not in head or "query" not in head:
        raise DataError(f"{sessions_csv}: expected a header with session_id and query, got {head}")
    sid, qcol = head.index("session_id"), head.index("query")
    numbers: dict[str, str] = {}
    sessions: dict[str, list[str]] = defaultdict(list)
    for n, row in _csv_rows(sessions_csv, "Sim4IA sessions file", header=True):
        if len(row) <= max(sid, qcol):
            raise DataError(f"{sessions_csv}:{n}: expected {len(head)} columns, got {len(row)}")
        number = numbers.setdefault(row[sid], str(len(numbers) + 1))
        sessions[number].append(row[qcol])

    context_csv = sim_dir / "predetermined_queries_Task_A_test.csv"
    context: dict[str, list[str]] = defaultdict(list)
    for n, row in _csv_rows(context_csv, "Sim4IA predetermined queries file", header=False):
        if len(row) < 4 or not row[2].strip().isdigit():
            raise DataError(f"{context_csv}:{n}: expected index, user, session number, query, ...")
        context[row[2].strip()].append(row[3])

    run_path = _require(sim_dir / "llm_queries_boolean_run.json", "Sim4IA Boolean run file")
    try:
        run = json.loads(run_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{run_path}:{err.lineno}: not JSON ({err.msg})") from None
    if not isinstance(run, dict):
        raise DataError(f"{run_path}: expected a JSON object of session number -> queries")
    boolean = {k: [q for q in v if isinstance(q, str)] for k, v in run.items() if k != "meta" and isinstance(v, list)}
    return Sim4IA(dict(sessions), dict(context), boolean)


def sim4ia_pairs(data: Sim4IA, sessions: Optional[Iterable[str]] = None, embed=None,
                 min_cosine: float = SIM4IA_MIN_COSINE) -> tuple[list[Pair], Counter]:
    """Sim4IA pairs: the context's last query -> each of the run's Boolean queries (with ``embed``,
    only those whose cosine to the prompt is at least ``min_cosine``)."""
    skipped: Counter = Counter()
    pairs: list[Pair] = []
    for k in tqdm(sorted(sessions if sessions is not None else data.sessions, key=int), desc="sim4ia", unit="session", leave=False):
        if not data.context.get(k) or not data.boolean.get(k):
            skipped["sim4ia: session without context or run queries"] += 1
            continue
        keywords = data.context[k][-1]
        full = data.sessions.get(k, [])
        if full and len(full) == len(data.context[k]) and full[-1] == keywords:  # pragma: no cover - data guard
            raise DataError(f"session {k}: the context holds the held-back target query")
        close = [True] * len(data.boolean[k])
        if embed is not None:
            vectors = embed([keywords, *data.boolean[k]])
            close = [float(v @ vectors[0]) >= min_cosine for v in vectors[1:]]
        for text, ok in zip(data.boolean[k], close):
            if not ok:
                skipped["sim4ia: run query far from the prompt"] += 1
                continue
            try:
                completion = str(parse(text))
            except QuerySyntaxError:
                skipped["sim4ia: run query not valid"] += 1
                continue
            pairs.append(Pair(make_prompt(keywords), completion, "sim4ia", f"sim4ia:{k}"))
    return pairs, skipped


def load_task_b(sim_dir: Path) -> dict[str, list[str]]:
    """The Task B conversational sessions (``evaluation_sessions_Task_B.json``: number -> utterances);
    empty when the file is absent. They are other sessions than Task A's."""
    path = sim_dir / "evaluation_sessions_Task_B.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: not JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object of session number -> utterances")
    return {str(k): [q for q in v if isinstance(q, str)] for k, v in data.items() if isinstance(v, list)}


def concept_texts(topics: Sequence[dict], sim: Sim4IA, task_b: dict[str, list[str]]) -> list[tuple[str, str]]:
    """``(text, topic)`` of every CLEF title and distinct Sim4IA query (Task A contexts, Task B)."""
    out: list[tuple[str, str]] = [(r["title"], f"clef:{r['topic']}") for r in topics]
    for prefix, sessions in (("sim4ia", sim.context), ("sim4ia_b", task_b)):
        for k in sorted(sessions, key=lambda x: (len(x), x)):
            seen: set[str] = set()
            for q in sessions[k]:
                key = " ".join(q.lower().split())
                if key and key not in seen:
                    seen.add(key)
                    out.append((" ".join(q.split()), f"{prefix}:{k}"))
    return out


def concept_pairs(texts: Sequence[tuple[str, str]], thesaurus: dict[str, list[Sense]], embed) -> tuple[list[Pair], Counter]:
    """Curated pairs (:mod:`training.concepts`): a text -> its concepts as blocks with close synonyms."""
    from training.concepts import concept_query

    skipped: Counter = Counter()
    lower = {h.lower(): senses for h, senses in thesaurus.items()}
    heads = frozenset(h for h in lower if " " in h)
    pairs: list[Pair] = []
    for text, topic in tqdm(texts, desc="concepts", unit="text", leave=False):
        query = concept_query(text, lower, embed, heads=heads)
        if query is None:
            skipped["concepts: no concept in the text"] += 1
            continue
        pairs.append(Pair(make_prompt(text), str(query), "concepts", topic))
    return pairs, skipped


# --------------------------------------------------------------------------- thesaurus


@dataclass(frozen=True)
class Sense:
    """One sense line of a MyThes entry: part of speech and its synonyms.

    ``synonyms`` are the plain items and the ``(similar term)`` ones, notes stripped;
    ``(generic term)``, ``(related term)`` and ``(antonym)`` items are not synonyms and
    are left out. ``related`` tells that the line had ``(related term)`` items (for
    adjectives the words before such an item may belong to the related noun).
    """

    pos: str
    synonyms: tuple[str, ...]
    related: bool = False


_NOTE_RE = re.compile(r"\s*\(([^()]*)\)\s*$")


def parse_thesaurus(lines: Iterable[str]) -> dict[str, list[Sense]]:
    """Parse MyThes ``.dat`` lines: ``word|n`` then n lines ``(pos)|syn|syn (generic term)|...``.

    Returns head word -> its senses in order (head words as written). The encoding line
    and junk are skipped; an entry whose count does not match the sense lines that follow
    is skipped.
    """
    out: dict[str, list[Sense]] = {}
    rows = [raw.rstrip("\r\n") for raw in lines]
    i = 0
    while i < len(rows):
        head, sep, count = rows[i].partition("|")
        i += 1
        if not sep or not count.strip().isdigit() or head.startswith("("):
            continue  # the encoding line, or junk
        senses: list[Sense] = []
        while len(senses) < int(count) and i < len(rows) and rows[i].startswith("(") and "|" in rows[i]:
            pos, *items = rows[i].split("|")
            i += 1
            synonyms: list[str] = []
            related = False
            for item in items:
                note = _NOTE_RE.search(item)
                kind = note.group(1) if note else None
                related = related or kind == "related term"
                text = " ".join(_NOTE_RE.sub("", item).split())
                if kind in (None, "similar term") and text and text.lower() != head.lower() and text.lower() not in (s.lower() for s in synonyms):
                    synonyms.append(text)
            senses.append(Sense(pos.strip("()").strip(), tuple(synonyms), related))
        if len(senses) == int(count) and senses:
            out.setdefault(head, []).extend(senses)
    return out


def load_thesaurus(path: Path) -> dict[str, list[Sense]]:
    """Read a MyThes ``.dat`` file (the error names the apt package if it is missing)."""
    if not path.is_file():
        raise DataError(f"missing thesaurus file {path}: install it with `apt-get install {THESAURUS_PACKAGE}`")
    with path.open(encoding="utf-8", errors="replace") as fh:
        return parse_thesaurus(fh)


def thesaurus_leaf(text: str) -> Optional[Node]:
    """A one-word synonym as a bare word, several plain words as a phrase; None if unusable."""
    words = text.split()
    if not words or '"' in text:
        return None
    word = terminal_regex("WORD")
    if len(words) == 1 and word.fullmatch(text) and text.upper() not in ("AND", "OR", "NOT"):
        return Term(text)
    if len(words) > 1 and all(re.fullmatch(r"[A-Za-z][A-Za-z'-]*", w) for w in words):
        return Phrase(text)
    return None


_ADJ_ENDINGS = ("al", "ic", "ive", "ous", "ary", "ful", "less", "able", "ible", "ed", "ing", "ar")


def concept_synonyms(senses: Sequence[Sense], head: str, max_synonyms: int = MAX_SYNONYMS) -> list[Node]:
    """Up to ``max_synonyms`` synonyms of ONE sense of ``head`` as query leaves.

    The part of speech is guessed from the word: adjective-like endings (``-al``, ``-ic``,
    ``-ive``, ...) prefer adjective senses (lines with related terms skipped: their words
    may belong to the related noun), other words noun senses; verbs are not used. The first
    sense of that part of speech with a usable synonym gives the synonyms. Title-case
    synonyms of a lower-case head (``oct`` -> ``October``) are skipped, acronyms kept.
    """
    nouns = [s for s in senses if s.pos == "noun"]
    adjs = [s for s in senses if s.pos == "adj" and not s.related]
    last = head.split()[-1]
    chosen = (adjs or nouns) if last.endswith(_ADJ_ENDINGS) and len(head.split()) == 1 else (nouns or adjs)
    for sense in chosen:
        leaves = []
        for syn in sense.synonyms:
            if head.islower() and syn[:1].isupper() and not syn.isupper():
                continue
            leaf = thesaurus_leaf(syn)
            if leaf is not None:
                leaves.append(leaf)
        if leaves:
            return leaves[:max_synonyms]
    return []


#: Words that are never a concept on their own: function words and words that say how a
#: study is done rather than what it is about.
STOPWORDS = frozenset(
    """a about above across after against all also among an and another any are as at be because been before
    being between both but by can could did do does due during each either else etc for from further had has have
    having her here him his how however i if in into is it its itself just less many may me might more most much
    must my near no nor not of off on once one only or other others our out over own per same several she should
    so some such than that the their them then there these they this those through to too under until up upon us
    very via vs versus was we were what when where whether which while who whom whose why will with within without
    would yet you your
    adult adults aged apparently based child children compared comparison considered different effect effects
    first following general help line people patients person persons potential related review studies study
    suspected use used using versus""".split()
)


def extract_concepts(text: str, thesaurus: dict[str, list[Sense]], max_words: int = 3) -> list[str]:
    """Thesaurus head words (1-``max_words`` words, longest first) found in ``text`` in order,
    each with a usable synonym; stop words and words under 4 letters are skipped."""
    lower = {h.lower(): h for h in thesaurus}
    words = re.findall(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]", text.replace("‐", "-").lower())
    found: list[str] = []
    j = 0
    while j < len(words):
        for n in range(max_words, 0, -1):
            gram = " ".join(words[j : j + n])
            if len(words[j : j + n]) < n or gram in STOPWORDS or (n == 1 and len(gram) < 4):
                continue
            head = lower.get(gram)
            if head is not None and concept_synonyms(thesaurus[head], gram):
                if gram not in found:
                    found.append(gram)
                j += n
                break
        else:
            j += 1
    return found


def thesaurus_pairs(texts: Iterable[str], thesaurus: dict[str, list[Sense]], count: int, seed: int) -> list[Pair]:
    """Up to ``count`` synthetic queries: 2-3 concepts that occur together in one of
    ``texts``, each the OR of the head word and synonyms of one sense, joined by AND."""
    lower = {h.lower(): h for h in thesaurus}
    sets: dict[tuple[str, ...], tuple[str, ...]] = {}  # sorted key -> heads in text order
    for text in texts:
        concepts = extract_concepts(text, thesaurus)
        for size in (2, 3):
            for combo in itertools.combinations(concepts, size):
                sets.setdefault(tuple(sorted(combo)), combo)
    keys = sorted(sets)
    random.Random(seed).shuffle(keys)
    pairs: list[Pair] = []
    for key in tqdm(keys[: max(count, 0)], desc="thesaurus", unit="query", leave=False):
        heads = sets[key]
        groups = []
        for head in heads:
            head_leaf = thesaurus_leaf(head) or Phrase(head)
            groups.append(make_or([head_leaf] + concept_synonyms(thesaurus[lower[head]], head)))
        query = make_and(groups)
        pairs.append(Pair(make_prompt(" ".join(heads)), str(query), "thesaurus", "thesaurus:" + "+".join(key)))
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


def choose_heldout(sim4ia_sessions: Iterable[str], clef_topics: Iterable[str], seed: int,
                   n_sim4ia: int = HELDOUT_SIM4IA, n_clef: int = HELDOUT_CLEF) -> dict[str, list[str]]:
    """Sim4IA session numbers and CLEF topic ids held out entirely (seeded)."""
    rng = random.Random(seed)
    out = {}
    for key, prefix, ids, n in (("sim4ia_sessions", "sim4ia", sim4ia_sessions, n_sim4ia), ("clef_topics", "clef", clef_topics, n_clef)):
        topics = sorted(f"{prefix}:{i}" for i in set(ids))
        chosen = rng.sample(topics, min(max(n, 0), len(topics)))
        out[key] = sorted((t.split(":", 1)[1] for t in chosen), key=lambda s: (len(s), s))
    return out


def heldout_topic_ids(heldout: dict[str, list[str]]) -> set[str]:
    """The ``topic`` values (``sim4ia:7``, ``clef:CD008782``) of the held-out lists."""
    return {f"sim4ia:{k}" for k in heldout.get("sim4ia_sessions", [])} | {f"clef:{t}" for t in heldout.get("clef_topics", [])}


@dataclass(frozen=True)
class Split:
    train: list[Pair]
    valid: list[Pair]
    heldout: list[Pair]


def split_pairs(pairs: list[Pair], held: set[str], seed: int, valid_fraction: float = VALID_FRACTION) -> Split:
    """Split by topic: ``held`` topics apart, about ``valid_fraction`` of the other topics of
    each source to valid (at least one when a source has two or more), the rest to train."""
    rng = random.Random(seed + 1)
    by_source: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for pair in pairs:
        if pair.topic not in held and pair.topic not in seen:
            seen.add(pair.topic)
            by_source[pair.topic.split(":", 1)[0]].append(pair.topic)
    valid_topics: set[str] = set()
    for source in sorted(by_source):
        rest = sorted(by_source[source])
        n_valid = max(1, round(len(rest) * valid_fraction)) if len(rest) >= 2 else 0
        valid_topics.update(rng.sample(rest, n_valid))
    train = [p for p in pairs if p.topic not in held and p.topic not in valid_topics]
    valid = [p for p in pairs if p.topic in valid_topics]
    heldout = [p for p in pairs if p.topic in held]
    rng.shuffle(train)
    return Split(train, valid, heldout)


def cap_pairs(pairs: list[Pair], max_pairs: Optional[int], seed: int) -> list[Pair]:
    """At most ``max_pairs`` pairs, a seeded random choice in the original order."""
    if max_pairs is None or len(pairs) <= max_pairs:
        return pairs
    keep = set(random.Random(seed + 2).sample(range(len(pairs)), max(max_pairs, 0)))
    return [p for i, p in enumerate(pairs) if i in keep]


def completion_shape(completion: str) -> tuple[int, int]:
    """(number of blocks, number of terms) of a completion."""
    query = parse(completion)
    return len(blocks(query)), len(terms(query))


def _shape_stats(pairs: list[Pair]) -> dict:
    shapes = [completion_shape(p.completion) for p in pairs]
    b = [x for x, _ in shapes]
    t = [y for _, y in shapes]
    return {
        "pairs": len(pairs),
        "topics": len({p.topic for p in pairs}),
        "blocks_mean": round(statistics.fmean(b), 2) if b else 0,
        "blocks_median": statistics.median(b) if b else 0,
        "terms_mean": round(statistics.fmean(t), 2) if t else 0,
        "terms_median": statistics.median(t) if t else 0,
        "completion_chars_mean": round(statistics.fmean(len(p.completion) for p in pairs), 1) if pairs else 0,
    }


def stats_of(split: Split, dropped: Counter) -> dict:
    """Pairs per split and source; blocks and terms per completion (mean, median); drops."""
    out: dict = {"dropped": dict(sorted(dropped.items()))}
    everything = split.train + split.valid
    out["all"] = {"pairs": len(everything), "sources": {s: _shape_stats([p for p in everything if p.source == s]) for s in sorted({p.source for p in everything})}}
    for name, pairs in (("train", split.train), ("valid", split.valid), ("heldout", split.heldout)):
        out[name] = {"pairs": len(pairs), "sources": {s: _shape_stats([p for p in pairs if p.source == s]) for s in sorted({p.source for p in pairs})}}
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
    max_thesaurus: int = MAX_THESAURUS,
    thesaurus_path: Path = THESAURUS_PATH,
    heldout_sim4ia: int = HELDOUT_SIM4IA,
    heldout_clef: int = HELDOUT_CLEF,
    max_pairs: Optional[int] = None,
    max_full_chars: int = MAX_FULL_CHARS,
    concepts: bool = True,
    keep_filters: bool = False,
    embed=None,
    sim4ia_min_cosine: float = SIM4IA_MIN_COSINE,
) -> dict:
    """Build every pair, split, write the files into ``out``; returns the stats.

    Every input is read (and the thesaurus checked) before anything is written. ``embed``
    (``texts -> unit vectors``) scores the Sim4IA answers and the concepts' synonyms; by
    default all-MiniLM-L6-v2 (:class:`blockgen.rerank.Reranker`, one thread: the same vectors
    on every run).
    """
    topics = load_clef_topics(data / "clef_tar" / "topics.jsonl")
    sim = load_sim4ia(data / "sim4ia")
    task_b = load_task_b(data / "sim4ia") if concepts else {}
    thesaurus = load_thesaurus(thesaurus_path) if max_thesaurus > 0 or concepts else {}
    heldout = choose_heldout(sim.sessions, [r["topic"] for r in topics], seed, heldout_sim4ia, heldout_clef)
    held = heldout_topic_ids(heldout)
    if embed is None:
        embed = _default_embed()

    # Filter terms come only from topics that are not held out (the benchmarks' prompts).
    generic = frozenset() if keep_filters else filter_terms(r for r in topics if f"clef:{r['topic']}" not in held)
    clef, skipped_clef = clef_pairs(topics, max_full_chars, generic)
    sim_pairs, skipped_sim = sim4ia_pairs(sim, embed=embed, min_cosine=sim4ia_min_cosine)
    # Concept pairs carry the topic of their text, so the split keeps them with it (held-out
    # texts never reach train or valid).
    curated, skipped_concepts = concept_pairs(concept_texts(topics, sim, task_b), thesaurus, embed) if concepts else ([], Counter())
    # Random head-word pairs come only from topics that are not held out.
    texts = [r["title"] for r in topics if f"clef:{r['topic']}" not in held]
    texts += [q for k in sorted(sim.context, key=int) if f"sim4ia:{k}" not in held for q in sim.context[k]]
    thes = thesaurus_pairs(texts, thesaurus, max_thesaurus, seed) if max_thesaurus > 0 else []

    pairs, dropped = dedupe_and_validate(clef + sim_pairs + curated + thes)
    dropped.update(skipped_clef)
    dropped.update(skipped_sim)
    dropped.update(skipped_concepts)
    kept = cap_pairs([p for p in pairs if p.topic not in held], max_pairs, seed)
    if len(kept) < len(pairs) - sum(p.topic in held for p in pairs):
        dropped["over --max-pairs"] += len(pairs) - sum(p.topic in held for p in pairs) - len(kept)
    split = split_pairs(kept + [p for p in pairs if p.topic in held], held, seed)
    stats = stats_of(split, dropped)
    stats["seed"] = seed
    stats["heldout_topics"] = {k: len(v) for k, v in heldout.items()}

    prompts = [{"prompt": make_prompt(r["title"]), "source": "clef", "topic": f"clef:{r['topic']}"} for r in topics if f"clef:{r['topic']}" in held]
    prompts += [
        {"prompt": make_prompt(sim.context[k][-1]), "source": "sim4ia", "topic": f"sim4ia:{k}"}
        for k in heldout["sim4ia_sessions"] if sim.context.get(k)
    ]
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "heldout.json", {**heldout, "prompts": sorted(prompts, key=lambda d: (d["source"], d["topic"]))})
    _write_jsonl(out / "valid.jsonl", split.valid)
    _write_json(out / "stats.json", stats)
    _write_jsonl(out / "train.jsonl", split.train)  # last: its appearance means "final"
    return stats


def _default_embed():
    import torch

    from blockgen.rerank import Reranker

    torch.set_num_threads(1)
    return Reranker().embed


def format_stats(stats: dict) -> str:
    """A short human-readable summary of :func:`stats_of`."""
    lines = []
    for name in ("all", "train", "valid", "heldout"):
        lines.append(f"{name}: {stats[name]['pairs']} pairs")
        for source, s in stats[name]["sources"].items():
            lines.append(
                f"  {source:10s} {s['pairs']:5d} pairs {s['topics']:5d} topics  blocks {s['blocks_mean']:.2f} "
                f"(median {s['blocks_median']:g})  terms {s['terms_mean']:.2f} (median {s['terms_median']:g})"
            )
    if stats["dropped"]:
        lines.append("dropped: " + ", ".join(f"{k} {v}" for k, v in stats["dropped"].items()))
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.prepare_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("training/data"), help="output folder (default training/data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out choice, the split and the sampling")
    parser.add_argument("--max-pairs", type=int, default=None, help="at most N pairs in train + valid (a seeded sample)")
    parser.add_argument("--max-thesaurus", type=int, default=MAX_THESAURUS, help=f"synthetic thesaurus queries (default {MAX_THESAURUS}; 0: none)")
    parser.add_argument("--no-concepts", action="store_true", help="no curated concept pairs (training/concepts.py)")
    parser.add_argument("--keep-filters", action="store_true", help="keep filter blocks (RCT, humans ...) in the trimmed CLEF answers")
    parser.add_argument("--max-full-chars", type=int, default=MAX_FULL_CHARS, help=f"longest tagged CLEF query kept whole (default {MAX_FULL_CHARS})")
    parser.add_argument("--thesaurus", type=Path, default=THESAURUS_PATH, help=f"MyThes .dat file (default {THESAURUS_PATH})")
    parser.add_argument("--heldout-sim4ia", type=int, default=HELDOUT_SIM4IA, help="Sim4IA sessions held out entirely")
    parser.add_argument("--heldout-clef", type=int, default=HELDOUT_CLEF, help="CLEF TAR topics held out entirely")
    args = parser.parse_args(argv)
    if args.max_pairs is not None and args.max_pairs < 1:
        parser.error("--max-pairs must be at least 1")
    try:
        stats = prepare(args.data, args.out, args.seed, args.max_thesaurus, args.thesaurus,
                        args.heldout_sim4ia, args.heldout_clef, args.max_pairs, args.max_full_chars,
                        concepts=not args.no_concepts, keep_filters=args.keep_filters)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_stats(stats))
    for name in ("train.jsonl", "valid.jsonl", "heldout.json", "stats.json"):
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
