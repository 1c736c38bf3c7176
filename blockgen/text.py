"""The one place where query text is normalised before it is read.

Every reader of Boolean block queries (:func:`blockgen.parser.parse`, :func:`blockgen.repair.repair`,
:func:`blockgen.repair.shortest_completion`) first puts the text in Unicode normal form C
(:func:`normalise`), so ``"cafe\\u0301"`` (``e`` + a combining acute) and ``"café"`` are the
same word, and a letter with an accent is one code point wherever Unicode has one.
Positions in errors and edits refer to the normalised text (NFC changes them only where it
composes characters).

A lone surrogate (U+D800..U+DFFF, e.g. from ``"\\ud800"`` or a file read with
``errors="surrogateescape"``) is no character: a text holding one cannot be encoded as UTF-8,
so no query may hold one. :func:`lone_surrogates` finds them; the parser rejects them with a
clear error and repair drops them with an edit.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["lone_surrogates", "normalise"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def normalise(text: str) -> str:
    """``text`` in Unicode normal form C (canonical composition); linear time."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", text)


def lone_surrogates(text: str) -> list[int]:
    """The positions of the lone surrogates in ``text`` (empty for text that can be encoded)."""
    if text.isascii():
        return []
    return [m.start() for m in _SURROGATE.finditer(text)]
