"""Sets of Unicode code points as sorted ranges, and what a regex atom matches, asked of the regex engine.

A set is a tuple of inclusive ``(first, last)`` code-point pairs, sorted, disjoint and not
adjacent, so equal sets are equal tuples. Surrogates (U+D800..U+DFFF) are never members:
they cannot occur in UTF-8 text, which is all a grammar engine sees.

:func:`atom_set` answers "which characters does this regex atom match?" (``[^\\W_]``,
``\\p{L}``, ``.``, ``(?i:k)``) by running the regex engine itself (``re`` or the third-party
``regex`` module, whichever the lark parser uses) over every code point, so the answer is
the engine's own, Unicode version and all.
"""

from __future__ import annotations

import bisect
import importlib
from functools import lru_cache
from typing import Iterable, Sequence

Ranges = tuple[tuple[int, int], ...]

MAX_CODE_POINT = 0x10FFFF
SURROGATES: Ranges = ((0xD800, 0xDFFF),)
EMPTY: Ranges = ()


def normalize(pairs: Iterable[tuple[int, int]]) -> Ranges:
    """Sort, merge overlapping and adjacent pairs, and drop surrogates."""
    merged: list[list[int]] = []
    for lo, hi in sorted(p for p in pairs if p[0] <= p[1]):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return _drop_surrogates(tuple((lo, hi) for lo, hi in merged))


def _drop_surrogates(ranges: Ranges) -> Ranges:
    out = []
    for lo, hi in ranges:
        if hi < 0xD800 or lo > 0xDFFF:
            out.append((lo, hi))
            continue
        if lo < 0xD800:
            out.append((lo, 0xD7FF))
        if hi > 0xDFFF:
            out.append((0xE000, hi))
    return tuple(out)


def of_chars(chars: str) -> Ranges:
    """The set of the characters in ``chars``."""
    return normalize((ord(c), ord(c)) for c in chars)


ALL: Ranges = normalize([(0, MAX_CODE_POINT)])


def union(*sets: Ranges) -> Ranges:
    return normalize(p for s in sets for p in s)


def intersect(a: Ranges, b: Ranges) -> Ranges:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def complement(a: Ranges) -> Ranges:
    """Every code point (surrogates excepted) not in ``a``."""
    out, start = [], 0
    for lo, hi in a:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE_POINT:
        out.append((start, MAX_CODE_POINT))
    return normalize(out)


def subtract(a: Ranges, b: Ranges) -> Ranges:
    return intersect(a, complement(b))


def is_subset(a: Ranges, b: Ranges) -> bool:
    return intersect(a, b) == a


def size(a: Ranges) -> int:
    """How many code points ``a`` holds."""
    return sum(hi - lo + 1 for lo, hi in a)


def partition(labels: Sequence[Ranges]) -> list[tuple[Ranges, frozenset[int]]]:
    """Split the union of ``labels`` into pieces whose members lie in the same labels.

    Returns ``(piece, indices of the labels holding it)`` for every non-empty piece.
    """
    points = sorted({p for ranges in labels for lo, hi in ranges for p in (lo, hi + 1)})
    if not points:
        return []
    members: list[set[int]] = [set() for _ in points]
    for index, ranges in enumerate(labels):
        for lo, hi in ranges:
            for k in range(bisect.bisect_left(points, lo), bisect.bisect_left(points, hi + 1)):
                members[k].add(index)
    pieces: dict[frozenset[int], list[tuple[int, int]]] = {}
    for k in range(len(points) - 1):
        if members[k]:
            pieces.setdefault(frozenset(members[k]), []).append((points[k], points[k + 1] - 1))
    return [(normalize(pairs), key) for key, pairs in pieces.items()]


# --------------------------------------------------------------------------- the regex engine's view
@lru_cache(maxsize=1)
def _every_code_point() -> str:
    # Index i holds chr(i), so a match's span is a range of code points.
    return "".join(map(chr, range(MAX_CODE_POINT + 1)))


@lru_cache(maxsize=None)
def atom_set(atom: str, engine: str = "re", flags: int = 0, inline_flags: str = "") -> Ranges:
    """The code points the one-character regex ``atom`` matches, according to ``engine``.

    ``engine`` is ``"re"`` or ``"regex"``; ``flags`` are compile flags of that engine and
    ``inline_flags`` scoped flags such as ``"i"`` (from a ``(?i:...)`` group).
    Raises ``ValueError`` if the engine rejects the atom.
    """
    if len(atom) == 1 and not inline_flags and not flags and atom not in ".^$|?*+()[]{}\\":
        return of_chars(atom)
    module = importlib.import_module(engine)
    body = f"(?{inline_flags}:{atom})" if inline_flags else atom
    try:
        compiled = module.compile(f"(?:{body})+", flags)
    except Exception as err:  # re.error, regex.error
        raise ValueError(f"the regex engine {engine!r} rejects {atom!r}: {err}") from None
    return normalize((m.start(), m.end() - 1) for m in compiled.finditer(_every_code_point()))
