"""Loading a local causal language model, its tokenizer and a PEFT LoRA adapter, with clear errors.

Nothing is downloaded: the base model and the adapter are local Hugging Face directories.
Every failure is a :class:`blockgen.errors.ModelLoadError` (or its subclass
:class:`blockgen.errors.AdapterMismatchError`) with a one-line message.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from blockgen.errors import AdapterMismatchError, ModelLoadError, first_line

DTYPES = ("float32", "float16", "bfloat16")


def check_dir(path: Union[str, Path], what: str, required: Sequence[str]) -> Path:
    """``path`` as a directory holding ``required`` files, or :class:`ModelLoadError`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelLoadError(f"{what} directory not found: {p}")
    if not p.is_dir():
        raise ModelLoadError(f"{what} must be a directory, not a file: {p}")
    missing = [name for name in required if not (p / name).exists()]
    if missing:
        raise ModelLoadError(f"{what} directory {p} has no {', '.join(missing)} (is it a Hugging Face model directory?)")
    return p


def load_base(base: Union[str, Path], dtype: Optional[str] = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a local causal LM directory; ``dtype`` one of :data:`DTYPES` or None."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = check_dir(base, "base model", ["config.json"])
    torch_dtype = None
    if dtype is not None:
        if dtype not in DTYPES:
            raise ModelLoadError(f"unknown dtype {dtype!r}; use {', '.join(DTYPES)}")
        torch_dtype = getattr(torch, dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    except Exception as err:  # a broken tokenizer.json raises many kinds of errors
        raise ModelLoadError(f"could not load the tokenizer from {base_dir}: {first_line(err)}") from None
    try:
        model = AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True, dtype=torch_dtype)
    except Exception as err:  # garbage weights: safetensors, torch and transformers errors alike
        raise ModelLoadError(f"could not load the base model from {base_dir}: {first_line(err)}") from None
    return model, tokenizer


def load_adapter(model: Any, adapter: Union[str, Path], merge: bool = True) -> Any:
    """Apply a PEFT LoRA adapter directory to ``model``, with clear errors when it does not fit."""
    from peft import PeftModel

    adapter_dir = check_dir(adapter, "adapter", ["adapter_config.json"])
    try:
        with warnings.catch_warnings():
            # peft asks transformers 5 for a renamed property; the notice is not the user's business.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            peft_model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
    except (RuntimeError, ValueError, KeyError) as err:
        raise AdapterMismatchError(f"the adapter in {adapter_dir} does not fit this base model: {first_line(err)}") from None
    except Exception as err:  # unreadable adapter weights
        raise ModelLoadError(f"could not load the adapter from {adapter_dir}: {first_line(err)}") from None
    return peft_model.merge_and_unload() if merge else peft_model


def resolve_device(device: Optional[str]) -> str:
    """``device`` checked (``cpu``, ``cuda``, ``cuda:1``, ``mps`` ...), or the default (CUDA when available)."""
    import torch

    if not device:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ModelLoadError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} asked for, but CUDA is not available here")
    if parsed.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelLoadError(f"device {device!r} asked for, but MPS is not available here")
    return str(parsed)


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """The ids that end a sequence: the tokenizer's EOS and the model's generation config's.

    A tokenizer without an EOS token but with a separator (BERT's ``[SEP]``, which a BERT
    decoder such as ``BertLMHeadModel`` writes at the end) ends sequences with it.
    """
    eos = {tokenizer.eos_token_id}
    if tokenizer.eos_token_id is None:
        eos.add(getattr(tokenizer, "sep_token_id", None))
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(gen_eos, int):
        eos.add(gen_eos)
    elif gen_eos:
        eos.update(gen_eos)
    return {e for e in eos if e is not None}
