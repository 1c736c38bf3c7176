"""A tokenizer read from a local ``tokenizer.json`` with the ``tokenizers`` library, for a fast cold start.

    from blockgen.constrained import GrammarEngine
    from blockgen.local_tokenizer import LocalTokenizer

    tok = LocalTokenizer("path/to/tokenizer.json", eos_token="<|end_of_text|>")
    engine = GrammarEngine.for_tokenizer(tok)        # no transformers, no torch
    mask = engine.matcher(32).grammar_mask()

A process that only needs blockgen's grammar masks (a server filling masks for a model that
runs elsewhere, a script checking token sequences) need not import ``transformers`` (about
0.9 s) to build a tokenizer object. :class:`LocalTokenizer` offers what blockgen's engine
asks of a Hugging Face fast tokenizer, and reads ``tokenizer.json`` only when a text must be
encoded: with blockgen's on-disk cache warm (the token bytes, keyed here by a hash of the
file), the engine and its first mask need the file's hash only.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

__all__ = ["LocalTokenizer"]


class LocalTokenizer:
    """A fast (Rust) tokenizer from a local ``tokenizer.json``, loaded on first use.

    ``path``: the ``tokenizer.json`` file, or a directory holding one. ``eos_token`` (text,
    e.g. ``"<|end_of_text|>"``) or ``eos_token_id``: the end of a sequence; ``bos_token``
    likewise (optional). Raises ``FileNotFoundError`` for a missing file and ``ValueError``
    for an end token the vocabulary does not have (when the file is read).
    """

    is_fast = True
    #: blockgen's engine may build without reading the file (see :mod:`blockgen.tokens`)
    defers_loading = True

    def __init__(
        self,
        path: Union[str, os.PathLike],
        *,
        eos_token: Optional[str] = None,
        eos_token_id: Optional[int] = None,
        bos_token: Optional[str] = None,
    ):
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        if not p.is_file():
            raise FileNotFoundError(f"no tokenizer.json at {p}")
        if eos_token is None and eos_token_id is None:
            raise ValueError("LocalTokenizer needs the end-of-sequence token: eos_token='...' or eos_token_id=N")
        self.path = p
        self.eos_token = eos_token
        self.bos_token = bos_token
        self._eos_token_id = eos_token_id
        self._backend: Any = None
        self._key: Optional[str] = None

    # ---------------------------------------------------------------- identity
    @property
    def blockgen_cache_key(self) -> str:
        """A hash of the file and the end tokens: the key of blockgen's caches (no parsing)."""
        if self._key is None:
            h = hashlib.sha256(self.path.read_bytes())
            h.update(f"\x00eos={self.eos_token!r}/{self._eos_token_id!r}\x00bos={self.bos_token!r}".encode())
            self._key = "local-" + h.hexdigest()[:24]
        return self._key

    # ---------------------------------------------------------------- the tokenizers object
    @property
    def backend_tokenizer(self) -> Any:
        """The ``tokenizers.Tokenizer`` (read from the file on first use)."""
        if self._backend is None:
            from tokenizers import Tokenizer

            backend = Tokenizer.from_file(str(self.path))
            backend.no_padding()
            backend.no_truncation()
            self._backend = backend
        return self._backend

    def _id_of(self, token: str, what: str) -> int:
        idx = self.backend_tokenizer.token_to_id(token)
        if idx is None:
            raise ValueError(f"{what} {token!r} is not in the vocabulary of {self.path}")
        return idx

    @property
    def eos_token_id(self) -> int:
        if self._eos_token_id is None:
            assert self.eos_token is not None
            self._eos_token_id = self._id_of(self.eos_token, "eos_token")
        return self._eos_token_id

    @property
    def bos_token_id(self) -> Optional[int]:
        return None if self.bos_token is None else self._id_of(self.bos_token, "bos_token")

    @property
    def all_special_ids(self) -> list[int]:
        specials = {i for i, added in self.backend_tokenizer.get_added_tokens_decoder().items() if added.special}
        specials.add(self.eos_token_id)
        if self.bos_token_id is not None:
            specials.add(self.bos_token_id)
        return sorted(specials)

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text`` (special tokens only if the tokenizer's post-processor adds them)."""
        return list(self.backend_tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[Optional[str]]:
        backend = self.backend_tokenizer
        return [backend.id_to_token(int(i)) for i in ids]

    def __repr__(self) -> str:
        return f"LocalTokenizer({str(self.path)!r}, eos_token={self.eos_token!r})"
