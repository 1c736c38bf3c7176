"""The inputs of the fuzz harness (:mod:`benchmarks.fuzz`): hypothesis strategies, one per input class.

=========  ==========================================================================
class      what it draws
=========  ==========================================================================
grammar    valid queries built from the grammar's own terminals (WORD, PHRASE, TAG, CMP
           and the operators, checked by :func:`blockgen.grammar.terminal_regex`), joined
           and parenthesised the grammar's way, with any blanks
mutated    real queries (Sim4IA runs and sessions, CLEF TAR strategy lines) and grammar
           queries, mutated: characters deleted, inserted (operators, quotes, brackets,
           tags, other scripts, line separators, controls), spans duplicated, cut, case
           changed, joined, wrapped
unicode    any text (every plane, surrogates included) and words of every script joined
           by operators
bytes      random bytes decoded as a reader might (UTF-8 with replacement or
           surrogateescape, Latin-1)
deep       nesting: ``(`` ... ``)``, ``NOT (``, unbalanced, around a term, depth up to 2,000
chain      long chains: ``a AND b NOT c ...``, ``NOT NOT ... a``, many words, an
           unclosed quote or tag followed by a long text (up to about 20,000 characters)
ovid       line-numbered Ovid strategies: real CLEF TAR strategies, mutated, and made-up
           ones with reference chains (``1 or 2``, ``or/1-3``)
answers    model answers: code fences, ``Query:`` prose, JSON and dict wrappers,
           Elasticsearch ``bool`` queries, around drawn queries
=========  ==========================================================================

A run draws the classes in turn, in the shares of :data:`WEIGHTS` (:func:`schedule`); sizes are mostly small, with one
draw in 32 of the deep and chain classes at the large end (a large input costs time in
every check).

The real queries come from ``../shared/data`` (``$BLOCKGEN_SHARED_DATA``); nothing is copied
into the repository. When the folder is absent, :func:`corpus` says so and the ``mutated`` and
``ovid`` classes mutate grammar queries and built-in strategies instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Optional

from hypothesis import strategies as st

from blockgen.grammar import terminal_regex

__all__ = ["CLASSES", "WEIGHTS", "Corpus", "corpus", "strategy", "case_strategy", "schedule", "mutate", "variants"]

# ---------------------------------------------------------------- alphabets

#: Letters the grammar's WORD accepts today (Latin with accents, Greek, Cyrillic) and digits.
_GRAMMAR_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éüßñçÅøαβγΩжЯЁё"
#: Letters of other scripts and combining marks (words the grammar should keep whole).
_OTHER_LETTERS = "їієґЇІЄệạđơưả日本語中文한국어عربيةעבריתहिन्दीไทยሰላምᏣᎳᎩ\u0301\u0308"
_WORD_PUNCT = ["*", "?", "-x", "'s", ".5", "/b", "&c"]
_TAGS = ["[tiab]", "[Mesh]", "[MeSH Terms]", "[Title/Abstract]", "[Mesh:NoExp]", "[ti]", "[au]", "[pt]"]
_BLANKS = [" ", " ", " ", "  ", "\t", "\n", "\r\n", " \r\n "]
_CMPS = [":", ">=", "<=", ">", "<", "="]
#: Fragments inserted by the mutator: the grammar's punctuation, other dialects' syntax,
#: line separators and controls, other scripts, lone surrogates, wrappers.
_FRAGMENTS = [
    "(", ")", '"', "[", "]", " AND ", " OR ", " NOT ", "AND", "OR", "NOT", "and", "or", "not", ":", ">=", "<", "=",
    "*", "?", "-", "'", ".", "/", "&", "$", "#", "\\", "{", "}", "~", "^", ",", ";", "!", "`", "```", "\n", "\r\n",
    "\r", "\t", "\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x00", "\x1f", "\x7f", "\u00a0", "\u200b", "\ufeff",
    "Київ", "Việt", "cafe\u0301", "日本", "ß", "İ", "\U0001f600", "\ud800", "\udcff", "[Mesh]", "[tiab]", "[ti",
    ".ti,ab.", ".tw.", "adj3", "exp ", "/", "or/1-2", "1 or 2", "limit 1 to humans", "#1", "field:", "title:",
    '{"query": "', '"}', "Query: ", "AND (", ") OR", "((", "))", '""', '" "', "NOT NOT ", "OR OR",
]


def _word(letters: str) -> st.SearchStrategy[str]:
    """A word: a letter then letters and the grammar's inner punctuation."""
    letter = st.sampled_from(letters)
    chunk = st.one_of(letter, letter, letter, st.sampled_from(_WORD_PUNCT))
    return st.tuples(letter, st.lists(chunk, max_size=8).map("".join)).map("".join)


def _grammar_word() -> st.SearchStrategy[str]:
    rx = terminal_regex("WORD")
    return _word(_GRAMMAR_LETTERS).filter(rx.fullmatch)


def _phrase() -> st.SearchStrategy[str]:
    rx = terminal_regex("PHRASE")
    inner = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters='"'), min_size=1, max_size=16)
    return st.one_of(
        inner.map(lambda s: f'"{s}"'),
        st.lists(_grammar_word(), min_size=1, max_size=3).map(lambda ws: '"' + " ".join(ws) + '"'),
    ).filter(rx.fullmatch)


def _leaf(word: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    phrase = _phrase()
    tag = st.sampled_from(_TAGS)
    tag_rx = terminal_regex("TAG")
    tags = st.one_of(tag, st.text("abcdefghijklmnopqrstuvwxyzABC /:~0-9-", min_size=1, max_size=10).map(
        lambda s: f"[a{s}]").filter(tag_rx.fullmatch))
    words = st.lists(word, min_size=1, max_size=3).map(" ".join)
    tagged = st.tuples(st.one_of(words, phrase), st.sampled_from(["", " "]), tags).map("".join)
    fieldlike = st.tuples(word, st.sampled_from(_CMPS), st.one_of(word, phrase)).map("".join)
    return st.one_of(words, words, phrase, tagged, fieldlike)


def _join(parts: list, ops: list, blanks: list) -> str:
    out = parts[0]
    for part, op, (b1, b2) in zip(parts[1:], ops, blanks):
        out += f"{b1}{op}{b2}{part}"
    return out


def _queries(word: st.SearchStrategy[str], max_leaves: int = 16) -> st.SearchStrategy[str]:
    """Queries the grammar's way: queries joined by AND/OR/NOT, or parenthesised, are queries."""
    blank = st.sampled_from(_BLANKS)

    def extend(inner):
        joined = st.lists(inner, min_size=2, max_size=4).flatmap(
            lambda parts: st.tuples(
                st.just(parts),
                st.lists(st.sampled_from(["AND", "OR", "NOT"]), min_size=len(parts) - 1, max_size=len(parts) - 1),
                st.lists(st.tuples(blank, blank), min_size=len(parts) - 1, max_size=len(parts) - 1),
            )
        ).map(lambda t: _join(*t))
        grouped = st.tuples(st.sampled_from(["", " ", "\n"]), inner, st.sampled_from(["", " "])).map(
            lambda t: f"({t[0]}{t[1]}{t[2]})")
        return st.one_of(joined, grouped)

    return st.recursive(_leaf(word), extend, max_leaves=max_leaves)


# ---------------------------------------------------------------- real data


#: Used when the shared data folder is absent: a few strategies in Ovid's syntax.
BUILTIN_STRATEGIES = (
    "exp Malaria/\nmalaria.ti,ab.\n1 or 2\nexp Mosquito Nets/\n(bed net* or bednet*).ti,ab.\n4 or 5\n3 and 6\nlimit 7 to humans",
    "1. exp Bronchiectasis/\n2. bronchiect*.ti,ab\n3. (1 OR 2)\n4. steroid*.ti,ab\n5. 3 AND 4",
    '"Acne Vulgaris"[Mesh] OR acne[tiab]\n(antibiotic* OR doxycycline)[tiab]\n#1 AND #2',
    "(heart adj3 failure).tw.\nexp Heart Failure/\nor/1-2\nrandomized controlled trial.pt.\n3 and 4\nlimit 5 to (english language and yr=\"2000 -Current\")",
)


@dataclass(frozen=True)
class Corpus:
    """Seed texts for mutation: one-line ``queries`` and multi-line Ovid ``strategies``; ``source`` says where from."""

    queries: tuple[str, ...]
    strategies: tuple[str, ...]
    source: str
    counts: dict = field(default_factory=dict)


@lru_cache(maxsize=1)
def corpus() -> Corpus:
    """The real queries of ``../shared/data`` (Sim4IA runs and sessions, CLEF TAR strategies), or built-in seeds."""
    from benchmarks.data import DataError, load_clef_topics, load_run, load_sessions, shared_data_dir, sim4ia_dir

    counts: dict[str, int] = {}
    queries: list[str] = []
    strategies: list[str] = []
    try:
        for name in ("llm_queries_boolean_run.json", "run_file_finetuned_filter_LLM_new.json"):
            _, runs = load_run(sim4ia_dir() / name)
            found = [q for qs in runs.values() for q in qs if q.strip()]
            counts[name] = len(found)
            queries += found
        sessions = [q for s in load_sessions() for q in s.queries if q.strip()]
        counts["evaluation_sessions_Task_A.csv"] = len(sessions)
        queries += sessions
        topics = [t["query"] for t in load_clef_topics() if isinstance(t.get("query"), str) and t["query"].strip()]
        counts["clef_tar/topics.jsonl"] = len(topics)
        strategies += topics
        queries += [line for s in topics for line in s.split("\n") if line.strip()]
    except (DataError, OSError, ValueError, KeyError, json.JSONDecodeError) as err:
        return Corpus((), BUILTIN_STRATEGIES, f"built-in seeds only: the shared data is not usable ({err})")
    unique = tuple(dict.fromkeys(queries))
    return Corpus(unique, tuple(dict.fromkeys(strategies)), f"real queries from {shared_data_dir()}", counts)


# ---------------------------------------------------------------- mutation


_MUTATIONS = ("delete", "delete_span", "insert", "insert_text", "duplicate", "swap", "truncate", "upper", "lower",
              "wrap", "join", "replace")


def _mutation() -> st.SearchStrategy[tuple]:
    fragment = st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=3))
    return st.tuples(st.sampled_from(_MUTATIONS), st.integers(0, 1 << 20), st.integers(1, 40), fragment)


def mutate(text: str, ops: list[tuple], other: str = "a") -> str:
    """``text`` after the mutations ``ops`` (``(kind, position, length, fragment)`` each)."""
    for kind, pos, length, frag in ops:
        n = len(text)
        i = pos % (n + 1)
        j = min(n, i + length)
        if kind == "delete":
            text = text[:i] + text[i + 1:]
        elif kind == "delete_span":
            text = text[:i] + text[j:]
        elif kind in ("insert", "insert_text"):
            text = text[:i] + frag + text[i:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif kind == "swap" and n >= 2:
            i = min(i, n - 2)
            text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
        elif kind == "truncate":
            text = text[:i]
        elif kind == "upper":
            text = text[:i] + text[i:j].upper() + text[j:]
        elif kind == "lower":
            text = text[:i] + text[i:j].lower() + text[j:]
        elif kind == "wrap":
            text = "(" * (length % 5 + 1) + text + ")" * (length % 5 + (pos % 3) - 1 + 1)
        elif kind == "join":
            text = text + f" {frag.strip() or 'AND'} " + other
        elif kind == "replace" and n:
            text = text[:i] + frag + text[i + 1:]
    return text


def _mutated(seeds: st.SearchStrategy[str], others: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(seeds, st.lists(_mutation(), min_size=0, max_size=5), others).map(lambda t: mutate(t[0], t[1], t[2]))


# ---------------------------------------------------------------- the classes


def _grammar() -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(["", " ", "\n"]), _queries(_grammar_word()), st.sampled_from(["", " ", "\n"])).map(
        "".join)


def _real_or_grammar() -> st.SearchStrategy[str]:
    c = corpus()
    if c.queries:
        return st.one_of(st.sampled_from(c.queries), st.sampled_from(c.queries), _grammar())
    return _grammar()


def _mutated_class() -> st.SearchStrategy[str]:
    seeds = _real_or_grammar()
    return _mutated(seeds, seeds)


def _unicode() -> st.SearchStrategy[str]:
    any_word = st.one_of(_word(_OTHER_LETTERS), _word(_GRAMMAR_LETTERS + _OTHER_LETTERS), _grammar_word())
    return st.one_of(
        st.text(max_size=60),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=60),
        _queries(any_word, max_leaves=8),
        _mutated(_queries(any_word, max_leaves=6), st.text(max_size=10)),
    )


def _bytes() -> st.SearchStrategy[str]:
    data = st.binary(max_size=80)
    return st.one_of(
        data.map(lambda b: b.decode("utf-8", "replace")),
        data.map(lambda b: b.decode("utf-8", "surrogateescape")),
        data.map(lambda b: b.decode("latin-1")),
    )


def _sizes(small: tuple[int, int], mid: Optional[tuple[int, int]], large: tuple[int, int], bound: Optional[int]):
    """Sizes: one draw in 32 from ``large``, four from ``mid`` (if any), the rest from ``small``;
    with a ``bound``, uniformly up to it (the bounded share that CI runs)."""
    if bound is not None:
        return st.integers(small[0], bound)
    return st.integers(0, 31).flatmap(
        lambda r: st.integers(*large) if r == 0 else st.integers(*mid) if mid and r < 5 else st.integers(*small))


def _deep(bound: Optional[int] = None) -> st.SearchStrategy[str]:
    # mostly shallow: one draw in 32 goes past 400 (every size costs time in every check)
    depth = _sizes((1, 60), (60, 300), (400, 2000), bound)
    inner = st.one_of(st.just("a"), st.sampled_from(['"a b"', "a[tiab]", "x:y", "a OR b", "a AND b NOT c", "", "NOT a"]),
                      _grammar_word())
    opener = st.sampled_from(["(", "( ", "NOT (", "a AND (", "(a OR ", '("x" OR ', "((", "(\n"])
    closer = st.sampled_from([")", " )", ") OR b", ")\n", "))"])

    def build(t):
        d, op, mid, cl, balance = t
        closers = d + balance if balance > -d else 0
        return op * d + mid + cl * max(closers, 0)

    return st.tuples(depth, opener, inner, closer, st.integers(-3, 3)).map(build)


def _chain(bound: Optional[int] = None) -> st.SearchStrategy[str]:
    k = _sizes((1, 150), None, (300, 2000), bound)
    op = st.sampled_from([" AND b", " OR b", " NOT b", " AND b NOT c", " b", " AND", " NOT", " OR (b)", ' OR "b c"',
                          " AND b[tiab]", " x:y", " and b", "NOT ", " AND\n", "(a) AND "])

    def build(t):
        head, piece, n, tail = t
        return head + piece * n + tail

    chains = st.tuples(st.sampled_from(["a", "", "(", "NOT ", '"']), op, k, st.sampled_from(["", ")", " c", '"', " AND"])).map(build)
    long_open = st.tuples(st.sampled_from(['"', "[", "a[", '("', 'x:"', "(a OR \"", '"a" [']),
                          st.sampled_from(["a", "a ", "ab c", "Київ ", "x(", "[", "(", '" "']),
                          _sizes((1, 300), None, (500, 5000), bound)).map(
        lambda t: t[0] + t[1] * t[2])
    return st.one_of(chains, chains, long_open)


def _made_up_strategy() -> st.SearchStrategy[str]:
    line = st.one_of(_grammar_word().map(lambda w: w + ".ti,ab."), _grammar_word().map(lambda w: f"exp {w}/"),
                     st.tuples(st.integers(1, 30), st.integers(1, 30)).map(lambda t: f"{t[0]} or {t[1]}"),
                     st.tuples(st.integers(1, 30), st.integers(1, 30)).map(lambda t: f"or/{t[0]}-{t[1]}"),
                     st.tuples(st.integers(1, 30), st.integers(1, 30)).map(lambda t: f"{t[0]} and {t[1]}"),
                     st.integers(1, 30).map(lambda n: f"limit {n} to humans"),
                     _grammar_word().map(lambda w: f"({w} adj3 {w}).tw."))
    numbered = st.booleans()
    return st.tuples(st.lists(line, min_size=1, max_size=12), numbered).map(
        lambda t: "\n".join((f"{i}. {s}" if t[1] else s) for i, s in enumerate(t[0], 1)))


def _ovid(bound: Optional[int] = None) -> st.SearchStrategy[str]:
    c = corpus()
    seeds = st.one_of(st.sampled_from(c.strategies), _made_up_strategy())
    chain = _sizes((2, 60), None, (100, 700), bound).map(lambda n: "a\n" + "\n".join(f"{i - 1} or b{i}" for i in range(2, n + 1)))
    return st.one_of(seeds, _mutated(seeds, seeds), _mutated(seeds, seeds), chain)


def _answers() -> st.SearchStrategy[str]:
    q = st.one_of(_real_or_grammar(), _grammar())
    wrapped = st.tuples(
        st.sampled_from(["```\n{}\n```", "```boolean\n{}", "Here is the query:\n\nQuery: {}\n\nThis finds...",
                         "**Boolean query:** {}", '{{"query": {}}}', "{{'query': {}}}", '{{"result": {{"query": {}}}}}',
                         '"{}"', "`{}`", "Sure! I searched for these words.\n{}\nHope it helps.", '{{"query": {}']),
        q, st.booleans()).map(lambda t: t[0].format(json.dumps(t[1]) if "{{" in t[0] else t[1]))
    es_term = st.tuples(st.sampled_from(["match", "match_phrase", "term"]), st.sampled_from(["title", "abstract", "text"]),
                        _grammar_word()).map(lambda t: {t[0]: {t[1]: t[2]}})
    es = st.tuples(st.lists(es_term, max_size=3), st.lists(es_term, max_size=3), st.lists(es_term, max_size=2)).map(
        lambda t: json.dumps({"query": {"bool": {"must": t[0], "should": t[1], "must_not": t[2]}}}))
    return st.one_of(wrapped, wrapped, es, _mutated(wrapped, q))


#: Input class -> strategy factory.
CLASSES: dict[str, Callable[[], st.SearchStrategy[str]]] = {
    "grammar": _grammar,
    "mutated": _mutated_class,
    "unicode": _unicode,
    "bytes": _bytes,
    "deep": _deep,
    "chain": _chain,
    "ovid": _ovid,
    "answers": _answers,
}


#: The classes whose sizes can be bounded (:func:`strategy`'s ``bound``).
SIZED = ("deep", "chain", "ovid")


def strategy(name: str, bound: Optional[int] = None) -> st.SearchStrategy[str]:
    """The strategy of one input class (see the module docstring); ``bound`` caps the nesting
    depth or repetition count of the sized classes (:data:`SIZED`), e.g. for CI."""
    if name not in CLASSES:
        raise KeyError(f"unknown input class {name!r}; choose from {', '.join(CLASSES)}")
    return CLASSES[name](bound) if name in SIZED else CLASSES[name]()


#: Shares of the classes in a run (draws of each class per cycle): the large inputs (deep,
#: chain, ovid) cost 10 to 50 times more per input than the others, so they get fewer draws.
WEIGHTS = {"grammar": 4, "mutated": 4, "unicode": 3, "bytes": 2, "answers": 3, "deep": 1, "chain": 1, "ovid": 1}


def schedule(names) -> list[str]:
    """The classes ``names`` in the order a run draws them, each :data:`WEIGHTS` times per cycle."""
    return [n for n in names for _ in range(WEIGHTS.get(n, 1))]


def case_strategy(name: str) -> st.SearchStrategy[tuple[str, int]]:
    """``(text, mutation seed)`` drawn from class ``name`` (see :func:`variants` for the seed)."""
    return st.tuples(strategy(name), st.integers(0, 2**32 - 1))


def variants(text: str, seed: int, count: int) -> list[str]:
    """``text`` and ``count - 1`` mutations of it (1 to 5 :func:`mutate` steps each, drawn with ``random.Random(seed)``).

    Drawing from the strategies costs more than most checks; mutating a drawn input a few
    times is cheap, keeps the run reproducible and multiplies the inputs per draw.
    """
    import random

    rng = random.Random(seed)
    out = [text]
    for _ in range(count - 1):
        ops = [(rng.choice(_MUTATIONS), rng.randrange(1 << 20), rng.randrange(1, 41),
                rng.choice(_FRAGMENTS) if rng.random() < 0.8 else "".join(chr(rng.randrange(0x30000)) for _ in range(rng.randrange(4))))
               for _ in range(rng.randrange(1, 6))]
        out.append(mutate(text, ops, rng.choice(out)))
    return out
