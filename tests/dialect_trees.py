"""Hypothesis strategies shared by the dialect tests: query trees each dialect can express,
and random documents over the same small vocabulary (so that queries match some of them)."""

from __future__ import annotations

from hypothesis import strategies as st

from blockgen.evaluate import Document
from blockgen.query import And, Comparison, Field, Node, Not, Or, Phrase, Term, make_and, make_or

#: Plain lower-case words: no operator, no Ovid keyword, no number.
WORDS = ("heart", "attack", "malaria", "fever", "child", "care", "rapid", "test")
#: Headings with a small hierarchy (child -> parent).
HEADINGS = ("Malaria", "Malaria, Falciparum", "Fever", "Heart Diseases", "Myocardial Infarction")
HIERARCHY = {"Malaria, Falciparum": "Malaria", "Myocardial Infarction": "Heart Diseases"}

word = st.sampled_from(WORDS)
words = st.lists(word, min_size=2, max_size=3).map(" ".join)
truncated = st.sampled_from(["hear*", "mal*", "chil*", "tes*", "fev*"])


def trees(leaf: st.SearchStrategy[Node], max_leaves: int = 7) -> st.SearchStrategy[Node]:
    """Trees of ``leaf`` joined by OR, AND and NOT, built flat (``make_or``/``make_and``)."""
    return st.recursive(
        leaf,
        lambda kids: st.one_of(
            st.lists(kids, min_size=2, max_size=3).map(make_or),
            st.lists(kids, min_size=2, max_size=3).map(make_and),
            st.builds(Not, kids, kids),
        ),
        max_leaves=max_leaves,
    )


def _tagged(text: st.SearchStrategy[str], cls, tags) -> st.SearchStrategy[Node]:
    return st.builds(cls, text, st.sampled_from(tags))


def proximity(fields) -> st.SearchStrategy[Node]:
    """Two words within N words of each other, in ``fields`` (``all``: any text field)."""
    return st.builds(lambda w, f, n: Phrase(w, f"{f}:~{n}"), st.lists(word, min_size=2, max_size=2, unique=True).map(" ".join), st.sampled_from(fields), st.integers(0, 3))


def headings(tags=("Mesh", "Mesh:NoExp", "majr", "majr:NoExp")) -> st.SearchStrategy[Node]:
    return st.builds(Phrase, st.sampled_from(HEADINGS), st.sampled_from(tags))


#: Leaves PubMed writes exactly and reads back as the same tree.
PUBMED_LEAVES = st.one_of(
    _tagged(word, Term, (None, "tiab", "ti", "ab", "tw")),
    _tagged(words, Term, (None, "tiab", "ti")),
    _tagged(truncated, Term, (None, "tiab")),
    _tagged(words, Phrase, (None, "tiab", "ti", "ab")),
    proximity(("tiab", "ti")),
    headings(),
)

#: Leaves Lucene writes exactly and reads back as the same tree.
LUCENE_LEAVES = st.one_of(
    _tagged(word, Term, (None, "ti", "ab", "tiab", "tw")),
    _tagged(st.one_of(word, words), Phrase, (None, "ti", "ab", "tiab")),
    proximity(("all", "ti", "ab", "tiab")),
    st.builds(Field, st.just("fieldsOfStudy"), st.sampled_from(["biology", "medicine"]), st.just(True)),
    st.builds(Comparison, st.just("yearPublished"), st.sampled_from([">=", "<=", ">", "<"]), st.sampled_from(["2019", "2021"])),
)

#: Leaves Ovid writes exactly and reads back as the same tree.
OVID_LEAVES = st.one_of(
    _tagged(word, Term, (None, "tiab", "ti", "ab", "tw", "ot", "pt")),
    _tagged(truncated, Term, (None, "tiab", "tw")),
    _tagged(words, Phrase, (None, "tiab", "ti", "tw")),
    proximity(("all", "tiab", "tw", "ti")),
    headings(),
)

#: Every kind of leaf, for semantic checks of what each writer approximates.
ANY_LEAVES = st.one_of(
    PUBMED_LEAVES,
    LUCENE_LEAVES,
    OVID_LEAVES,
    _tagged(st.sampled_from(["behavio?r", "wom?n", "te?t*"]), Term, (None, "tiab")),
    st.builds(lambda w, f, n: Phrase(w, f"{f}:~{n}"), st.lists(word, min_size=3, max_size=3).map(" ".join), st.sampled_from(["tiab", "tw"]), st.integers(0, 2)),
    _tagged(st.sampled_from(["rapid tes*", "heart attac*"]), Phrase, (None, "tiab")),
)


@st.composite
def documents(draw, fields=("ti", "ab", "ot"), max_words: int = 8) -> Document:
    """A document with a few words in each field, some headings and values."""
    texts = {f: " ".join(draw(st.lists(st.sampled_from(WORDS + ("behaviour", "women", "tests", "children")), max_size=max_words))) for f in fields}
    heads = draw(st.dictionaries(st.sampled_from(HEADINGS), st.booleans(), max_size=2))
    values = {"yearPublished": str(draw(st.integers(2015, 2024))), "fieldsOfStudy": draw(st.sampled_from(["biology", "medicine", "physics"]))}
    texts["pt"] = draw(st.sampled_from(["", "Randomized Controlled Trial", "Review"]))
    texts["fieldsOfStudy"] = values["fieldsOfStudy"]
    return Document(texts, heads, values)


__all__ = [
    "ANY_LEAVES", "And", "HEADINGS", "HIERARCHY", "LUCENE_LEAVES", "OVID_LEAVES", "Or", "PUBMED_LEAVES", "WORDS",
    "documents", "headings", "proximity", "trees", "word", "words",
]
