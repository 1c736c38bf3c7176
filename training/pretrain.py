"""Pretrain a small Llama-architecture causal LM from scratch on the query corpus.

The model learns the full texts ``prompt + " " + completion + EOS`` (loss on every token),
so it picks up both the keywords and the query syntax; LoRA fine-tuning
(:mod:`training.finetune`) then specialises it on the completions.

    python -m training.pretrain --train training/data/train.jsonl --valid training/data/valid.jsonl \\
        --tokenizer DIR --out DIR [--hidden 256 --layers 4 --heads 4 --epochs 4 --lr 2e-3]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from training.examples import DataError, encode_pairs, full_loss, read_pairs
from training.loop import LoopConfig, LoopResult, TrainingError, run


@dataclass
class ModelSize:
    """The shape of the small Llama (``intermediate`` defaults to ~2.7 x hidden, a multiple of 32)."""

    hidden: int = 256
    layers: int = 4
    heads: int = 4
    kv_heads: int = 4
    intermediate: Optional[int] = None
    max_positions: int = 256
    rope_theta: float = 10000.0

    def intermediate_size(self) -> int:
        return self.intermediate or int(round(self.hidden * 8 / 3 / 32)) * 32


@dataclass
class PretrainConfig:
    """One pretraining run (the CLI flags, one to one)."""

    train: Union[str, Path]
    tokenizer: Union[str, Path]
    out: Union[str, Path]
    valid: Union[str, Path, None] = None
    size: ModelSize = None  # type: ignore[assignment]
    epochs: int = 4
    lr: float = 2e-3
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 160
    seed: int = 0
    warmup_ratio: float = 0.05
    weight_decay: float = 0.1
    resume: bool = False
    max_steps: Optional[int] = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.size is None:
            self.size = ModelSize()


@dataclass
class PretrainResult:
    """Where the model went, its size and the run's losses (see :class:`LoopResult`)."""

    model_dir: Path
    params: int
    loop: LoopResult
    counts: dict


def build_model(tokenizer: Any, size: ModelSize, seed: int = 0):
    """A fresh, randomly initialised ``LlamaForCausalLM`` with tied embeddings for ``tokenizer``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if size.hidden % size.heads or size.heads % size.kv_heads:
        raise ValueError("hidden must be a multiple of heads, and heads a multiple of kv_heads")
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden,
        intermediate_size=size.intermediate_size(),
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads,
        max_position_embeddings=size.max_positions,
        rope_theta=size.rope_theta,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    return model


def count_params(model: Any) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def pretrain(config: PretrainConfig) -> PretrainResult:
    """Pretrain a fresh model on the pairs of ``config.train``; saves model + tokenizer to ``config.out``."""
    from safetensors.torch import load_file

    from training.tokenizer import load_tokenizer

    train_pairs = read_pairs(config.train)
    valid_pairs = read_pairs(config.valid) if config.valid else []
    tok_dir = Path(config.tokenizer)
    if not (tok_dir / "tokenizer.json").is_file():
        raise DataError(f"{tok_dir}: no tokenizer.json (train one with training.tokenizer)")
    tokenizer = load_tokenizer(tok_dir)
    model = build_model(tokenizer, config.size, config.seed)
    train, train_counts = encode_pairs(tokenizer, train_pairs, config.max_length, config.progress, "tokenising train")
    valid, valid_counts = encode_pairs(tokenizer, valid_pairs, config.max_length, config.progress, "tokenising valid")
    train = [full_loss(e) for e in train]
    valid = [full_loss(e) for e in valid]
    counts = {"train": train_counts, "valid": valid_counts}
    params = count_params(model)
    print(f"pretraining a {params / 1e6:.2f} M-parameter Llama ({asdict(config.size)}); "
          f"train pairs {train_counts}, valid pairs {valid_counts}", flush=True)
    out = Path(config.out)

    def save(directory: Path) -> None:
        model.save_pretrained(directory)

    def load(directory: Path) -> None:
        state = load_file(str(directory / "model.safetensors"))
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if k != "lm_head.weight"]
        if missing or unexpected:
            raise ValueError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        model.tie_weights()

    loop_config = LoopConfig(
        epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, grad_accum=config.grad_accum,
        seed=config.seed, warmup_ratio=config.warmup_ratio, weight_decay=config.weight_decay,
        max_steps=config.max_steps, progress=config.progress, desc="pretraining",
    )
    meta = {"kind": "pretrain", "size": asdict(config.size), "params": params, "counts": counts}
    result = run(model, model.parameters(), train, valid, loop_config, out, save, load,
                 tokenizer.pad_token_id, resume=config.resume, meta=meta)
    if not result.stopped_early:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    return PretrainResult(out, params, result, counts)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.pretrain", description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True)
    p.add_argument("--valid")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory (tokenizer.json)")
    p.add_argument("--out", required=True)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--max-positions", type=int, default=256)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--max-length", type=int, default=160)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    a = build_parser().parse_args(argv)
    size = ModelSize(hidden=a.hidden, layers=a.layers, heads=a.heads, kv_heads=a.kv_heads, max_positions=a.max_positions)
    config = PretrainConfig(train=a.train, valid=a.valid, tokenizer=a.tokenizer, out=a.out, size=size, epochs=a.epochs,
                            lr=a.lr, batch_size=a.batch_size, grad_accum=a.grad_accum, max_length=a.max_length,
                            seed=a.seed, resume=a.resume, progress=not a.quiet)
    try:
        result = pretrain(config)
    except (DataError, TrainingError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"model: {result.model_dir} ({result.params:,} parameters); eval loss per epoch: {result.loop.eval_losses}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
