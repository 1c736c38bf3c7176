"""The decoding core: a per-sequence constrained decoder, for any model and any sampler.

Two guarantees at once, for every token budget ``max_new_tokens >= MIN_BUDGET``:

* every prefix stays *viable* (llguidance's grammar mask, from ``grammar/boolean_block.lark``);
* every prefix can still be *finished within the tokens left* (budget-aware closing): what a
  prefix still needs (:class:`blockgen.need.Need`: missing UTF-8 bytes, the rest of an
  operator, terms, closing brackets and quotes) never exceeds the budget that remains.

The rule, at each step with ``r`` tokens left (this one included) and a need of ``N`` tokens:
a token is allowed when the grammar allows it and the need after it fits in ``r - 1``. When
``N == r`` the step *finishes* the query instead: a missing byte, the rest of an operator, a
content token (a whole word) for a missing term, or the next closer (forced, as the tokenizer
encodes it). By induction the output parses whenever the budget is at least one token (the
empty prefix needs one term).

Classes:

* :class:`GrammarEngine`: one tokenizer with the grammar (llguidance tokenizer and grammar,
  token bytes and classes, forced text); cached per tokenizer, cheap to share.
* :class:`BudgetedMatcher`: one sequence: the grammar matcher, the text so far (as a
  :class:`blockgen.need.Prefix`), the need, the forced tokens. ``allowed(scores)`` is the
  allowed-token mask for the remaining budget; ``preview(token)`` checks one token;
  ``advance(token)`` writes it. Model-agnostic: it sees token ids and (optionally) scores.
* :class:`BatchMasks`: the grammar masks of many matchers, filled in parallel by llguidance
  (``LLExecutor``), optionally in a background thread while the model's forward pass runs.

With ``no_repeats`` a matcher also refuses a token that completes a term already in the
query (see :mod:`blockgen.repeats`); the budget rule wins when both cannot hold.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from blockgen.need import CONTENT, Need, Prefix, need_of  # noqa: F401  (need_of re-exported)

#: The smallest ``max_new_tokens`` for which constrained output always parses.
MIN_BUDGET = 1
#: Candidates checked exactly (highest scores first) where the per-token bound cannot vouch for them.
VERIFY_TOP_K = 4
#: Such candidates scoring this far (in logits) below the best token are not checked
#: (e^-20: their share of the probability is below 2e-9 each).
VERIFY_MARGIN = 20.0
#: The same when closing what is open would complete a repeated term (``no_repeats``).
VERIFY_AT_RISK = 32
#: Content tokens tried before giving up on finishing a term (a bug if reached).
FINISH_TRIES = 4096


# --------------------------------------------------------------------------- token classes
@dataclass
class TokenClasses:
    """Per-token facts over a vocabulary, computed once per tokenizer (numpy arrays).

    ``content``: tokens that are a whole word of the grammar, optionally after one blank;
    ``single_byte``: tokens of exactly one byte (to finish a cut UTF-8 character);
    ``bound``: an upper bound of how much the token can raise a prefix's need (in tokens),
    from its characters: word characters, blanks and characters that only continue a word
    (the wildcards) 0, a cut character its missing bytes,
    any other character ``1 + k`` (it may open a group, phrase or tag, or start an
    operator, and then need a term), ``k`` being the most tokens one closer or the rest of
    an operator takes, except an operator's letter inside a word begun earlier in the token
    (0: no operator starts there); a token of word characters (operator letters included) and blanks at
    most ``1 + k`` (it can leave at most one operator open). Used to allow whole slices of
    the vocabulary without checking each.
    """

    content: np.ndarray
    single_byte: np.ndarray
    bound: np.ndarray


_classes_memory: dict[str, TokenClasses] = {}


def token_classes(tokens: Sequence[bytes], use_disk: bool = True, k: int = 1) -> TokenClasses:
    """The :class:`TokenClasses` of a vocabulary given as the bytes of every token id.

    Cached in memory and on disk (next to the token cache of :mod:`blockgen.tokens`),
    keyed by the vocabulary, the grammar text and ``k``.
    """
    from blockgen.grammar import grammar_text
    from blockgen.tokens import cache_dir

    digest = hashlib.sha256(b"\x00".join(tokens) + grammar_text().encode() + f"k={k}v5".encode()).hexdigest()[:24]
    if digest in _classes_memory:
        return _classes_memory[digest]
    path = cache_dir() / f"classes-{digest}.npz"
    n = len(tokens)
    if use_disk and path.is_file():
        try:
            data = np.load(path)
            classes = TokenClasses(
                content=np.unpackbits(data["content"])[:n].astype(bool),
                single_byte=np.unpackbits(data["single_byte"])[:n].astype(bool),
                bound=data["bound"].astype(np.int32),
            )
            if len(classes.bound) == n:
                _classes_memory[digest] = classes
                return classes
        except Exception:  # a corrupt cache is rebuilt
            pass
    classes = _compute_classes(tokens, k)
    if use_disk:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.stem + ".tmp.npz")
            np.savez(tmp, content=np.packbits(classes.content), single_byte=np.packbits(classes.single_byte), bound=classes.bound.astype(np.uint16))
            tmp.replace(path)
        except OSError:
            pass
    _classes_memory[digest] = classes
    return classes


def _compute_classes(tokens: Sequence[bytes], k: int) -> TokenClasses:
    from blockgen.grammar import terminal_regex
    from blockgen.need import _grammar, literal_terminals

    word = terminal_regex(CONTENT)
    operator_letters = _literal_word_chars()
    literals = literal_terminals().values()
    starters = _grammar().partial.values()
    probe = next(c for c in "abcdefghijklmnopqrstuvwxyz0123456789" if word.fullmatch(c) and c not in operator_letters)
    raise_by = 1 + k
    content = np.zeros(len(tokens), dtype=bool)
    single = np.zeros(len(tokens), dtype=bool)
    bound = np.zeros(len(tokens), dtype=np.int32)

    @lru_cache(maxsize=None)
    def char_bound(ch: str) -> int:
        if ch.isspace():
            return 0
        if ch in operator_letters:
            return raise_by
        if word.fullmatch(ch):
            return 0
        if word.fullmatch(probe + ch) and not any(v.startswith(ch) for v in literals) and not any(rx.fullmatch(ch, partial=True) for rx in starters):
            return 0  # it only ever continues a word and keeps it whole (the wildcards * and ?)
        return raise_by

    @lru_cache(maxsize=None)
    def continues_word(ch: str) -> bool:
        """Whether a letter after ``ch`` is in the same word (so it cannot start an operator)."""
        return bool(word.fullmatch(ch) or word.fullmatch(probe + ch) or word.fullmatch(probe + ch + probe))

    def raise_of(text: str) -> int:
        total = 0
        for j, ch in enumerate(text):
            if ch in operator_letters and j > 0 and continues_word(text[j - 1]):
                continue  # inside a word that began earlier in the token: no operator starts here
            total += char_bound(ch)
        return total

    for i, raw in enumerate(tokens):
        if len(raw) == 1:
            single[i] = True
        text, lead, missing = _decode_token(raw)
        raised = raise_of(text)
        if raised > raise_by and not (lead or missing) and all(char_bound(c) == 0 or c in operator_letters for c in text):
            # words, operators and blanks only: at most one operator is left open at the end
            # (its rest, at most k tokens, then a term); two operators in a row do not parse
            raised = raise_by
        bound[i] = (raise_by if lead else 0) + missing + raised
        if lead or missing:
            continue
        body = text[1:] if text.startswith(" ") else text
        if body and word.fullmatch(body):
            content[i] = True
    return TokenClasses(content=content, single_byte=single, bound=bound)


def _decode_token(raw: bytes) -> tuple[str, int, int]:
    """``(text, leading continuation bytes, bytes missing from a cut last character)``."""
    lead = 0
    while lead < len(raw) and raw[lead] & 0xC0 == 0x80:
        lead += 1
    body = raw[lead:]
    for cut in range(0, min(4, len(body) + 1)):
        try:
            text = body[: len(body) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if cut == 0:
            return text, lead, 0
        first = body[len(body) - cut]
        width = 2 if first >> 5 == 0b110 else 3 if first >> 4 == 0b1110 else 4 if first >> 3 == 0b11110 else 0
        if width > cut:
            return text, lead, width - cut
    # not UTF-8 at all: every byte may be anything
    return "", lead + len(body), 0


@lru_cache(maxsize=1)
def _literal_word_chars() -> frozenset:
    """Characters of the grammar's literal terminals that are also word characters (AND, OR, NOT)."""
    from blockgen.grammar import terminal_regex
    from blockgen.need import literal_terminals

    word = terminal_regex(CONTENT)
    return frozenset(c for value in literal_terminals().values() for c in value if word.fullmatch(c))


def bits_to_bool(bitmask: np.ndarray, vocab: int) -> np.ndarray:
    """An llguidance bitmask ``(rows, words)`` as a boolean array ``(rows, vocab)``."""
    return np.unpackbits(bitmask.view(np.uint8), axis=1, bitorder="little")[:, :vocab].view(np.bool_)


def bool_to_bits(allowed: np.ndarray, words: int) -> np.ndarray:
    """A boolean array ``(rows, n)`` as packed uint32 words ``(rows, words)`` in llguidance's layout
    (token ``32 * w + b`` is bit ``b`` of word ``w``); tokens beyond ``n`` are 0."""
    allowed = np.atleast_2d(allowed)
    out = np.zeros((allowed.shape[0], words * 4), dtype=np.uint8)
    packed = np.packbits(allowed[:, : words * 32], axis=1, bitorder="little")
    out[:, : packed.shape[1]] = packed
    return out.view(np.uint32)


# --------------------------------------------------------------------------- the engine
class GrammarEngine:
    """The grammar and one tokenizer: everything :class:`BudgetedMatcher` needs, built once.

    ``GrammarEngine.for_tokenizer(hf_tokenizer)`` caches it per tokenizer (by vocabulary
    hash). Its token bytes and llguidance tokenizer come from :mod:`blockgen.tokens`
    (cached on disk), forced text is encoded by :func:`blockgen.tokens.encode_text`.
    """

    _memory: dict[str, "GrammarEngine"] = {}

    def __init__(self, hf_tokenizer: Any):
        import llguidance

        from blockgen.grammar import grammar_text
        from blockgen.need import warm_up
        from blockgen.tokens import load_llguidance_tokenizer, token_table

        warm_up()  # lark's parser builds while llguidance builds its tokenizer (which drops the GIL)
        table = token_table(hf_tokenizer)
        self.hf_tokenizer = hf_tokenizer
        self.tokens: list[bytes] = table.tokens
        self.vocab_size = len(table.tokens)
        self.eos_token_id: int = table.eos_token_id
        self.special_ids = frozenset(table.special_token_ids)
        self.llg_tokenizer = load_llguidance_tokenizer(hf_tokenizer)
        self.grammar = llguidance.grammar_from("lark", grammar_text())
        self._prototype = llguidance.LLMatcher(self.llg_tokenizer, self.grammar, log_level=0)
        if self._prototype.is_error():  # pragma: no cover - the grammar file is tested
            raise RuntimeError(f"llguidance rejected the grammar: {self._prototype.get_error()}")
        self._encoded: dict[str, tuple[int, ...]] = {}
        self._classes: Optional[TokenClasses] = None
        self._bound_bits: Optional[np.ndarray] = None
        self._executors: dict[int, Any] = {}

    @classmethod
    def for_tokenizer(cls, hf_tokenizer: Any) -> "GrammarEngine":
        """The engine of ``hf_tokenizer`` (built on first use, then shared)."""
        from blockgen.tokens import tokenizer_key

        key = tokenizer_key(hf_tokenizer)
        engine = cls._memory.get(key)
        if engine is None:
            engine = cls._memory[key] = cls(hf_tokenizer)
        return engine

    # ---------------------------------------------------------------- facts
    def encode(self, text: str) -> tuple[int, ...]:
        """The tokens blockgen forces to write ``text`` (closers, the rest of an operator)."""
        ids = self._encoded.get(text)
        if ids is None:
            from blockgen.tokens import encode_text

            ids = self._encoded[text] = tuple(encode_text(self.hf_tokenizer, text))
        return ids

    def need_tokens(self, need: Need) -> int:
        """How many tokens finish a prefix with this need."""
        return need.tokens(self.encode)

    @property
    def classes(self) -> TokenClasses:
        """The vocabulary's :class:`TokenClasses` (computed on first use, cached on disk)."""
        if self._classes is None:
            self._classes = token_classes(self.tokens, k=self._forced_width())
        return self._classes

    def _forced_width(self) -> int:
        """The most tokens one closing character or the rest of an operator takes."""
        import string

        from blockgen.need import literal_terminals

        texts = set(string.punctuation)
        for value in literal_terminals().values():
            texts.update(value[i:] for i in range(1, len(value)))
        widths = []
        for text in texts:
            try:
                widths.append(len(self.encode(text)))
            except ValueError:  # the vocabulary cannot write it: never forced
                pass
        return max(widths, default=1)

    @property
    def bound_bits(self) -> np.ndarray:
        """``bound_bits[s]``: the tokens whose need bound (:class:`TokenClasses`) is at most ``s``, packed
        like llguidance's masks; a slack beyond the last row allows every token (use ``min(s, len - 1)``)."""
        if self._bound_bits is None:
            bound = self.classes.bound
            top = int(bound.max()) if len(bound) else 0
            words = (self.llg_tokenizer.vocab_size + 31) // 32
            self._bound_bits = bool_to_bits(bound[None, :] <= np.arange(top + 1)[:, None], words)
        return self._bound_bits

    def new_matcher(self):
        """A fresh llguidance matcher (a copy of a compiled prototype: about 2 µs)."""
        return self._prototype.deep_copy()

    def executor(self, threads: int = 1):
        """The llguidance thread pool filling masks in parallel."""
        import llguidance

        ex = self._executors.get(threads)
        if ex is None:
            ex = self._executors[threads] = llguidance.LLExecutor(threads)
        return ex

    def allocate_bitmask(self, rows: int) -> np.ndarray:
        import llguidance.numpy

        return llguidance.numpy.allocate_token_bitmask(rows, self.llg_tokenizer.vocab_size)

    def matcher(self, max_new_tokens: int, *, no_repeats: bool = False, eos_ids: Iterable[int] = ()) -> "BudgetedMatcher":
        """A :class:`BudgetedMatcher` for one sequence of at most ``max_new_tokens`` tokens."""
        return BudgetedMatcher(self, max_new_tokens, no_repeats=no_repeats, eos_ids=eos_ids)


# --------------------------------------------------------------------------- one sequence
@lru_cache(maxsize=65536)
def _repeat_count(leaves: tuple) -> int:
    from blockgen.repeats import source_key

    keys = [source_key(text) for text in leaves]
    return len(keys) - len(set(keys))


class BudgetedMatcher:
    """The constrained decoder of one sequence (see the module docstring).

    Attributes: ``prefix`` (:class:`blockgen.need.Prefix`: text and need so far), ``tokens``
    (ids written, EOS excluded), ``done`` (EOS written), ``steered`` (the budget or the
    repeat rule changed a choice), ``forced_repeat`` (the budget forced a repeated term).
    """

    def __init__(self, engine: GrammarEngine, max_new_tokens: int, *, no_repeats: bool = False, eos_ids: Iterable[int] = ()):
        if not isinstance(max_new_tokens, int) or max_new_tokens < MIN_BUDGET:
            raise ValueError(f"max_new_tokens must be at least {MIN_BUDGET}, not {max_new_tokens!r}")
        self.engine = engine
        self.budget = max_new_tokens
        self.no_repeats = no_repeats
        self.eos_ids = frozenset({engine.eos_token_id, *eos_ids})
        self.prefix = Prefix.empty()
        self.tokens: list[int] = []
        self.done = False
        self.steered = False
        self.forced_repeat = False
        self._llm = engine.new_matcher()
        self._forced: list[int] = []
        self._bitmask: Optional[np.ndarray] = None

    def copy(self) -> "BudgetedMatcher":
        """An independent copy (a beam forking in two)."""
        twin = object.__new__(BudgetedMatcher)
        twin.__dict__.update(self.__dict__)
        twin._llm = self._llm.deep_copy()
        twin.tokens = list(self.tokens)
        twin._forced = list(self._forced)
        twin._bitmask = None
        return twin

    # ---------------------------------------------------------------- state
    @property
    def remaining(self) -> int:
        """Tokens still allowed (this step included); EOS counts as a token."""
        return self.budget - len(self.tokens) - (1 if self.done else 0)

    @property
    def need(self) -> Need:
        return self.prefix.need

    @property
    def need_tokens(self) -> int:
        return self.engine.need_tokens(self.prefix.need)

    @property
    def text(self) -> bytes:
        """The bytes written so far (from the token bytes, never ``tokenizer.decode``)."""
        return self.prefix.text

    @property
    def finishing(self) -> bool:
        """This step must finish the query (the need takes every token left), or is forced."""
        return bool(self._forced) or self.need_tokens >= self.remaining

    @property
    def llg_matcher(self):
        """The underlying llguidance matcher (for :class:`BatchMasks`)."""
        return self._llm

    # ---------------------------------------------------------------- checks
    def preview(self, token: int, *, repeats: bool = True) -> Optional[Prefix]:
        """The prefix after ``token`` if the budget rule (and, with ``repeats``, the repeat rule) allows it.

        A token the grammar refuses (llguidance's matcher says so, about 1 µs) gives ``None``.
        EOS gives the current prefix when the query is complete.
        """
        if self.done or self.remaining < 1:
            return None
        # llguidance has the last word on the grammar (e.g. which characters a cut UTF-8 byte may start)
        if token in self.eos_ids:
            if not self.prefix.complete or not self._llm.validate_tokens([self.engine.eos_token_id]):
                return None
        elif not (0 <= token < self.engine.vocab_size) or not self._llm.validate_tokens([token]):
            return None
        if self._forced:
            return self.prefix.extend(self.engine.tokens[token]) if token == self._forced[0] else None
        if token in self.eos_ids:
            if repeats and self.no_repeats and self._repeat_at_end():
                return None
            return self.prefix
        if token in self.engine.special_ids or not (0 <= token < self.engine.vocab_size):
            return None
        new = self.prefix.extend(self.engine.tokens[token])
        if new is None:
            return None
        if self.engine.need_tokens(new.need) > self.remaining - 1:
            # a finishing step may always take its planned token (the plan was counted whole)
            if not self.finishing or self.finish_plan()[0] != token:
                return None
            return new
        if repeats and self.no_repeats and _repeat_count(new.leaves) > _repeat_count(self.prefix.leaves):
            return None
        return new

    def grammar_allows(self, token: int) -> bool:
        """Whether the grammar (llguidance) allows ``token`` now, budget aside."""
        if token in self.eos_ids:
            return bool(self._llm.validate_tokens([self.engine.eos_token_id]))
        return 0 <= token < self.engine.vocab_size and bool(self._llm.validate_tokens([token]))

    def _repeat_at_end(self) -> bool:
        if not self.prefix.leaves:
            return False
        leaves = self.prefix.leaves_at_end()
        return leaves is not None and _repeat_count(leaves) > _repeat_count(self.prefix.leaves)

    def at_risk(self) -> bool:
        """With ``no_repeats``: closing what is open now would complete a repeated term."""
        if not self.no_repeats or self.done or not self.prefix.leaves:
            return False  # ending adds at most one leaf (the open term): a repeat needs an earlier leaf
        need = self.prefix.need
        if need.terms or need.head or need.open_bytes:
            return False
        closed = self.prefix.extend(need.closers.encode()) if need.closers else self.prefix
        leaves = None if closed is None else closed.leaves_at_end()
        return leaves is not None and _repeat_count(leaves) > _repeat_count(self.prefix.leaves)

    # ---------------------------------------------------------------- finishing
    def finish_plan(self) -> tuple[Optional[int], Optional[np.ndarray]]:
        """How this step finishes the query: ``(forced token, None)`` or ``(None, class mask)``.

        The class mask is the content tokens (a term is missing) or the single-byte tokens
        (a UTF-8 character is cut); the caller picks one the grammar allows and
        :meth:`preview` accepts (``repeats=False``).
        """
        if self._forced:
            return self._forced[0], None
        need = self.prefix.need
        if need.complete:
            return min(self.eos_ids), None
        if need.head and not need.open_bytes:
            return self.engine.encode(need.head)[0], None
        if need.open_bytes:
            return None, self.engine.classes.single_byte
        if need.terms:
            return None, self.engine.classes.content
        return self.engine.encode(need.closers)[0], None

    # ---------------------------------------------------------------- masks
    def grammar_mask(self) -> np.ndarray:
        """The grammar's allowed tokens now (llguidance), as booleans over the vocabulary."""
        import llguidance.numpy

        if self._bitmask is None:
            self._bitmask = self.engine.allocate_bitmask(1)
        llguidance.numpy.fill_next_token_bitmask(self._llm, self._bitmask, 0)
        return self._with_eos(bits_to_bool(self._bitmask, self.engine.vocab_size)[0])

    def _with_eos(self, grammar: np.ndarray) -> np.ndarray:
        eos = self.engine.eos_token_id
        extra = [e for e in self.eos_ids if e != eos and 0 <= e < len(grammar)]
        if extra and eos < len(grammar):
            grammar = grammar.copy()
            grammar[extra] = grammar[eos]
        return grammar

    def allowed(self, scores: Optional[np.ndarray] = None, grammar: Optional[np.ndarray] = None) -> np.ndarray:
        """The allowed tokens for the remaining budget, as booleans over the vocabulary.

        ``grammar``: the grammar mask if already computed (e.g. by :class:`BatchMasks`);
        ``scores``: the model's scores for this step, used only to choose which tokens to
        check one by one (the highest first) where the cheap per-token bound cannot vouch
        for them. Every allowed token keeps the query finishable in the tokens left.
        """
        vocab = self.engine.vocab_size
        out = np.zeros(vocab, dtype=bool)
        if self.done or self.remaining < 1:
            return out
        if grammar is None:
            grammar = self.grammar_mask()
        else:
            grammar = self._with_eos(grammar[:vocab])
        order = _Order(scores, vocab)
        if self.finishing:
            return self._finish_allowed(grammar, order)
        slack = self.remaining - 1 - self.need_tokens
        eos = [e for e in self.eos_ids if 0 <= e < vocab]
        if self.no_repeats and self.at_risk():
            safe = np.zeros(vocab, dtype=bool)
            checks = VERIFY_AT_RISK
        else:
            safe = grammar & (self.engine.classes.bound <= slack)
            safe[eos] = False  # EOS is checked below
            checks = VERIFY_TOP_K
        out |= safe
        floor = order.floor(VERIFY_MARGIN) if checks == VERIFY_TOP_K else None
        for tok in self._ranked(grammar & ~safe, order, checks):
            if floor is not None and order.score(int(tok)) < floor:
                break
            if self.preview(int(tok)) is not None:
                out[tok] = True
        for e in eos:
            if grammar[e] and self.preview(e) is not None:
                out[e] = True
        if not out.any():
            # nothing the scores favour fits (or avoids a repeat): take the budget's own way out
            out = self._finish_allowed(grammar, order) if self.finishing else self._any_fitting(grammar, order)
        return out

    def _any_fitting(self, grammar: np.ndarray, order: "_Order") -> np.ndarray:
        out = np.zeros(self.engine.vocab_size, dtype=bool)
        for tok in self._ranked(grammar, order, FINISH_TRIES):
            if self.preview(int(tok), repeats=False) is not None:
                out[tok] = True
                return out
        return self._finish_allowed(grammar, order)

    def _finish_allowed(self, grammar: np.ndarray, order: "_Order") -> np.ndarray:
        out = np.zeros(self.engine.vocab_size, dtype=bool)
        token, cls = self.finish_plan()
        if token is not None:
            if token in self.eos_ids:
                for e in self.eos_ids:
                    if 0 <= e < len(out):
                        out[e] = True
            else:
                out[token] = True
            return out
        found = 0
        for tok in self._ranked(grammar & cls, order, FINISH_TRIES):
            if self.preview(int(tok), repeats=False) is not None:
                out[tok] = True
                found += 1
                if found >= VERIFY_TOP_K:
                    break
        if not found:  # the need promised a finishing token: a bug, never a user error
            raise RuntimeError(f"blockgen could not finish the query {self.text!r} within the budget")
        return out

    @staticmethod
    def _ranked(candidates: np.ndarray, order: "_Order", limit: int) -> np.ndarray:
        """Up to ``limit`` candidate ids, best score first."""
        return order.best(np.flatnonzero(candidates), limit)

    # ---------------------------------------------------------------- writing
    def advance(self, token: int, prefix: Optional[Prefix] = None) -> None:
        """Write ``token`` (``prefix``: its :meth:`preview`, if already computed).

        Raises ``ValueError`` for a token that breaks the grammar or the budget: a caller
        that samples from :meth:`allowed` never gets one.
        """
        if self.done:
            raise ValueError("the sequence has ended (EOS written)")
        if self.remaining < 1:
            raise ValueError("the token budget is spent")
        finishing = self.finishing
        if prefix is None:
            prefix = self.preview(token, repeats=False)
            if prefix is None:
                raise ValueError(f"token {token} does not fit the grammar and the budget after {self.text!r}")
        if token in self.eos_ids:
            self._llm.consume_token(self.engine.eos_token_id)
            if self.no_repeats and self._repeat_at_end():
                self.forced_repeat = True
            self.done = True
            return
        if not self._llm.consume_token(token):
            raise RuntimeError(f"llguidance refused token {token} after {self.text!r}: {self._llm.get_error()}")
        if self._forced:
            self._forced.pop(0)
        elif finishing:
            need = self.prefix.need
            forced_text = need.head if need.head and not need.open_bytes else need.closers if not (need.terms or need.open_bytes) else ""
            plan = self.engine.encode(forced_text) if forced_text else ()
            if plan and plan[0] == token:
                self._forced = list(plan[1:])
        if self.no_repeats and _repeat_count(prefix.leaves) > _repeat_count(self.prefix.leaves):
            self.forced_repeat = True
        self.tokens.append(token)
        self.prefix = prefix


class _Order:
    """Ranks token ids by score (the best first); without scores, by id. Only the ids asked for are looked at."""

    def __init__(self, scores: Optional[np.ndarray], vocab: int):
        self.scores = None if scores is None else np.asarray(scores)[:vocab]

    def score(self, token: int) -> float:
        return -float(token) if self.scores is None else float(self.scores[token])

    def floor(self, margin: float) -> Optional[float]:
        """The best score minus ``margin`` (``None``: no scores)."""
        if self.scores is None:
            return None
        best = float(np.nanmax(self.scores)) if len(self.scores) else float("nan")
        return best - margin if best == best else None

    def best(self, ids: np.ndarray, limit: int) -> np.ndarray:
        if len(ids) == 0:
            return ids
        if self.scores is None:
            return ids[:limit]
        keys = -np.nan_to_num(self.scores[ids].astype(np.float64), nan=-np.inf)
        if len(ids) > limit:
            keep = np.argpartition(keys, limit - 1)[:limit]
            ids, keys = ids[keep], keys[keep]
        return ids[np.argsort(keys, kind="stable")]


# --------------------------------------------------------------------------- many sequences
def allowed_bits(
    engine: GrammarEngine,
    matchers: Sequence[Optional[BudgetedMatcher]],
    grammar_bits: np.ndarray,
    scores: Optional[np.ndarray],
    eos_ids: Iterable[int],
) -> np.ndarray:
    """:meth:`BudgetedMatcher.allowed` for a whole batch, on packed masks: the allowed tokens of
    every row as uint32 words ``(batch, words)`` in llguidance's layout.

    ``grammar_bits``: the rows' grammar masks (:meth:`BatchMasks.bits`); ``scores``: the
    model's scores ``(batch, width)`` (optional, as for ``allowed``); a row whose matcher is
    ``None`` or has ended may only write an end id (``eos_ids``), which keeps a finished beam
    finished. The tokens the per-token bound vouches for are one AND of packed words per row
    (``grammar & bound_bits[slack]``); only the others (the best few by score, as in
    ``allowed``), the end of the query and the rows that must finish are checked one by one.
    """
    batch, words = grammar_bits.shape
    vocab = engine.vocab_size
    out = np.zeros((batch, words), dtype=np.uint32)
    ends = sorted(e for e in set(eos_ids) if 0 <= e < words * 32)
    end_bits = np.zeros(words, dtype=np.uint32)
    for e in ends:
        end_bits[e >> 5] |= np.uint32(1 << (e & 31))
    eos = engine.eos_token_id
    bound_bits = engine.bound_bits
    top = len(bound_bits) - 1
    normal: list[int] = []
    slack: list[int] = []
    risky: set[int] = set()
    one_by_one: list[int] = []
    for r, m in enumerate(matchers):
        if m is None or m.done or m.remaining < 1:
            out[r] = end_bits
        elif m.finishing:
            one_by_one.append(r)
        elif m.no_repeats and m.at_risk():
            risky.add(r)
        else:
            normal.append(r)
            slack.append(min(m.remaining - 1 - m.need_tokens, top))
    if normal:
        out[normal] = grammar_bits[normal] & bound_bits[slack] & ~end_bits
    checked = sorted([*normal, *risky])
    unvouched = grammar_bits[checked] & ~out[checked] & ~end_bits
    any_unvouched = unvouched.any(axis=1)
    for i, r in enumerate(checked):
        m = matchers[r]
        assert m is not None
        row = scores[r] if scores is not None else None
        if any_unvouched[i]:
            candidates = unvouched[i]
            order = _Order(row, vocab)
            limit = VERIFY_AT_RISK if r in risky else VERIFY_TOP_K
            floor = order.floor(VERIFY_MARGIN) if limit == VERIFY_TOP_K else None
            ids = np.flatnonzero(bits_to_bool(candidates[None, :], vocab)[0])
            for tok in order.best(ids, limit):
                tok = int(tok)
                if floor is not None and order.score(tok) < floor:
                    break
                if m.preview(tok) is not None:
                    out[r, tok >> 5] |= np.uint32(1 << (tok & 31))
        if (int(grammar_bits[r, eos >> 5]) >> (eos & 31)) & 1 and m.preview(eos) is not None:
            out[r] |= end_bits
    if checked:  # nothing the scores favour fits (or avoids a repeat): the budget's own way out
        one_by_one += [r for r, some in zip(checked, out[checked].any(axis=1)) if not some]
    for r in one_by_one:
        m = matchers[r]
        assert m is not None
        grammar = m._with_eos(bits_to_bool(grammar_bits[r : r + 1], vocab)[0])
        order = _Order(scores[r] if scores is not None else None, vocab)
        allowed = m._finish_allowed(grammar, order) if m.finishing else m._any_fitting(grammar, order)
        out[r] = bool_to_bits(allowed, words)[0]
    return out


class BatchMasks:
    """The grammar masks of a batch of matchers, filled in parallel by llguidance.

    ``start(rows)`` computes the masks of ``rows`` (pairs of :class:`BudgetedMatcher` and row
    index) in a background thread (llguidance drops the GIL), so that it runs while the
    model's forward pass does, and turns them into an additive bias (0 allowed, ``-inf`` not);
    ``result(width)`` waits for it. ``threads``: the size of llguidance's pool (see the
    thread policy in :mod:`blockgen.decoding`). ``extra_eos``: ids that end a sequence
    besides the tokenizer's EOS (allowed exactly when EOS is).
    """

    def __init__(self, engine: GrammarEngine, batch: int, threads: int = 1, background: bool = True, extra_eos: Sequence[int] = (), convert: bool = True):
        self.engine = engine
        self.batch = batch
        self.threads = threads
        self.convert = convert
        self._filled = False
        self.extra_eos = [e for e in extra_eos if 0 <= e < engine.vocab_size and e != engine.eos_token_id]
        self.bitmask = engine.allocate_bitmask(batch)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="blockgen-masks") if background else None
        self._future: Optional[Future] = None
        self._result: Optional[tuple[np.ndarray, np.ndarray]] = None
        self._bias_bits: Optional[np.ndarray] = None
        #: seconds spent filling masks and building the bias (in whichever thread), per start()
        self.work_seconds: list[float] = []

    def _fill(self, pairs: list[tuple[Any, int]], copies: list[tuple[int, int]]) -> Optional[tuple[np.ndarray, np.ndarray]]:
        import time

        import llguidance.numpy

        t0 = time.perf_counter()
        if pairs:
            llguidance.numpy.fill_next_token_bitmask_par(self.engine.executor(self.threads), pairs, self.bitmask)
        for target, source in copies:
            self.bitmask[target] = self.bitmask[source]
        if not self.convert:  # the caller reads the packed bits (bits()); conversion only if asked
            self.work_seconds.append(time.perf_counter() - t0)
            return None
        return self._convert(t0)

    def _convert(self, t0: float) -> tuple[np.ndarray, np.ndarray]:
        import time

        allowed = bits_to_bool(self.bitmask, self.engine.vocab_size)
        if self.extra_eos:
            allowed = allowed.copy()
            allowed[:, self.extra_eos] = allowed[:, [self.engine.eos_token_id]]
        # the bias as raw float32 bits: 0x00000000 is 0.0, 0xFF800000 is -inf (4x faster than np.where)
        if self._bias_bits is None or self._bias_bits.shape != allowed.shape:
            self._bias_bits = np.empty(allowed.shape, dtype=np.uint32)
        np.multiply(~allowed, np.uint32(0xFF800000), out=self._bias_bits, dtype=np.uint32)
        self.work_seconds.append(time.perf_counter() - t0)
        return allowed, self._bias_bits.view(np.float32)

    @staticmethod
    def _pairs(rows: Sequence[tuple["BudgetedMatcher", int]]) -> tuple[list[tuple[Any, int]], list[tuple[int, int]]]:
        pairs, copies, first = [], [], {}
        for m, i in rows:  # a matcher shared by several rows (e.g. beams before they fork) is filled once
            if id(m) in first:
                copies.append((i, first[id(m)]))
            else:
                first[id(m)] = i
                pairs.append((m.llg_matcher, i))
        return pairs, copies

    def start(self, rows: Sequence[tuple["BudgetedMatcher", int]]) -> None:
        """Begin filling the masks of ``rows`` (matcher, row index)."""
        self.start_with(lambda: rows)

    def start_with(self, plan: Callable[[], Sequence[tuple["BudgetedMatcher", int]]]) -> None:
        """Like :meth:`start`, for the rows ``plan()`` returns; ``plan`` runs first, in the same
        background thread (e.g. advancing the matchers by the token just chosen)."""
        self.wait()
        self._filled = True
        if self._pool is None:
            self._result = self._fill(*self._pairs(plan()))
        else:
            self._future = self._pool.submit(lambda: self._fill(*self._pairs(plan())))

    def wait(self) -> None:
        """Wait for the background work started last, if any (its errors are raised here)."""
        if self._future is not None:
            future, self._future = self._future, None
            self._result = future.result()

    def _wait_bits(self) -> None:
        self.wait()
        assert self._filled, "start() was not called"

    def _wait(self) -> tuple[np.ndarray, np.ndarray]:
        import time

        self._wait_bits()
        if self._result is None:
            self._result = self._convert(time.perf_counter())
        return self._result

    def bits(self) -> np.ndarray:
        """The packed ``(batch, words)`` uint32 grammar masks (llguidance's layout: token ``32 * w + b``
        is bit ``b`` of word ``w``) of the rows given to :meth:`start`. Valid until the next :meth:`start`."""
        self._wait_bits()
        return self.bitmask.view(np.uint32)

    def allowed(self) -> np.ndarray:
        """The boolean ``(batch, vocab)`` grammar masks of the rows given to :meth:`start`."""
        return self._wait()[0]

    def result(self, width: Optional[int] = None) -> np.ndarray:
        """The float32 ``(batch, width)`` bias (0 or ``-inf``) to add to the logits; columns
        beyond the tokenizer's vocabulary are ``-inf``. Valid until the next :meth:`start`."""
        bias = self._wait()[1]
        if width is None or width == bias.shape[1]:
            return bias
        if width < bias.shape[1]:
            return bias[:, :width]
        pad = np.full((bias.shape[0], width - bias.shape[1]), -np.inf, dtype=np.float32)
        return np.concatenate([bias, pad], axis=1)

    def close(self) -> None:
        if self._future is not None:
            self._future.result()
            self._future = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> "BatchMasks":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
