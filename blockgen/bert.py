"""A small BERT in plain torch: the default model's decoder and the reranker's sentence encoder.

``transformers`` takes 2.5-4.5 s to import its BERT code on this machine (it pulls in
``torch._dynamo`` and ``torch.distributed``), longer than the default model needs to write ten
queries. At run time blockgen therefore computes all-MiniLM-L6-v2 itself: the same weights (read
with ``safetensors``), the same arithmetic as ``transformers``' ``BertModel``/``BertLMHeadModel``
(post-LayerNorm, erf GELU, absolute positions, token type 0), and nothing else. Training keeps
``transformers`` and ``peft`` (:mod:`training.finetune`); tests check that both give the same
logits and sentence embeddings.

* :class:`Bert` (``causal=True``): a decoder with a key/value cache (a tuple of ``(key, value)``
  tensors per layer, so :mod:`blockgen.decoding` can drop finished rows) and the tied output
  layer; ``causal=False``: an encoder whose :meth:`Bert.encode` returns the last hidden states.
* :func:`merge_lora`: a PEFT LoRA adapter folded into a state dict (``W + B @ A * alpha / r``), the
  adapter's trained token rows and its ``modules_to_save``, as ``merge_and_unload`` does.

Parameter names are those of ``transformers`` (``bert.encoder.layer.0.attention.self.query.weight``),
so a checkpoint's state dict loads as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from blockgen.errors import first_line

#: Up to this many rows, the output layer is computed as ``weight @ x.T``: with one CPU thread,
#: ``F.linear`` of 2-8 rows by MiniLM's 30,525 x 384 output matrix took about 22 ms here against
#: 5-6 ms this way (the BLAS library picks a slow kernel for the few-row shape).
SMALL_BATCH_ROWS = 8


class BertFormatError(ValueError):
    """A ``config.json`` or state dict this small BERT cannot run (another architecture or option)."""


@dataclass(frozen=True)
class BertConfig:
    """The fields of a BERT ``config.json`` that the forward pass needs."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_dict(cls, data: dict) -> "BertConfig":
        """The config of a ``transformers`` BERT ``config.json`` (as a dict); :class:`BertFormatError`
        for another model type, activation or position embedding."""
        if data.get("model_type") != "bert":
            raise BertFormatError(f"not a BERT config (model_type {data.get('model_type')!r})")
        if data.get("hidden_act", "gelu") != "gelu":
            raise BertFormatError(f"hidden_act {data.get('hidden_act')!r} is not supported (only gelu)")
        if data.get("position_embedding_type", "absolute") != "absolute":
            raise BertFormatError(f"position_embedding_type {data.get('position_embedding_type')!r} is not supported")
        try:
            config = cls(**{f: data[f] for f in cls.__dataclass_fields__ if f in data})
        except TypeError as err:
            raise BertFormatError(f"incomplete BERT config: {err}") from None
        if config.hidden_size % config.num_attention_heads:
            raise BertFormatError("hidden_size is not a multiple of num_attention_heads")
        return config

    @classmethod
    def from_file(cls, path: Union[str, Path]) -> "BertConfig":
        """The config in ``path`` (a ``config.json`` or a directory holding one)."""
        p = Path(path)
        if p.is_dir():
            p = p / "config.json"
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise BertFormatError(f"cannot read {p}: {err}") from None
        return cls.from_dict(data)


@dataclass
class GenerationConfig:
    """The sampling settings and special ids a :class:`Bert` decoder carries (as ``transformers`` models do)."""

    do_sample: bool = False
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    bos_token_id: Optional[int] = None
    eos_token_id: Optional[int] = None
    pad_token_id: Optional[int] = None


@dataclass
class BertOutput:
    """What :meth:`Bert.forward` returns: ``logits`` (decoder) or ``last_hidden_state`` (encoder), and the cache."""

    logits: Optional[torch.Tensor] = None
    past_key_values: Optional[tuple] = None
    last_hidden_state: Optional[torch.Tensor] = None


def _module(**children: nn.Module) -> nn.Module:
    """A plain container, so that parameter names follow ``transformers``' layout."""
    box = nn.Module()
    for name, child in children.items():
        box.add_module(name, child)
    return box


class _Layer(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        h, eps = c.hidden_size, c.layer_norm_eps
        self.heads = c.num_attention_heads
        self.attention = _module(
            self=_module(query=nn.Linear(h, h), key=nn.Linear(h, h), value=nn.Linear(h, h)),
            output=_module(dense=nn.Linear(h, h), LayerNorm=nn.LayerNorm(h, eps=eps)),
        )
        self.intermediate = _module(dense=nn.Linear(h, c.intermediate_size))
        self.output = _module(dense=nn.Linear(c.intermediate_size, h), LayerNorm=nn.LayerNorm(h, eps=eps))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        return x.view(b, t, self.heads, h // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, past: Optional[tuple]) -> tuple[torch.Tensor, tuple]:
        att = self.attention
        q = self._split(att.self.query(x))
        k = self._split(att.self.key(x))
        v = self._split(att.self.value(x))
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        b, _, t, _ = ctx.shape
        ctx = ctx.transpose(1, 2).reshape(b, t, -1)
        x = att.output.LayerNorm(att.output.dense(ctx) + x)
        inner = F.gelu(self.intermediate.dense(x))
        return self.output.LayerNorm(self.output.dense(inner) + x), (k, v)


class Bert(nn.Module):
    """BERT (``causal``: a decoder with a KV cache and the tied output layer; else an encoder).

    Inference only: call :meth:`load` (or :func:`load_bert`) with a state dict in
    ``transformers``' names. ``forward`` takes the keywords of a ``transformers`` causal LM
    (``input_ids``, ``attention_mask`` 2-D 0/1 or 4-D additive, ``position_ids``,
    ``past_key_values``, ``logits_to_keep``), so :class:`blockgen.decoding.ModelRunner` drives it.
    """

    def __init__(self, config: BertConfig, causal: bool = True):
        super().__init__()
        c = self.bert_config = config  # ``config`` is the transformers-style flag bag below
        h = c.hidden_size
        self.causal = causal
        self.bert = _module(
            embeddings=_module(  # not initialised (``_weight``): :meth:`load` gives every embedding
                word_embeddings=nn.Embedding(c.vocab_size, h, _weight=torch.empty(c.vocab_size, h)),
                position_embeddings=nn.Embedding(c.max_position_embeddings, h,
                                                 _weight=torch.empty(c.max_position_embeddings, h)),
                token_type_embeddings=nn.Embedding(c.type_vocab_size, h, _weight=torch.empty(c.type_vocab_size, h)),
                LayerNorm=nn.LayerNorm(h, eps=c.layer_norm_eps),
            ),
            encoder=_module(layer=nn.ModuleList(_Layer(c) for _ in range(c.num_hidden_layers))),
        )
        if causal:
            self.cls = _module(predictions=_module(
                transform=_module(dense=nn.Linear(h, h), LayerNorm=nn.LayerNorm(h, eps=c.layer_norm_eps)),
            ))
            self.cls.predictions.bias = nn.Parameter(torch.zeros(c.vocab_size))
        #: ``transformers``-style settings: ``config`` for flags such as the prefix LM, sampling defaults
        self.config = SimpleNamespace(hidden_size=h, vocab_size=c.vocab_size, is_decoder=causal)
        self.generation_config = GenerationConfig()
        self.eval()
        self.requires_grad_(False)

    # ---------------------------------------------------------------- weights
    def load(self, state: dict[str, torch.Tensor]) -> "Bert":
        """Put the tensors of ``state`` (``transformers`` names, with or without the ``bert.``
        prefix) into the model, as they are (no copies: the model shares them with ``state``).

        The output layer is the input embedding matrix (tied); a checkpoint without a prediction
        head (a sentence encoder) gets a zero output bias and keeps its randomly initialised head
        transform. Raises :class:`BertFormatError` for missing or misshapen tensors."""
        own = self.state_dict()
        wanted: dict[str, torch.Tensor] = {}
        for name, tensor in state.items():
            key = name if name.startswith(("bert.", "cls.")) else "bert." + name
            if key.startswith("cls.predictions.decoder."):
                key = "cls.predictions.bias" if key.endswith("bias") else ""
            if key in own:
                wanted[key] = tensor
        missing = [k for k in own if k not in wanted and not k.startswith("cls.")]
        if missing:
            raise BertFormatError(f"the state dict lacks {len(missing)} BERT tensors, e.g. {missing[0]}")
        for key, tensor in wanted.items():
            if tuple(tensor.shape) != tuple(own[key].shape):
                raise BertFormatError(f"{key} has shape {tuple(tensor.shape)}, the config wants {tuple(own[key].shape)}")
        self.load_state_dict(wanted, strict=False, assign=True)  # the checkpoint's tensors, not copies
        return self

    def num_parameters(self) -> int:
        """The number of weights (the tied output layer counted once)."""
        return sum(p.numel() for p in self.parameters())

    # ---------------------------------------------------------------- forward
    def _mask(self, attention_mask: Optional[torch.Tensor], batch: int, steps: int, total: int,
              dtype: torch.dtype, device: torch.device) -> Optional[torch.Tensor]:
        """The additive attention mask ``(B, 1, steps, total)`` (``None``: every key, no causality)."""
        if attention_mask is not None and attention_mask.dim() == 4:
            return attention_mask[:, :, -steps:, :].to(dtype)
        keys = (torch.ones((batch, total), dtype=torch.bool, device=device) if attention_mask is None
                else attention_mask.bool())[:, None, None, :]
        if self.causal and steps > 1:
            pos = torch.arange(total, device=device)
            keys = keys & (pos[None, :] <= pos[total - steps:, None])[None, None]
        elif attention_mask is None:
            return None
        mask = torch.zeros(keys.shape, dtype=dtype, device=device)
        return mask.masked_fill_(~keys, torch.finfo(dtype).min)

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                      position_ids: Optional[torch.Tensor] = None,
                      past_key_values: Optional[tuple] = None) -> tuple[torch.Tensor, tuple]:
        """The last layer's hidden states ``(B, T, H)`` and the new cache (one ``(key, value)`` per layer)."""
        batch, steps = input_ids.shape
        past_len = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if position_ids is None:
            position_ids = torch.arange(past_len, past_len + steps, device=input_ids.device)[None].expand(batch, -1)
        emb = self.bert.embeddings
        x = emb.word_embeddings(input_ids) + emb.position_embeddings(position_ids) + emb.token_type_embeddings.weight[0]
        x = emb.LayerNorm(x)
        mask = self._mask(attention_mask, batch, steps, past_len + steps, x.dtype, x.device)
        cache = []
        for i, layer in enumerate(self.bert.encoder.layer):
            x, kv = layer(x, mask, None if past_key_values is None else past_key_values[i])
            cache.append(kv)
        return x, tuple(cache)

    def output_layer(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits of hidden states ``(..., H)``: the head transform, then the tied embedding matrix."""
        p = self.cls.predictions
        x = p.transform.LayerNorm(F.gelu(p.transform.dense(hidden)))
        weight = self.bert.embeddings.word_embeddings.weight
        flat = x.reshape(-1, x.shape[-1])
        if flat.shape[0] <= SMALL_BATCH_ROWS:
            out = (weight @ flat.t()).t() + p.bias
        else:
            out = F.linear(flat, weight, p.bias)
        return out.reshape(*x.shape[:-1], weight.shape[0])

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                position_ids: Optional[torch.Tensor] = None, past_key_values: Optional[tuple] = None,
                use_cache: bool = True, logits_to_keep: int = 0, **_ignored: Any) -> BertOutput:
        """One step (or the prefill) of the decoder; for an encoder, the last hidden states."""
        with torch.no_grad():
            hidden, cache = self.hidden_states(input_ids, attention_mask, position_ids, past_key_values)
            if not self.causal:
                return BertOutput(last_hidden_state=hidden)
            if logits_to_keep:
                hidden = hidden[:, -logits_to_keep:]
            return BertOutput(logits=self.output_layer(hidden), past_key_values=cache if use_cache else None)

    def encode(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The last hidden states ``(B, T, H)`` of a batch (no cache)."""
        with torch.no_grad():
            return self.hidden_states(input_ids, attention_mask)[0]


def read_safetensors(path: Union[str, Path]) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file (:class:`BertFormatError` when it cannot be read)."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for a damaged file
        raise BertFormatError(f"cannot read {path}: {first_line(err, 200)}") from None


def load_bert(path: Union[str, Path], causal: bool = True, state: Optional[dict[str, torch.Tensor]] = None) -> Bert:
    """The BERT in the ``transformers`` directory ``path`` (``config.json``, ``model.safetensors``).

    ``state``: tensors to use instead of the file's (a merged state dict). The vocabulary is as
    large as the word embedding matrix holds rows (a state grown for added tokens may hold more
    than ``config.json`` says)."""
    path = Path(path)
    config = BertConfig.from_file(path)
    tensors = state if state is not None else read_safetensors(path / "model.safetensors")
    rows = next((t.shape[0] for k, t in tensors.items() if k.endswith("word_embeddings.weight")), config.vocab_size)
    if rows != config.vocab_size:
        config = BertConfig(**{**config.__dict__, "vocab_size": rows})
    return Bert(config, causal=causal).load(tensors)


def merge_lora(state: dict[str, torch.Tensor], adapter: dict[str, torch.Tensor], adapter_config: dict) -> dict[str, torch.Tensor]:
    """``state`` (a BERT state dict, ``transformers`` names) with a PEFT LoRA adapter merged in.

    The adapter's tensors (``adapter_model.safetensors``, names ``base_model.model.<module>...``)
    hold ``lora_A``/``lora_B`` per target (merged as ``W + B @ A * lora_alpha / r``, and with
    ``lora_bias`` the bias as ``b + b_B * lora_alpha / r``), the rows
    of the trainable tokens (``token_adapter.trainable_tokens_delta``: the rows themselves, at
    ``trainable_token_indices``) and ``modules_to_save`` tensors (copied), as peft's
    ``merge_and_unload`` does. ``state``'s embedding matrix must already have a row for every
    trainable token id. Raises :class:`BertFormatError` for options this merge does not
    implement (DoRA, rsLoRA, per-module ranks, ``fan_in_fan_out``) or tensors that do not fit."""
    for option in ("use_dora", "use_rslora", "fan_in_fan_out"):
        if adapter_config.get(option):
            raise BertFormatError(f"adapters with {option} are not supported by blockgen's merge")
    if adapter_config.get("rank_pattern") or adapter_config.get("alpha_pattern"):
        raise BertFormatError("adapters with per-module ranks (rank_pattern/alpha_pattern) are not supported")
    if adapter_config.get("peft_type", "LORA") != "LORA":
        raise BertFormatError(f"not a LoRA adapter: {adapter_config.get('peft_type')}")
    scaling = float(adapter_config["lora_alpha"]) / float(adapter_config["r"])
    out = {(k if k.startswith(("bert.", "cls.")) else "bert." + k): v for k, v in state.items()}  # updated out of place
    prefix = "base_model.model."
    lora: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in adapter.items():
        key = name[len(prefix):] if name.startswith(prefix) else name
        if ".lora_A." in key or ".lora_B." in key:
            module, rest = key.split(".lora_", 1)
            lora.setdefault(module, {})[rest[0] if rest.endswith(".weight") else rest[0] + "_bias"] = tensor
        elif key.endswith(".token_adapter.trainable_tokens_delta"):
            target = key[: -len(".token_adapter.trainable_tokens_delta")] + ".weight"
            indices = adapter_config.get("trainable_token_indices")
            if isinstance(indices, dict):
                indices = next(iter(indices.values()))
            if not indices or len(indices) != tensor.shape[0]:
                raise BertFormatError(f"{name}: {tensor.shape[0]} rows but trainable_token_indices is {indices!r}")
            weight = out.get(target)
            if weight is None or max(indices) >= weight.shape[0] or tensor.shape[1:] != weight.shape[1:]:
                raise BertFormatError(f"{name} does not fit the base model's {target}")
            out[target] = weight.index_copy(0, torch.tensor(indices), tensor.to(weight.dtype))
        else:  # modules_to_save: the trained module itself
            out[key.replace(".modules_to_save.default.", ".")] = tensor
    for module, pair in lora.items():
        if not {"A", "B"} <= set(pair) or not set(pair) <= {"A", "B", "B_bias"}:
            raise BertFormatError(f"{module}: lora_A or lora_B is missing")
        if "B_bias" in pair:  # lora_bias: lora_B's bias, scaled as its output is, joins the layer's bias
            bias = module + ".bias"
            if bias not in out or out[bias].shape != pair["B_bias"].shape:
                raise BertFormatError(f"{module}: the LoRA bias does not fit the layer's bias")
            out[bias] = out[bias] + (pair["B_bias"].float() * scaling).to(out[bias].dtype)
        target = module + ".weight"
        if target not in out:
            raise BertFormatError(f"the adapter targets {module}, which the base model does not have")
        delta = (pair["B"].float() @ pair["A"].float()) * scaling
        if delta.shape != out[target].shape:
            raise BertFormatError(f"{module}: LoRA update {tuple(delta.shape)} does not fit {tuple(out[target].shape)}")
        out[target] = out[target] + delta.to(out[target].dtype)
    return out


__all__ = ["Bert", "BertConfig", "BertFormatError", "BertOutput", "GenerationConfig", "load_bert", "merge_lora",
           "read_safetensors"]

