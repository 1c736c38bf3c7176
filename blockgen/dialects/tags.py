"""Field tags: one table of what a tag is called, what it searches and how each engine spells it.

A leaf of the query tree carries its field as a ``tag`` string, in PubMed's spelling (the
blockgen syntax writes tags as PubMed does: ``acne[tiab]``, ``"Lung"[Mesh:NoExp]``). Three
things are encoded in that string and decoded only here:

* the **field** (``tiab``, ``ti``, ``Mesh`` ...), in one canonical spelling: PubMed's long
  and short spellings (``[Title/Abstract]`` = ``[tiab]``, ``[MeSH Terms]`` = ``[mh]`` =
  ``[Mesh]``) all map to one :data:`CANONICAL` name;
* **MeSH explosion**: ``Mesh`` / ``majr`` are exploded (the heading and every heading below
  it), ``Mesh:NoExp`` / ``majr:NoExp`` are not;
* **proximity**: ``tiab:~3`` (PubMed, since 2022) on a leaf of several words means "these
  words, in any order, with at most 3 other words between them, in one field of ``tiab``".

:func:`parse_tag` decodes a tag, :func:`tag_text` encodes one; :func:`canonical` gives the
canonical spelling of any spelling. The evaluator (:mod:`blockgen.evaluate`) and every dialect
read the table from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = [
    "CANONICAL", "DATE_TAGS", "HEADING_TAGS", "OVID_SUFFIX", "Tag", "TEXT_FIELDS", "canonical",
    "fields_of", "parse_tag", "tag_text",
]

#: Every spelling (lower case, single spaces) -> the canonical tag.
CANONICAL: dict[str, str] = {}


def _spell(tag: str, *spellings: str) -> None:
    for s in (tag.lower(), *spellings):
        CANONICAL[s] = tag


_spell("tiab", "title/abstract", "title abstract")
_spell("ti", "title")
_spell("ab", "abstract")
_spell("tw", "text word", "text words", "textword")
_spell("all", "all fields", "all field")
_spell("Mesh", "mh", "mesh terms", "mesh term", "mesh heading", "mesh headings")
_spell("Mesh:NoExp", "mh:noexp", "mesh terms:noexp", "mesh term:noexp", "mesh:no exp", "mh:no exp", "mesh terms: noexp")
_spell("majr", "mesh major topic")
_spell("majr:NoExp", "mesh major topic:noexp", "majr: noexp")
_spell("sh", "subheading", "mesh subheading")
_spell("pt", "publication type", "ptyp")
_spell("nm", "supplementary concept", "substance name", "supplementary concept name")
_spell("ot", "other term", "other terms")
_spell("la", "language", "lang")
_spell("au", "author", "auth")
_spell("ta", "journal", "jour")
_spell("rn", "ec/rn number")
_spell("ad", "affiliation", "affl")
_spell("sb", "subset")
_spell("dp", "publication date", "date - publication", "pdat", "date of publication")
_spell("edat", "entrez date", "date - entrez", "entrez")
_spell("crdt", "create date", "date - create")
_spell("mhda", "mesh date", "date - mesh")
_spell("lr", "date - last modified", "last revision date")
_spell("dcom", "date - completion", "completion date")

#: Tags that match a subject heading by its name (not words of the text).
HEADING_TAGS = frozenset({"Mesh", "Mesh:NoExp", "majr", "majr:NoExp"})
#: Tags whose values are dates (a range ``2010:2020[dp]`` compares them).
DATE_TAGS = frozenset({"dp", "edat", "crdt", "mhda", "lr", "dcom"})

#: The text fields of a document in :mod:`blockgen.evaluate`: title, abstract, other terms
#: (author keywords). An untagged term searches all text fields of a document.
TEXT_FIELDS = ("ti", "ab", "ot")
_TEXT_TAG_FIELDS: dict[str, tuple[str, ...]] = {
    "tiab": ("ti", "ab"),
    "ti": ("ti",),
    "ab": ("ab",),
    "tw": ("ti", "ab", "ot"),
    "ot": ("ot",),
}

#: Canonical tag -> Ovid field suffix (``malaria.ti,ab.``). Headings are written ``exp X/``.
OVID_SUFFIX: dict[str, str] = {
    "tiab": "ti,ab", "ti": "ti", "ab": "ab", "tw": "tw", "pt": "pt", "au": "au", "nm": "nm",
    "ot": "ot", "sh": "fs", "ta": "jn", "la": "lg", "rn": "rn", "ad": "in", "all": "af",
}


@dataclass(frozen=True)
class Tag:
    """A decoded tag: the canonical ``field`` (None: untagged) and the ``proximity`` (the most
    words allowed between the leaf's words), if any."""

    field: Optional[str] = None
    proximity: Optional[int] = None

    @property
    def known(self) -> bool:
        """Whether the field is one of PubMed's tags (any spelling in :data:`CANONICAL`), or none."""
        return self.field is None or self.field in CANONICAL.values()

    @property
    def heading(self) -> bool:
        """Whether the tag matches a subject heading by name (``Mesh``, ``majr`` ...)."""
        return self.field in HEADING_TAGS

    @property
    def exploded(self) -> bool:
        """Whether a heading tag includes the headings below it."""
        return self.field in ("Mesh", "majr")

    @property
    def major(self) -> bool:
        """Whether a heading tag asks for the heading as a major topic."""
        return self.field in ("majr", "majr:NoExp")


def _squeeze(text: str) -> str:
    return " ".join(text.split())


def canonical(tag: Optional[str]) -> Optional[str]:
    """The canonical spelling of ``tag`` (``"Title/Abstract"`` -> ``"tiab"``,
    ``"tiab:~3"`` stays ``"tiab:~3"``); an unknown tag comes back squeezed, as written."""
    if tag is None:
        return None
    decoded = parse_tag(tag)
    return tag_text(decoded) if decoded.field is None or decoded.field in CANONICAL.values() else _squeeze(tag)


def parse_tag(tag: Optional[str]) -> Tag:
    """Decode a tag string (any spelling) into field and proximity."""
    if tag is None:
        return Tag()
    text = _squeeze(tag)
    proximity: Optional[int] = None
    base, sep, rest = text.rpartition(":~")
    if sep and rest.strip().isdigit():
        text, proximity = base.strip(), int(rest.strip())
    low = " ".join(text.lower().replace(" :", ":").replace(": ", ":").split())
    field = CANONICAL.get(low, text) if text else None
    return Tag(field, proximity)


def tag_text(tag: Tag) -> Optional[str]:
    """The tag string of a decoded tag (``Tag("tiab", 3)`` -> ``"tiab:~3"``)."""
    if tag.proximity is None:
        return tag.field
    return f"{tag.field or 'all'}:~{tag.proximity}"


def fields_of(tag: Optional[str]) -> Optional[tuple[str, ...]]:
    """The document text fields a (non-heading) tag searches; None means every text field
    (untagged, ``[all]``). An unknown tag searches the field of its own name."""
    field = parse_tag(tag).field
    if field is None or field == "all":
        return None
    return _TEXT_TAG_FIELDS.get(field, (field,))
