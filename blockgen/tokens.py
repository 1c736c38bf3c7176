"""Tokenizer-side facts the grammar engine needs, computed once and cached.

Converting a Hugging Face tokenizer for llguidance parses its JSON and walks the whole
vocabulary: about 2.6 s for Llama 3's 128,256 tokens on this machine. The slow part is
extracting every token's bytes; building llguidance's tokenizer from those bytes takes
0.14 s without llguidance's "slices" (which do not speed up blockgen's grammar: see
:data:`SLICES`). So the bytes are cached in-process and on disk (``$BLOCKGEN_CACHE`` or
``~/.cache/blockgen``), keyed by a hash of the tokenizer's vocabulary.

Everything blockgen writes *itself* (closing brackets and quotes, the rest of an operator)
goes through :func:`encode_text`, and constrained text is always read back from the token
bytes of :func:`token_table`, never with ``tokenizer.decode`` (which may add or drop spaces).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

CACHE_VERSION = 1
_memory: dict[str, "TokenTable"] = {}

#: llguidance's mask "slices" (regexes that let it allow whole groups of tokens at once).
#: Measured with the Llama 3 tokenizer over the first 100 real queries of the Sim4IA Boolean
#: run (``python -m benchmarks.engine``, "Slices" table): the general slices leave blockgen's
#: mask time unchanged (p50 687 vs 682 µs) and double the tokenizer build (0.275 s vs 0.144 s),
#: so none are used.
SLICES: list[str] = []


def cache_dir() -> Path:
    """Where blockgen keeps its on-disk caches."""
    return Path(os.environ.get("BLOCKGEN_CACHE", Path.home() / ".cache" / "blockgen"))


@dataclass
class TokenTable:
    """The bytes of every token id, the EOS id and the special token ids of one tokenizer."""

    tokens: list[bytes]
    eos_token_id: int
    special_token_ids: list[int]


_keys: "weakref.WeakKeyDictionary[Any, tuple[int, str]]" = weakref.WeakKeyDictionary()


def tokenizer_key(hf_tokenizer: Any) -> str:
    """A stable hash of a tokenizer's vocabulary (every id's piece), special tokens and EOS.

    Memoised per tokenizer object (recomputed when its length changes, e.g. after
    ``add_tokens``): hashing 128,256 pieces takes about 0.07 s.
    """
    own = getattr(hf_tokenizer, "blockgen_cache_key", None)
    if isinstance(own, str):  # e.g. blockgen.local_tokenizer.LocalTokenizer: a hash of its file
        return own
    n = len(hf_tokenizer)
    try:
        memo = _keys.get(hf_tokenizer)
    except TypeError:  # not weak-referenceable
        memo = None
    if memo is not None and memo[0] == n:
        return memo[1]
    pieces = hf_tokenizer.convert_ids_to_tokens(list(range(n)))
    h = hashlib.sha256("\n".join("" if p is None else p for p in pieces).encode("utf-8", "surrogatepass"))
    special = sorted(getattr(hf_tokenizer, "all_special_ids", []) or [])
    h.update(f"\x00eos={hf_tokenizer.eos_token_id}\x00special={special}".encode())
    key = h.hexdigest()[:24]
    try:
        _keys[hf_tokenizer] = (n, key)
    except TypeError:
        pass
    return key


def _extract(hf_tokenizer: Any) -> TokenTable:
    import llguidance

    from blockgen import wordpiece

    if wordpiece.is_wordpiece(hf_tokenizer):  # llguidance.hf refuses WordPiece: blockgen's byte convention
        return TokenTable(tokens=wordpiece.token_bytes(hf_tokenizer), eos_token_id=hf_tokenizer.eos_token_id,
                          special_token_ids=wordpiece.special_token_ids(hf_tokenizer))

    if getattr(hf_tokenizer, "defers_loading", False):  # a tokenizers.Tokenizer without transformers
        lltok = llguidance.LLTokenizer(hf_tokenizer.backend_tokenizer.to_str(), eos_token=hf_tokenizer.eos_token_id, slices=SLICES)
    else:
        import llguidance.hf  # imports transformers

        lltok = llguidance.hf.from_tokenizer(hf_tokenizer, slices=SLICES)
    n = lltok.vocab_size
    tokens = [lltok.decode_bytes([i]) for i in range(n)]
    special = [i for i in range(n) if lltok.is_special_token(i)]
    return TokenTable(tokens=tokens, eos_token_id=lltok.eos_token, special_token_ids=special)


def token_table(hf_tokenizer: Any, use_disk: bool = True) -> TokenTable:
    """The :class:`TokenTable` of ``hf_tokenizer`` (memory cache, then disk cache, then computed)."""
    key = tokenizer_key(hf_tokenizer)
    if key in _memory:
        return _memory[key]
    path = cache_dir() / f"tokens-v{CACHE_VERSION}-{key}.pkl"
    table: Optional[TokenTable] = None
    if use_disk and path.is_file():
        try:
            with path.open("rb") as fh:
                table = TokenTable(**pickle.load(fh))
        except Exception:  # a corrupt or foreign cache file is rebuilt, never fatal
            table = None
    if table is None:
        table = _extract(hf_tokenizer)
        if use_disk:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                with tmp.open("wb") as fh:
                    pickle.dump(table.__dict__, fh)
                tmp.replace(path)
            except OSError:
                pass  # a read-only home only costs the next process the conversion
    _memory[key] = table
    return table


def encode_text(hf_tokenizer: Any, text: str) -> list[int]:
    """Token ids that write exactly ``text`` (no special tokens), for text blockgen forces.

    The tokenizer's own encoding is used when its token bytes spell ``text``; otherwise
    (a tokenizer that normalises, lower-cases or adds spaces) the longest token whose bytes
    are the next bytes of ``text`` is taken, greedily. Raises ``ValueError`` when the
    vocabulary cannot spell ``text`` byte for byte.
    """
    if not text:
        return []
    from blockgen import wordpiece

    if wordpiece.is_wordpiece(hf_tokenizer):  # blockgen's own byte convention (token_table)
        return wordpiece.encode(hf_tokenizer, text)
    table = token_table(hf_tokenizer)
    target = text.encode("utf-8")
    ids = list(hf_tokenizer.encode(text, add_special_tokens=False))
    if ids and all(0 <= i < len(table.tokens) for i in ids) and b"".join(table.tokens[i] for i in ids) == target:
        return ids
    return _greedy(table, target)


def _greedy(table: TokenTable, target: bytes) -> list[int]:
    special = set(table.special_token_ids)
    by_bytes: dict[bytes, int] = {}
    longest = 1
    for i, raw in enumerate(table.tokens):
        if raw and i not in special and raw not in by_bytes and len(raw) <= len(target):
            by_bytes[raw] = i
            longest = max(longest, len(raw))
    out, pos = [], 0
    while pos < len(target):
        for width in range(min(longest, len(target) - pos), 0, -1):
            tok = by_bytes.get(target[pos : pos + width])
            if tok is not None:
                out.append(tok)
                pos += width
                break
        else:
            raise ValueError(f"the vocabulary has no token for the bytes {target[pos:pos + 4]!r} of {target!r}")
    return out


class _Wrapped:
    """The tokenizer object ``llguidance.LLTokenizer`` takes (what ``llguidance.TokenizerWrapper``
    makes, without its probe call, which would load a lazy tokenizer): the token bytes, the end
    and special ids, and a tokenize function (llguidance calls it only to tokenize text, which
    blockgen never asks of it)."""

    is_tokenizer_wrapper = True

    def __init__(self, hf_tokenizer: Any, table: TokenTable):
        self._hf = hf_tokenizer
        self.tokens = table.tokens
        self.eos_token_id = table.eos_token_id
        lazy = getattr(hf_tokenizer, "defers_loading", False)
        self.bos_token_id = None if lazy else getattr(hf_tokenizer, "bos_token_id", None)
        self.special_token_ids = table.special_token_ids

    def __call__(self, text: "bytes | str") -> list[int]:
        from blockgen import wordpiece

        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if wordpiece.is_wordpiece(self._hf):
            return wordpiece.encode(self._hf, text)
        return self._hf.encode(text, add_special_tokens=False)


_llg_memory: dict[str, Any] = {}


def load_llguidance_tokenizer(hf_tokenizer: Any, use_disk: bool = True):
    """An ``llguidance.LLTokenizer`` for ``hf_tokenizer``, cached in-process and on disk."""
    import llguidance

    key = tokenizer_key(hf_tokenizer)
    if key not in _llg_memory:
        table = token_table(hf_tokenizer, use_disk=use_disk)
        _llg_memory[key] = llguidance.LLTokenizer(_Wrapped(hf_tokenizer, table), slices=SLICES)
    return _llg_memory[key]
