"""Pull the query out of a language model's answer.

Models asked for a Boolean query often wrap it: a code fence, a ``Query:`` line in prose, a
JSON or Python dict (``{"query": "..."}``, ``{'query': '...'}``), or an Elasticsearch
``bool`` query. :func:`extract_query` finds the query text in such an answer;
:func:`blockgen.repair` calls it first, so the wrapper's keys never become search terms.

In the order tried:

1. **JSON / dict**: the answer (or a fenced block of it) is a JSON object or a Python dict
   literal. The first string under a query-like key (``query``, ``boolean_query``,
   ``search_query``, ``search_string``, ``q`` ..., at any depth) is the query. An
   Elasticsearch query (``{"query": {"bool": ...}}``, ``match``, ``match_phrase``, ``term``,
   ``terms``, ``multi_match``, ``query_string``, ``range``) is **converted** to blockgen's
   syntax (``must``/``filter`` -> AND, ``should`` -> OR, ``must_not`` -> NOT, ``match`` ->
   words ORed unless ``"operator": "and"``, ``match_phrase`` -> a phrase, ``title``/``abstract``
   -> ``[ti]``/``[ab]``); a clause it cannot convert (``should`` beside ``must`` without
   ``minimum_should_match``, only ``must_not``, scripts, ``fuzzy`` ...) raises
   :class:`AnswerError` naming it. A JSON Boolean tree (``{"query": {"AND": [{"OR": ["a",
   "b c"]}, "d"]}}``: strings are terms, several words a phrase) is converted too. A dict
   cut off mid-string (``{"query": "(a OR b``) still
   gives its query string.
2. **Code fence**: the content of the first fenced block (```` ```...``` ````, also an
   unclosed one), then read again by these rules.
3. **Prose**: a line ``Query: ...`` (also ``Boolean query``, ``Search string``, ``Final
   query``, ``**Query:**`` ...; the query may start on the next line); else, in an answer of
   several lines of which one is a sentence (three lower-case words in a row, no operator),
   the one line that reads most like a query (upper-case operators, parentheses, quotes).
4. Otherwise the answer is returned as it is (``source == "plain"``).

A query wrapped in a pair of outer quotes or backticks as a whole (```"(a OR b) AND c"```)
is unwrapped. The functions here are pure.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["AnswerError", "Extraction", "extract_query"]

#: Keys whose string value is the query (lower case, ``-`` and blanks read as ``_``).
QUERY_KEYS = (
    "query", "boolean_query", "bool_query", "search_query", "search_string", "searchstring", "search_terms", "search", "q",
    "query_string", "querystring", "boolean", "boolean_search", "search_strategy", "strategy", "final_query", "output",
    "answer", "result",
)
#: The deepest Elasticsearch nesting converted (deeper is refused).
MAX_DEPTH = 100
#: Elasticsearch fields that are blockgen tags.
ES_FIELDS = {"title": "ti", "abstract": "ab", "keywords": "ot"}

_FENCE = re.compile(r"```[^\n`]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_PROSE = re.compile(
    r"^[ \t>*_#-]*(?:\*\*|__)?(?:(?:final|boolean|pubmed|search|suggested|proposed|revised|improved|optimi[sz]ed|the)\s+)*"
    r"(?:boolean\s+)?(?:query|search\s+string|search\s+query|search\s+strategy|search)(?:\s*\(\w+\))?\s*(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?[ \t]*(?P<rest>.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_CUT_DICT = re.compile(r"""^\s*\{\s*(?P<q>["'])(?P<key>[\w\- ]+)(?P=q)\s*:\s*(?P<open>["'])""")
_OPERATOR = re.compile(r"\b(?:AND|OR|NOT)\b")
_SENTENCE = re.compile(r"[a-z]{2,}[,;]?\s+[a-z]{2,}[,;]?\s+[a-z]{2,}")


class AnswerError(ValueError):
    """An answer whose query cannot be taken out (an Elasticsearch clause blockgen cannot express)."""


@dataclass(frozen=True)
class Extraction:
    """The query ``text`` found in an answer; ``source`` says how (``plain``, ``fence``,
    ``json``, ``dict``, ``prose``, ``lines``, ``elasticsearch``, ``json tree``, ``quoted``)
    and ``detail`` says it in words."""

    text: str
    source: str = "plain"
    detail: str = ""

    @property
    def extracted(self) -> bool:
        """Whether anything around the query was taken away."""
        return self.source != "plain"


def _key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _load(text: str) -> tuple[Optional[Any], str]:
    """The answer as a JSON value or Python literal, and which (``json``/``dict``); (None, "")."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return None, ""
    try:
        return json.loads(stripped), "json"
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(stripped), "dict"
    except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
        return None, ""


def _unwrap_quotes(text: str) -> tuple[str, bool]:
    """``"(a OR b) AND c"`` or `` `...` `` as a whole: the inside (a lone phrase stays quoted)."""
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] == "`" and "`" not in t[1:-1]:
        return t[1:-1].strip(), True
    if len(t) >= 2 and t[0] in "\"'" and t[-1] == t[0] and t.count(t[0]) == 2 and (_OPERATOR.search(t) or "(" in t):
        return t[1:-1].strip(), True
    return text, False


# ------------------------------------------------------------------ Elasticsearch


_ES_KEYS = {
    "bool", "match", "match_phrase", "match_phrase_prefix", "match_bool_prefix", "term", "terms", "multi_match",
    "query_string", "simple_query_string", "range", "match_all", "match_none", "prefix", "wildcard", "regexp", "fuzzy",
    "exists", "ids", "nested", "script", "script_score", "function_score", "constant_score", "dis_max", "boosting",
    "more_like_this", "combined_fields", "intervals", "span_near", "span_term", "geo_distance",
}


def _is_es(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if "query" in value and isinstance(value["query"], dict):
        return _is_es(value["query"])
    return any(k in _ES_KEYS for k in value)


def _es_field(name: str):
    from blockgen.query import Field

    if not re.fullmatch(r"[A-Za-z_*][A-Za-z0-9_.*]*", str(name)):
        raise AnswerError(f"{name!r} is no Elasticsearch field name (a concept used as a field?): cannot convert it")
    low = name.split(".")[0]
    return ES_FIELDS.get(low.lower()), (None if low.lower() in ES_FIELDS or low in ("_all", "*") else Field)


def _es_text(field: str, text: str, phrase: bool, operator: str = "or"):
    from blockgen.query import Field, Phrase, Term, make_or

    tag, other = _es_field(field)
    words = str(text).split()
    if not words:
        raise AnswerError(f"an empty Elasticsearch match on {field!r}")
    if other is Field:
        return Field(field, " ".join(words), quoted=True)
    if phrase or len(words) == 1:
        return (Phrase if phrase and len(words) > 1 else Term)(" ".join(words), tag)
    if operator.lower() == "and":
        return Term(" ".join(words), tag)
    return make_or(Term(w, tag) for w in words)


def _es_clause(clause: Any, depth: int):
    """One Elasticsearch clause as a query node."""
    from blockgen.dialects import read
    from blockgen.query import Comparison, Field, Not, make_and, make_or

    if depth > MAX_DEPTH:
        raise AnswerError(f"the Elasticsearch query nests deeper than {MAX_DEPTH} levels")
    if not isinstance(clause, dict) or len(clause) != 1:
        if isinstance(clause, dict) and "query" in clause and len(clause) > 1:
            return _es_clause({"query": clause["query"]}, depth + 1)
        raise AnswerError(f"an Elasticsearch clause must be an object with one key, not {json.dumps(clause)[:60]}")
    kind, body = next(iter(clause.items()))
    if kind == "query":
        return _es_clause(body, depth + 1)
    if kind == "bool":
        if not isinstance(body, dict):
            raise AnswerError("an Elasticsearch bool must be an object")
        unknown = set(body) - {"must", "filter", "should", "must_not", "minimum_should_match", "boost"}
        if unknown:
            raise AnswerError(f"cannot convert Elasticsearch bool keys {sorted(unknown)}")

        def items(key: str) -> list:
            value = body.get(key, [])
            return [_es_clause(c, depth + 1) for c in (value if isinstance(value, list) else [value])]

        must = items("must") + items("filter")
        should, must_not = items("should"), items("must_not")
        if should:
            msm = body.get("minimum_should_match")
            if must and msm in (None, 0, "0"):
                raise AnswerError("an Elasticsearch bool with must and should but no minimum_should_match: the should clauses only rank; write them under must")
            if msm not in (None, 1, "1", 0, "0") and not must:
                raise AnswerError(f"cannot convert minimum_should_match={msm!r} (only 1)")
            must.append(make_or(should))
        if not must:
            raise AnswerError("an Elasticsearch bool with only must_not excludes from nothing")
        node = make_and(must)
        return Not(node, make_or(must_not)) if must_not else node
    if kind in ("match", "match_phrase"):
        if not isinstance(body, dict) or len(body) != 1:
            raise AnswerError(f"an Elasticsearch {kind} needs one field")
        field, value = next(iter(body.items()))
        operator = "or"
        if isinstance(value, dict):
            operator = str(value.get("operator", "or"))
            value = value.get("query", "")
        return _es_text(field, value, kind == "match_phrase", operator)
    if kind in ("term", "terms"):
        if not isinstance(body, dict) or len(body) != 1:
            raise AnswerError(f"an Elasticsearch {kind} needs one field")
        field, value = next(iter(body.items()))
        if isinstance(value, dict):
            value = value.get("value", "")
        values = value if isinstance(value, list) else [value]
        tag, other = _es_field(field)
        if other is None:
            return make_or(_es_text(field, str(v), True) for v in values)
        return make_or(Field(field, str(v), quoted=True) for v in values)
    if kind == "multi_match":
        if not isinstance(body, dict) or "query" not in body:
            raise AnswerError("an Elasticsearch multi_match needs a query")
        fields = body.get("fields") or ["_all"]
        phrase = body.get("type") in ("phrase", "phrase_prefix")
        return make_or(_es_text(f.split("^")[0], body["query"], phrase, str(body.get("operator", "or"))) for f in fields)
    if kind in ("query_string", "simple_query_string"):
        text = body.get("query") if isinstance(body, dict) else body
        if not isinstance(text, str):
            raise AnswerError(f"an Elasticsearch {kind} needs a query string")
        return read(text, "lucene").query
    if kind == "range":
        if not isinstance(body, dict) or len(body) != 1:
            raise AnswerError("an Elasticsearch range needs one field")
        field, bounds = next(iter(body.items()))
        ops = {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<"}
        parts = [Comparison(field, ops[k], str(v)) for k, v in (bounds or {}).items() if k in ops]
        if not parts:
            raise AnswerError(f"an Elasticsearch range on {field!r} without gte/gt/lte/lt")
        return make_and(parts)
    raise AnswerError(f"cannot convert the Elasticsearch clause {kind!r} into a Boolean query")


_TREE_OPS = {"and", "or", "not"}


def _is_tree(value: Any) -> bool:
    """A JSON Boolean tree: ``{"AND": [..]}``, ``{"OR": [..]}`` (also under ``query``)."""
    if isinstance(value, dict) and len(value) == 1:
        key, inner = next(iter(value.items()))
        if isinstance(key, str) and key.lower() == "query":
            return _is_tree(inner)
        return isinstance(key, str) and key.lower() in _TREE_OPS and isinstance(inner, list)
    return False


def _tree_node(value: Any, depth: int):
    """A JSON Boolean tree as a query node: strings are terms (several words: a phrase)."""
    from blockgen.query import Not, Phrase, Term, make_and, make_or

    if depth > MAX_DEPTH:
        raise AnswerError(f"the JSON query nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        words = value.split()
        if not words:
            raise AnswerError("an empty term in the JSON query")
        return Term(words[0]) if len(words) == 1 else Phrase(" ".join(words))
    if isinstance(value, dict) and len(value) == 1:
        key, inner = next(iter(value.items()))
        low = key.lower() if isinstance(key, str) else ""
        if low == "query":
            return _tree_node(inner, depth + 1)
        if low == "term":
            if isinstance(inner, dict) and len(inner) == 1:
                return _tree_node(next(iter(inner)), depth + 1)
            return _tree_node(inner, depth + 1)
        if low in _TREE_OPS and isinstance(inner, list) and inner:
            if low == "not":
                raise AnswerError("a NOT in the JSON query with nothing to exclude from")
            positive, negative = [], []
            for item in inner:
                if isinstance(item, dict) and len(item) == 1 and str(next(iter(item))).lower() == "not":
                    negative.extend(_tree_node(x, depth + 1) for x in (next(iter(item.values())) or []))
                else:
                    positive.append(_tree_node(item, depth + 1))
            if not positive:
                raise AnswerError("a JSON query that only excludes")
            node = make_and(positive) if low == "and" else make_or(positive)
            return Not(node, make_or(negative)) if negative else node
    shown = json.dumps(value, ensure_ascii=False)[:60] if not isinstance(value, str) else value
    raise AnswerError(f"cannot convert {shown} of the JSON query into a Boolean query")


def _from_tree(value: Any) -> str:
    from blockgen.dialects import write

    return write(_tree_node(value, 0), "blockgen").text


def _from_es(value: Any) -> str:
    from blockgen.dialects import write

    try:
        node = _es_clause(value if "query" not in value or not isinstance(value.get("query"), dict) else value["query"], 0)
    except AnswerError:
        raise
    except Exception as err:  # a query_string the Lucene reader rejects, and the like
        raise AnswerError(f"cannot convert the Elasticsearch query: {err}") from None
    return write(node, "blockgen").text


# ------------------------------------------------------------------ structured values


def _find_query(value: Any) -> Optional[str]:
    """The first string under a query-like key, breadth first; a list of strings: the first."""
    queue = [value]
    while queue:
        item = queue.pop(0)
        if isinstance(item, dict):
            for k, v in item.items():
                if isinstance(k, str) and _key(k) in QUERY_KEYS and isinstance(v, str) and v.strip():
                    return v
            queue.extend(v for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            strings = [v for v in item if isinstance(v, str) and v.strip()]
            if strings and item is value:
                return strings[0]
            queue.extend(v for v in item if isinstance(v, (dict, list)))
    return None


def _structured(text: str) -> Optional[Extraction]:
    value, kind = _load(text)
    if value is None:
        m = _CUT_DICT.match(text)
        if m and _key(m.group("key")) in QUERY_KEYS:  # a dict cut off inside its query string
            rest = text[m.end():]
            return Extraction(_unescape_cut(rest, m.group("open")), "dict", f"query taken from a cut-off dict (key {m.group('key')!r})")
        return None
    if _is_es(value):
        return Extraction(_from_es(value), "elasticsearch", "Elasticsearch query converted to a Boolean query")
    if _is_tree(value):
        return Extraction(_from_tree(value), "json tree", "JSON Boolean tree ({\"AND\": [...]}) converted to a Boolean query")
    found = _find_query(value)
    if found is None:
        if isinstance(value, (dict, list)):
            raise AnswerError(f"the answer is a {'JSON object' if kind == 'json' else 'dict'} without a query string (keys: {', '.join(map(str, value))[:80] if isinstance(value, dict) else 'a list'})")
        return None
    return Extraction(found.strip(), kind, f"query taken from a {'JSON object' if kind == 'json' else 'dict'}")


def _unescape_cut(rest: str, quote: str) -> str:
    """The string content after an opening quote, up to its closing quote (or the end)."""
    out = []
    i = 0
    while i < len(rest):
        ch = rest[i]
        if ch == "\\" and i + 1 < len(rest):
            nxt = rest[i + 1]
            out.append({"n": " ", "t": " ", '"': '"', "'": "'", "\\": "\\"}.get(nxt, nxt))
            i += 2
            continue
        if ch == quote:
            break
        out.append(ch)
        i += 1
    return "".join(out).strip()


# ------------------------------------------------------------------ prose


def _score(line: str) -> int:
    """How much a line reads like a query: operators, parentheses, quotes."""
    return 3 * len(_OPERATOR.findall(line)) + line.count("(") + line.count('"') // 2


def _prose(text: str) -> Optional[Extraction]:
    m = _PROSE.search(text)
    if m:
        rest = m.group("rest").strip().strip("*_").strip()
        if not rest:  # the query on the following line(s), up to a blank line
            after = text[m.end():].lstrip("\n")
            block = after.split("\n\n")[0].strip()
            rest = block
        if rest:
            return Extraction(rest, "prose", "query taken from the line after a 'Query:' label")
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if len(lines) > 1 and max(_score(line) for line in lines) >= 3:
        prose = [line for line in lines if _is_prose(line)]
        kept = [line for line in lines if not _is_prose(line)]
        if prose and kept:
            return Extraction("\n".join(kept), "lines", f"{len(prose)} line(s) of prose around the query removed")
    return None


def _is_prose(line: str) -> bool:
    """A sentence: at least five words, four of them in lower case and three in a row, no
    operator, bracket, quote or truncation, no Ovid field suffix, no leading line number."""
    if _OPERATOR.search(line) or any(c in line for c in '()"[]*$/\u201c\u201d') or re.match(r"\s*#?\d", line):
        return False
    if re.search(r"\.[a-z]{2}(?:,[a-z]{2})*\.", line):
        return False
    words = line.split()
    lower = [w for w in words if re.fullmatch(r"[a-z][a-z'’-]*[,.:;!?]?", w)]
    return len(words) >= 5 and len(lower) >= 4 and bool(_SENTENCE.search(line))


# ------------------------------------------------------------------ entry


def extract_query(answer: str, keep_valid: bool = True, _depth: int = 0) -> Extraction:
    """The query in a model's ``answer`` (see the module docstring).

    With ``keep_valid`` (the default), an answer that is a valid blockgen query as a whole
    keeps its outer quotes and all its lines (the best-line and unquoting rules apply only
    to text that is not valid as it stands). Raises :class:`AnswerError` for an
    Elasticsearch query that cannot be converted and for a JSON object or dict that holds no
    query string, ``TypeError`` for a non-string.
    """
    if not isinstance(answer, str):
        raise TypeError(f"extract_query() needs a str, not {type(answer).__name__}")
    result = _extract(answer, _depth)
    if keep_valid and result.source in ("lines", "quoted") and _is_valid(answer):
        return Extraction(answer)
    return result


def _is_valid(text: str) -> bool:
    from blockgen.parser import is_valid

    try:
        return is_valid(text)
    except RecursionError:
        return False


def _extract(answer: str, _depth: int) -> Extraction:
    found = _structured(answer)
    if found is not None:
        inner = _extract(found.text, _depth + 1) if _depth < 3 and found.source != "elasticsearch" else None
        if inner is not None and inner.extracted and inner.source not in ("lines",):
            return Extraction(inner.text, found.source, f"{found.detail}; {inner.detail}")
        return found
    m = _FENCE.search(answer)
    if m and m.group(1).strip() and _depth < 3:
        inner = _extract(m.group(1).strip(), _depth + 1)
        detail = "query taken from a code fence" + (f"; {inner.detail}" if inner.extracted else "")
        return Extraction(inner.text, "fence" if not inner.extracted else inner.source, detail)
    found = _prose(answer)
    if found is not None:
        text, unwrapped = _unwrap_quotes(found.text)
        return Extraction(text, found.source, found.detail + ("; outer quotes removed" if unwrapped else ""))
    text, unwrapped = _unwrap_quotes(answer)
    if unwrapped:
        return Extraction(text, "quoted", "outer quotes around the whole query removed")
    return Extraction(answer)
