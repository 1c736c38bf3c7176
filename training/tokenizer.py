"""A small byte-level BPE tokenizer trained on the query corpus.

All 256 byte tokens are in the vocabulary (``ByteLevel.alphabet()`` as initial alphabet), so
any text can be encoded; ``<|eos|>`` ends a query and ``<|pad|>`` pads batches. Saved as a
``transformers`` ``PreTrainedTokenizerFast`` directory (``tokenizer.json`` and config) that
``AutoTokenizer.from_pretrained(dir)`` loads offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Union

EOS_TOKEN = "<|eos|>"
PAD_TOKEN = "<|pad|>"
SPECIAL_TOKENS = (EOS_TOKEN, PAD_TOKEN)
#: Pre-tokenisation of ``split_words=True``: a word never carries the blank before it (the
#: blank is a token of its own), so ``Alzheimer`` is the same tokens after a space in the
#: prompt and after ``(`` in the query, which makes copying keywords easy to learn; the
#: operators keep their blank (`` OR``), and so do brackets and quotes (`` (``, `` "``).
SPLIT_WORDS_REGEX = r" ?(?:AND|OR|NOT)(?![\p{L}\p{N}])|\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+|\s+"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 3000, min_frequency: int = 2,
                    model_max_length: int = 2048, progress: bool = True, split_words: bool = False):
    """Train a byte-level BPE tokenizer on ``texts``; returns a ``PreTrainedTokenizerFast``.

    ``split_words``: pre-tokenise with :data:`SPLIT_WORDS_REGEX` instead of GPT-2's pattern.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be at least {len(alphabet) + len(SPECIAL_TOKENS)} (bytes + special tokens)")
    tk = Tokenizer(models.BPE())
    if split_words:
        tk.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(SPLIT_WORDS_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    else:
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=alphabet,
        show_progress=progress,
    )
    tk.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


def save_tokenizer(tokenizer, directory: Union[str, Path]) -> Path:
    """Save ``tokenizer`` to ``directory`` (created if needed)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(path)
    portable_tokenizer_config(path)
    return path


def portable_tokenizer_config(directory: Union[str, Path]) -> None:
    """Make ``tokenizer_config.json`` loadable by transformers 4.x and 5.x alike.

    transformers 5 writes its own class name (``TokenizersBackend``) and load-time flags;
    ``PreTrainedTokenizerFast`` is understood by both major versions.
    """
    import json

    config_path = Path(directory) / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    for key in ("is_local", "local_files_only"):
        config.pop(key, None)
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load_tokenizer(directory: Union[str, Path], local_files_only: bool = True):
    """Load a saved tokenizer directory with ``AutoTokenizer`` (offline)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(Path(directory), local_files_only=local_files_only)


def byte_coverage(tokenizer) -> Optional[str]:
    """``None`` when every one of the 256 byte tokens is in the vocabulary, else a message."""
    from tokenizers import pre_tokenizers

    vocab = tokenizer.get_vocab()
    missing = [c for c in pre_tokenizers.ByteLevel.alphabet() if c not in vocab]
    return None if not missing else f"{len(missing)} byte tokens missing, e.g. {missing[:5]}"
