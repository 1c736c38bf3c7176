"""Training pairs: reading them from JSONL, formatting and tokenising them.

A pair is one JSONL line ``{"prompt": "<keywords>. Output:", "completion": "<query>", ...}``.
The model sees ``prompt + SEPARATOR + completion + EOS`` (see :func:`format_example`) and
learns the completion part only (prompt tokens are masked with ``-100``).

The tokenisation matches generation exactly: the prompt is encoded on its own, the way
``QueryGenerator`` encodes it (``tokenizer(prompt).input_ids``, special tokens such as a BOS
included), and the model must continue with the tokens of ``SEPARATOR + completion`` and EOS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

#: What comes between the prompt (``"<keywords>. Output:"``) and the query the model writes.
SEPARATOR = " "
#: The prompt template (the seed format; ``blockgen.generate.DEFAULT_TEMPLATE`` is the same).
PROMPT_TEMPLATE = "{keywords}. Output:"
#: Label value that the loss ignores.
IGNORE_INDEX = -100


class DataError(ValueError):
    """Bad training data: a missing file, a malformed line, a line without prompt or completion."""


@dataclass(frozen=True)
class Pair:
    """One training pair and where it came from (``path``, 1-based ``line``)."""

    prompt: str
    completion: str
    path: str = "<memory>"
    line: int = 0


@dataclass
class Example:
    """A tokenised training sequence: ``input_ids`` and ``labels`` (``-100`` where no loss)."""

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def format_prompt(keywords: str) -> str:
    """The prompt for ``keywords``: ``"<keywords>. Output:"``."""
    return PROMPT_TEMPLATE.format(keywords=keywords.strip())


def format_example(prompt: str, completion: str) -> str:
    """The full training text (without EOS): ``prompt + SEPARATOR + completion``."""
    return prompt + SEPARATOR + completion


def read_pairs(path: Union[str, Path], validate_queries: bool = True) -> list[Pair]:
    """Read training pairs from a JSONL file.

    Raises :class:`DataError` naming the file (and the line) for a missing file, a line that
    is not a JSON object, a line without a non-empty string ``prompt`` or ``completion``,
    a completion that is not a valid query (when ``validate_queries``), or an empty file.
    Blank lines are skipped.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found")
    if not p.is_file():
        raise DataError(f"{p}: not a file")
    if validate_queries:
        from blockgen.parser import QuerySyntaxError, validate
    pairs: list[Pair] = []
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{p}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{p}:{number}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: malformed JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected a JSON object with 'prompt' and 'completion', got {type(obj).__name__}")
        for key in ("prompt", "completion"):
            if key not in obj:
                raise DataError(f"{where}: missing {key!r}")
            if not isinstance(obj[key], str) or not obj[key].strip():
                raise DataError(f"{where}: {key!r} must be a non-empty string")
        if validate_queries:
            try:
                validate(obj["completion"])
            except QuerySyntaxError as err:
                first = str(err).splitlines()[0]
                raise DataError(f"{where}: the completion is not a valid query: {first}") from None
        pairs.append(Pair(obj["prompt"], obj["completion"], str(p), number))
    if not pairs:
        raise DataError(f"{p}: no training pairs (the file is empty)")
    return pairs


def shorter_queries(completion: str) -> Iterator[str]:
    """Valid, ever shorter versions of ``completion``, cut at block boundaries.

    First the trailing concept blocks are dropped one by one (``a AND b AND c`` ->
    ``a AND b`` -> ``a``); then, if the first block is an OR-group, its trailing synonyms.
    Every yielded text is a valid query (canonical format) and a prefix of the query's meaning.
    """
    from blockgen.parser import parse
    from blockgen.query import Not, Or, blocks, make_and, make_or

    query = parse(completion)
    parts = blocks(query)
    for keep in range(len(parts) - 1, 0, -1):
        node = parts[0].node
        for block in parts[1:keep]:
            node = Not(node, block.node) if block.negated else make_and([node, block.node])
        yield str(node)
    first = parts[0].node
    if isinstance(first, Or):
        for keep in range(len(first.items) - 1, 0, -1):
            yield str(make_or(first.items[:keep]))


def encode_pair(
    tokenizer: Any,
    prompt: str,
    completion: str,
    max_length: Optional[int] = None,
) -> tuple[Optional[Example], str]:
    """Tokenise one pair; loss on the completion and EOS only.

    Returns ``(example, status)`` with status ``"ok"``, ``"truncated"`` (the completion was
    cut at a block boundary to fit ``max_length``, see :func:`shorter_queries`) or
    ``"skipped"`` (``example`` is ``None``: even the shortest cut does not fit, or, with a
    WordPiece tokenizer, the completion's tokens would not read back as the same query:
    :func:`blockgen.wordpiece.round_trips`).
    """
    from blockgen import wordpiece

    eos = tokenizer.eos_token_id
    if eos is None:
        raise DataError("the tokenizer has no EOS token: training needs one to end each query")
    prompt_ids = list(tokenizer(prompt).input_ids)
    pieces = wordpiece.is_wordpiece(tokenizer)
    if pieces and not wordpiece.round_trips(tokenizer, completion):
        return None, "skipped"  # its tokens would not read back as the same query

    def build(text: str) -> Example:
        if pieces:  # the grammar engine's byte convention (blockgen.wordpiece), not BERT's own decoding
            ids = wordpiece.encode(tokenizer, SEPARATOR + text) + [eos]
        else:
            ids = list(tokenizer(SEPARATOR + text, add_special_tokens=False).input_ids) + [eos]
        return Example(prompt_ids + ids, [IGNORE_INDEX] * len(prompt_ids) + ids)

    example = build(completion)
    if max_length is None or len(example) <= max_length:
        return example, "ok"
    if len(prompt_ids) >= max_length - 1:
        return None, "skipped"
    try:
        candidates = list(shorter_queries(completion))
    except Exception:  # an unparsable completion cannot be cut safely
        return None, "skipped"
    for text in candidates:
        example = build(text)
        if len(example) <= max_length:
            return example, "truncated"
    return None, "skipped"


def encode_pairs(
    tokenizer: Any,
    pairs: Sequence[Pair],
    max_length: Optional[int] = None,
    progress: bool = False,
    desc: str = "tokenising",
) -> tuple[list[Example], dict[str, int]]:
    """Tokenise ``pairs``; returns the examples and counts ``{"ok", "truncated", "skipped"}``."""
    from tqdm.auto import tqdm

    counts = {"ok": 0, "truncated": 0, "skipped": 0}
    out: list[Example] = []
    for pair in tqdm(pairs, desc=desc, unit="pair", disable=not progress, leave=False):
        example, status = encode_pair(tokenizer, pair.prompt, pair.completion, max_length)
        counts[status] += 1
        if example is not None:
            out.append(example)
    return out, counts


def full_loss(example: Example) -> Example:
    """The same sequence with the loss on every token (causal-LM pretraining)."""
    return Example(list(example.input_ids), list(example.input_ids))
