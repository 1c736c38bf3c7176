"""Tokenizer-side facts the grammar engine needs, computed once and cached.

Converting a Hugging Face tokenizer for llguidance parses its JSON and walks the whole
vocabulary: about 2.6 s for Llama 3's 128,256 tokens on this machine. The slow part is
extracting every token's bytes; building llguidance's tokenizer from those bytes takes
about 0.4 s. So the bytes are cached in-process and on disk (``$BLOCKGEN_CACHE`` or
``~/.cache/blockgen``), keyed by a hash of the tokenizer's vocabulary.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

CACHE_VERSION = 1
_memory: dict[str, "TokenTable"] = {}


def cache_dir() -> Path:
    """Where blockgen keeps its on-disk caches."""
    return Path(os.environ.get("BLOCKGEN_CACHE", Path.home() / ".cache" / "blockgen"))


@dataclass
class TokenTable:
    """The bytes of every token id, the EOS id and the special token ids of one tokenizer."""

    tokens: list[bytes]
    eos_token_id: int
    special_token_ids: list[int]


def tokenizer_key(hf_tokenizer: Any) -> str:
    """A stable hash of a tokenizer's vocabulary, special tokens and EOS."""
    vocab = hf_tokenizer.get_vocab()
    h = hashlib.sha256()
    for piece, idx in sorted(vocab.items(), key=lambda kv: kv[1]):
        h.update(f"{idx}\t{piece}\n".encode("utf-8", "surrogatepass"))
    h.update(f"eos={hf_tokenizer.eos_token_id}".encode())
    return h.hexdigest()[:24]


def _extract(hf_tokenizer: Any) -> TokenTable:
    import llguidance.hf

    from blockgen import wordpiece

    if wordpiece.is_wordpiece(hf_tokenizer):  # llguidance.hf refuses WordPiece: blockgen's byte convention
        return TokenTable(tokens=wordpiece.token_bytes(hf_tokenizer), eos_token_id=hf_tokenizer.eos_token_id,
                          special_token_ids=wordpiece.special_token_ids(hf_tokenizer))

    lltok = llguidance.hf.from_tokenizer(hf_tokenizer)
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


class _Wrapped:
    """The minimal tokenizer object ``llguidance.TokenizerWrapper`` expects."""

    def __init__(self, hf_tokenizer: Any, table: TokenTable):
        self._hf = hf_tokenizer
        self.tokens = table.tokens
        self.eos_token_id = table.eos_token_id
        self.bos_token_id = getattr(hf_tokenizer, "bos_token_id", None)
        self.special_token_ids = table.special_token_ids

    def __call__(self, text: bytes) -> list[int]:
        from blockgen import wordpiece

        if wordpiece.is_wordpiece(self._hf):
            return wordpiece.encode(self._hf, text.decode("utf-8", "replace"))
        return self._hf.encode(text.decode("utf-8", "replace"), add_special_tokens=False)


_llg_memory: dict[str, Any] = {}


def load_llguidance_tokenizer(hf_tokenizer: Any, use_disk: bool = True):
    """An ``llguidance.LLTokenizer`` for ``hf_tokenizer``, cached in-process and on disk."""
    import llguidance

    key = tokenizer_key(hf_tokenizer)
    if key not in _llg_memory:
        table = token_table(hf_tokenizer, use_disk=use_disk)
        _llg_memory[key] = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Wrapped(hf_tokenizer, table)))
    return _llg_memory[key]
