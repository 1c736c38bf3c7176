"""A BERT (WordPiece) tokenizer read with the ``tokenizers`` library alone, for a fast cold start.

``transformers``' tokenizer classes cost 1.5 s or more to import here; the Rust ``tokenizers``
library that does the work under them loads in milliseconds. :class:`WordPieceTokenizer` wraps a
``tokenizers.Tokenizer`` with the part of the ``transformers`` fast-tokenizer interface that
blockgen uses (special tokens and their ids, ``get_vocab``, ``add_tokens``, calling it on a
prompt, ``backend_tokenizer`` for :mod:`blockgen.wordpiece` and the grammar engine), so the
default model (:func:`blockgen.minilm.load_default`) and the reranker run without
``transformers``. It reads a model directory's ``tokenizer.json`` and, for the names of the
special tokens, ``special_tokens_map.json`` (BERT's names when absent).

:class:`blockgen.local_tokenizer.LocalTokenizer` is the other ``tokenizers``-only tokenizer: it
serves the grammar engine alone, defers reading its file and keys blockgen's caches by the file's
hash. This one is read at once and changed after loading (the default model adds its operator
tokens), so the caches key it by its vocabulary, as they key a ``transformers`` tokenizer: both
give the same key (tested).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence, Union

__all__ = ["WordPieceTokenizer"]

#: BERT's special tokens, used when a directory has no ``special_tokens_map.json``.
BERT_SPECIAL = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]",
                "mask_token": "[MASK]"}
_ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


class Encoded(dict):
    """``input_ids`` and ``attention_mask`` of one text, as items and as attributes."""

    __getattr__ = dict.__getitem__


class WordPieceTokenizer:
    """A fast tokenizer (``tokenizers.Tokenizer``) with BERT's special tokens.

    ``backend``: the ``tokenizers.Tokenizer``; ``special``: role -> token text
    (``cls_token``, ``sep_token``, ``pad_token``, ``unk_token``, ``mask_token``, optionally
    ``bos_token``, ``eos_token``). Each role is an attribute (``tok.sep_token``, settable) with
    its id (``tok.sep_token_id``).
    """

    is_fast = True

    def __init__(self, backend: Any, special: Optional[dict[str, str]] = None):
        self.backend_tokenizer = backend
        roles = dict(BERT_SPECIAL if special is None else special)
        for role in _ROLES:
            setattr(self, role, roles.get(role))

    @classmethod
    def from_dir(cls, path: Union[str, Path]) -> "WordPieceTokenizer":
        """The tokenizer of a model directory (``tokenizer.json``; ``FileNotFoundError`` without one)."""
        from tokenizers import Tokenizer

        p = Path(path)
        file = p / "tokenizer.json"
        if not file.is_file():
            raise FileNotFoundError(f"no tokenizer.json in {p}")
        backend = Tokenizer.from_file(str(file))
        backend.no_padding()
        backend.no_truncation()
        special = dict(BERT_SPECIAL)
        names = p / "special_tokens_map.json"
        if names.is_file():
            for role, value in json.loads(names.read_text(encoding="utf-8")).items():
                text = value.get("content") if isinstance(value, dict) else value
                if role in _ROLES and isinstance(text, str):
                    special[role] = text
        return cls(backend, special)

    # ---------------------------------------------------------------- vocabulary
    def _id(self, token: Optional[str]) -> Optional[int]:
        return None if token is None else self.backend_tokenizer.token_to_id(token)

    cls_token_id = property(lambda self: self._id(self.cls_token))
    sep_token_id = property(lambda self: self._id(self.sep_token))
    pad_token_id = property(lambda self: self._id(self.pad_token))
    unk_token_id = property(lambda self: self._id(self.unk_token))
    mask_token_id = property(lambda self: self._id(self.mask_token))
    bos_token_id = property(lambda self: self._id(self.bos_token))
    eos_token_id = property(lambda self: self._id(self.eos_token))

    @property
    def all_special_ids(self) -> list[int]:
        """The ids of the special tokens (each role once, in the order bos, eos, unk, sep, pad, cls, mask)."""
        ids: list[int] = []
        for role in _ROLES:
            i = self._id(getattr(self, role))
            if i is not None and i not in ids:
                ids.append(i)
        return ids

    @property
    def added_tokens_decoder(self) -> dict[int, Any]:
        """Id -> ``tokenizers.AddedToken`` of the tokens added to the vocabulary (special ones included)."""
        return self.backend_tokenizer.get_added_tokens_decoder()

    def get_vocab(self) -> dict[str, int]:
        return self.backend_tokenizer.get_vocab(with_added_tokens=True)

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)

    def add_tokens(self, tokens: Sequence[Any]) -> int:
        """Add ``tokens`` (texts or ``tokenizers.AddedToken``); returns how many were new."""
        return self.backend_tokenizer.add_tokens(list(tokens))

    def convert_tokens_to_ids(self, tokens: Union[str, Sequence[str]]) -> Any:
        if isinstance(tokens, str):
            return self._id(tokens)
        return [self._id(t) for t in tokens]

    def convert_ids_to_tokens(self, ids: Union[int, Sequence[int]]) -> Any:
        if isinstance(ids, int):
            return self.backend_tokenizer.id_to_token(ids)
        return [self.backend_tokenizer.id_to_token(int(i)) for i in ids]

    # ---------------------------------------------------------------- text
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text`` (with the post-processor's special tokens when ``add_special_tokens``)."""
        return list(self.backend_tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)

    def __call__(self, text: str, add_special_tokens: bool = True) -> Encoded:
        """``input_ids`` and ``attention_mask`` of one text (lists)."""
        if not isinstance(text, str):
            raise TypeError(f"WordPieceTokenizer encodes one text at a time, not {type(text).__name__}")
        ids = self.encode(text, add_special_tokens=add_special_tokens)
        return Encoded(input_ids=ids, attention_mask=[1] * len(ids))

    def batch(self, texts: Sequence[str], max_length: Optional[int] = None) -> tuple[list[list[int]], list[list[int]]]:
        """``(input_ids, attention_mask)`` of ``texts``, right-padded to the longest and cut at
        ``max_length`` tokens (the special tokens included), as a BERT encoder reads a batch."""
        rows = [e.ids for e in self.backend_tokenizer.encode_batch(list(texts))]
        if max_length is not None:
            rows = [r if len(r) <= max_length else r[: max_length - 1] + r[-1:] for r in rows]
        width = max((len(r) for r in rows), default=0)
        pad = self.pad_token_id or 0
        return ([r + [pad] * (width - len(r)) for r in rows],
                [[1] * len(r) + [0] * (width - len(r)) for r in rows])

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.backend_tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def __repr__(self) -> str:
        return f"WordPieceTokenizer(vocab={len(self)}, cls={self.cls_token!r}, sep={self.sep_token!r})"
