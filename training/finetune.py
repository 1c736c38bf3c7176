"""LoRA fine-tuning of any local causal LM (Hugging Face directory) on prompt/completion pairs.

    python -m training.finetune --base DIR --train training/data/train.jsonl \\
        --valid training/data/valid.jsonl --out DIR [--rank 16 --alpha 32 --dropout 0.05 \\
        --target-modules q_proj,k_proj,v_proj,o_proj --epochs 3 --lr 2e-4 --batch-size 16 \\
        --grad-accum 1 --max-length 160 --seed 0 --resume]

The model learns ``prompt + " " + completion + EOS`` with the loss on the completion and EOS
only (:func:`training.examples.format_example`). ``--out`` receives the PEFT adapter
(``adapter_config.json`` + ``adapter_model.safetensors``, loadable with
``PeftModel.from_pretrained(base_model, out)``), ``training_log.json`` (losses per epoch) and
``checkpoints/`` (adapter + optimizer/scheduler/step state after each epoch; ``--resume``
continues from the newest).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

from training.examples import (  # noqa: F401  (re-exported: the prompt/completion contract)
    PROMPT_TEMPLATE,
    SEPARATOR,
    DataError,
    encode_pairs,
    format_example,
    format_prompt,
    read_pairs,
)
from training.answer_loss import AnswerLoss
from training.loop import LoopConfig, TrainingError, run

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


class FinetuneError(ValueError):
    """A fine-tuning run that cannot start: a missing base model, bad options, modules not found."""


@dataclass
class FinetuneConfig:
    """Everything one LoRA fine-tuning run needs (the CLI flags, one to one)."""

    base: Union[str, Path]
    train: Union[str, Path]
    out: Union[str, Path]
    valid: Union[str, Path, None] = None
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    #: Module names, or one regular expression (a ``str``); ``None``: by the kind of base
    #: (:func:`base_defaults`: the Llama-style projections, or the BERT ones).
    target_modules: Union[str, Sequence[str], None] = None
    epochs: int = 3
    lr: float = 2e-4
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 160
    seed: int = 0
    resume: bool = False
    dtype: str = "float32"
    device: Optional[str] = None
    gradient_checkpointing: bool = False
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_steps: Optional[int] = None
    save_steps: Optional[int] = None
    check_queries: bool = True
    progress: bool = True
    #: Tokens whose embeddings are trained next to the LoRA weights (peft ``trainable_token_indices``;
    #: tied output rows follow). ``None``: the tokens the base loader added (the operators of a
    #: BERT encoder base), else none.
    new_tokens: Optional[Sequence[str]] = None
    #: Modules trained in full and saved with the adapter (peft ``modules_to_save``). ``None``: the
    #: new prediction-head transform of a BERT encoder base, else none.
    modules_to_save: Optional[Sequence[str]] = None
    #: Train a prefix LM: the prompt attends both ways (:func:`blockgen.minilm.prefix_lm_mask`).
    prefix_lm: bool = False


@dataclass
class FinetuneResult:
    """The outcome of :func:`finetune`."""

    adapter_dir: Path
    log_path: Path
    global_step: int
    epochs_done: int
    train_losses: list[float]
    eval_losses: list[Optional[float]]
    initial_eval_loss: Optional[float]
    seconds: float
    trainable_params: int
    total_params: int
    counts: dict = field(default_factory=dict)
    stopped_early: bool = False


def _device(device: Optional[str]) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def load_base(base: Union[str, Path], dtype: str = "float32", seed: int = 0):
    """The tokenizer and causal LM of a local Hugging Face directory (nothing is downloaded).

    A BERT *encoder* directory (a sentence encoder such as all-MiniLM-L6-v2, the default model's
    base) is turned into a causal decoder with the operator tokens added
    (:func:`blockgen.minilm.load_decoder`; ``seed`` initialises its new prediction-head transform).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from blockgen import minilm

    path = Path(base).expanduser()
    if not (path / "config.json").is_file():
        raise FinetuneError(f"base model directory {path} not found or has no config.json")
    if dtype not in ("float32", "float16", "bfloat16"):
        raise FinetuneError(f"unknown dtype {dtype!r}; use float32, float16 or bfloat16")
    try:
        if minilm.is_bert_encoder(path):
            tokenizer, model = minilm.load_decoder(path, seed=seed)
            model = model.to(getattr(torch, dtype))
        else:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as err:
        raise FinetuneError(f"could not load the base model from {path}: {err}") from None
    if tokenizer.eos_token_id is None:
        raise FinetuneError(f"the tokenizer in {path} has no EOS token: queries need one to end")
    return tokenizer, model


def base_defaults(base: Union[str, Path]) -> dict:
    """LoRA settings that depend on the kind of base: for a BERT encoder, the BERT projections
    (:data:`blockgen.minilm.LORA_TARGETS`), the operator embeddings and the head's transform."""
    from blockgen import minilm
    from blockgen.wordpiece import OPERATORS

    if minilm.is_bert_encoder(Path(base).expanduser()):
        return {"target_modules": minilm.LORA_TARGETS, "new_tokens": OPERATORS,
                "modules_to_save": minilm.MODULES_TO_SAVE}
    return {"target_modules": DEFAULT_TARGET_MODULES, "new_tokens": (), "modules_to_save": ()}


def add_lora(model, rank: int, alpha: float, dropout: float, target_modules: Union[str, Sequence[str]],
             token_indices: Sequence[int] = (), modules_to_save: Sequence[str] = ()):
    """Wrap ``model`` with fresh LoRA adapters (a ``peft.PeftModel``).

    ``target_modules``: module names, or one regular expression (a ``str``) matched against the
    full module names. ``token_indices``: embedding rows trained next to the LoRA weights
    (``trainable_token_indices``). ``modules_to_save``: modules trained in full.
    """
    from peft import LoraConfig, get_peft_model

    if rank < 1:
        raise FinetuneError(f"LoRA rank must be >= 1, not {rank}")
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules if isinstance(target_modules, str) else list(target_modules),
        bias="none",
        task_type="CAUSAL_LM",
        trainable_token_indices=list(token_indices) or None,
        modules_to_save=list(modules_to_save) or None,
    )
    try:
        with warnings.catch_warnings():  # peft asks a transformers 5 model a deprecated question
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return get_peft_model(model, config)
    except ValueError as err:
        raise FinetuneError(f"could not add LoRA to the model (target modules {target_modules}): {err}") from None


def token_ids(tokenizer, tokens: Sequence[str]) -> list[int]:
    """The ids of ``tokens`` (each must be one token of the vocabulary)."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in tokens if t not in vocab]
    if missing:
        raise FinetuneError(f"tokens not in the vocabulary: {', '.join(missing)}")
    return [vocab[t] for t in tokens]


def finetune(
    base_dir: Union[str, Path],
    train_path: Union[str, Path],
    valid_path: Union[str, Path, None],
    out_dir: Union[str, Path],
    rank: int = 16,
    alpha: float = 32.0,
    dropout: float = 0.05,
    target_modules: Union[str, Sequence[str], None] = None,
    epochs: int = 3,
    lr: float = 2e-4,
    batch_size: int = 16,
    max_length: int = 160,
    seed: int = 0,
    resume: bool = False,
    **options,
) -> dict:
    """Fine-tune a LoRA adapter on the local model ``base_dir``; returns the run summary as a dict.

    ``options`` are the other :class:`FinetuneConfig` fields (``grad_accum``, ``dtype``,
    ``device``, ``max_steps``, ``progress`` ...). The dict holds ``adapter_dir``, ``log_path``,
    ``global_step``, ``epochs_done``, ``train_losses``, ``eval_losses`` (one per epoch),
    ``initial_eval_loss``, ``seconds``, ``trainable_params``, ``total_params``, ``counts``,
    ``stopped_early``. Same errors as :func:`run_finetune`.
    """
    try:
        config = FinetuneConfig(
            base=base_dir, train=train_path, valid=valid_path, out=out_dir, rank=rank, alpha=alpha, dropout=dropout,
            target_modules=target_modules if target_modules is None or isinstance(target_modules, str) else tuple(target_modules), epochs=epochs, lr=lr, batch_size=batch_size,
            max_length=max_length, seed=seed, resume=resume, **options,
        )
    except TypeError as err:
        raise FinetuneError(f"bad fine-tuning option: {err}") from None
    return asdict(run_finetune(config))


def run_finetune(config: FinetuneConfig) -> FinetuneResult:
    """Fine-tune a LoRA adapter on ``config.base``; see the module docstring.

    Raises :class:`DataError` for bad data files, :class:`FinetuneError` for a bad base model
    or options, :class:`training.loop.TrainingError` for a run that cannot resume.
    """
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    if config.epochs < 1 or config.batch_size < 1 or config.grad_accum < 1 or config.max_length < 2:
        raise FinetuneError("epochs, batch size and gradient accumulation must be >= 1, max length >= 2")
    train_pairs = read_pairs(config.train, validate_queries=config.check_queries)
    valid_pairs = read_pairs(config.valid, validate_queries=config.check_queries) if config.valid else []
    tokenizer, base_model = load_base(config.base, config.dtype, seed=config.seed)
    device = _device(config.device)
    torch.manual_seed(config.seed)
    defaults = base_defaults(config.base)
    new_tokens = defaults["new_tokens"] if config.new_tokens is None else config.new_tokens
    to_save = defaults["modules_to_save"] if config.modules_to_save is None else config.modules_to_save
    targets = defaults["target_modules"] if config.target_modules is None else config.target_modules
    model = add_lora(base_model, config.rank, config.alpha, config.dropout, targets,
                     token_ids(tokenizer, new_tokens), to_save)
    if config.gradient_checkpointing:
        base_model.config.use_cache = False
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model.to(device)
    train, train_counts = encode_pairs(tokenizer, train_pairs, config.max_length, config.progress, "tokenising train")
    valid, valid_counts = encode_pairs(tokenizer, valid_pairs, config.max_length, config.progress, "tokenising valid")
    if not train:
        raise DataError(f"{config.train}: every pair is longer than --max-length {config.max_length} tokens")
    counts = {"train": train_counts, "valid": valid_counts}
    print(f"train pairs: {json.dumps(train_counts)}; valid pairs: {json.dumps(valid_counts)}", flush=True)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    print(f"LoRA rank {config.rank}: {trainable:,} trainable of {total:,} parameters", flush=True)

    out = Path(config.out)

    def save(directory: Path) -> None:
        # never the whole (resized) embedding matrix: new tokens are saved as their own rows
        model.save_pretrained(directory, save_embedding_layers=False)

    def load(directory: Path) -> None:
        weights = load_file(str(directory / "adapter_model.safetensors"))
        result = set_peft_model_state_dict(model, weights)
        unexpected = getattr(result, "unexpected_keys", None)
        if unexpected:
            raise ValueError(f"unexpected adapter weights: {unexpected[:3]}")

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    loop_config = LoopConfig(
        epochs=config.epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        grad_accum=config.grad_accum,
        seed=config.seed,
        warmup_ratio=config.warmup_ratio,
        weight_decay=config.weight_decay,
        max_steps=config.max_steps,
        save_steps=config.save_steps,
        progress=config.progress,
        desc="LoRA fine-tuning",
        device=device,
        autocast_dtype=None,
    )
    meta = {
        "kind": "lora",
        "finetune_config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "counts": counts,
        "trainable_params": trainable,
        "total_params": total,
    }
    meta["finetune_config"]["target_modules"] = targets if isinstance(targets, str) else list(targets)
    result = run(AnswerLoss(model, prefix_lm=config.prefix_lm), model.parameters(), train, valid, loop_config, out, save, load, pad_id,
                 resume=config.resume, meta=meta)
    if not result.stopped_early:
        save(out)
    return FinetuneResult(
        adapter_dir=out,
        log_path=result.log_path,
        global_step=result.global_step,
        epochs_done=result.epochs_done,
        train_losses=result.train_losses,
        eval_losses=result.eval_losses,
        initial_eval_loss=result.initial_eval_loss,
        seconds=result.seconds,
        trainable_params=trainable,
        total_params=total,
        counts=counts,
        stopped_early=result.stopped_early,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.finetune",
        description="LoRA fine-tuning of a local causal LM on prompt/completion JSONL pairs.",
    )
    p.add_argument("--base", required=True, help="local Hugging Face model directory (config.json, weights, tokenizer)")
    p.add_argument("--train", required=True, help="training pairs (JSONL: prompt, completion)")
    p.add_argument("--valid", help="validation pairs (JSONL); eval loss per epoch")
    p.add_argument("--out", required=True, help="output directory for the adapter, log and checkpoints")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, default=32.0)
    p.add_argument("--dropout", type=float, default=0.05)
    p.add_argument("--target-modules",
                   help="comma-separated module names to adapt (default: " + ",".join(DEFAULT_TARGET_MODULES)
                   + "; for a BERT encoder base the BERT projections)")
    p.add_argument("--target-regex", help="a regular expression for the full names of the modules to adapt")
    p.add_argument("--new-tokens", help="comma-separated tokens whose embeddings are trained too "
                   "(default: the tokens the base loader added, e.g. AND,OR,NOT for a BERT encoder)")
    p.add_argument("--modules-to-save", help="comma-separated modules trained in full and saved with the adapter "
                   "(default: the new prediction-head transform for a BERT encoder, else none)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--max-length", type=int, default=160,
                   help="longest sequence in tokens; longer completions are cut at a block boundary or skipped")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32",
                   help="dtype of the frozen base weights (LoRA weights stay float32)")
    p.add_argument("--bf16", action="store_true", help="shorthand for --dtype bfloat16")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--gradient-checkpointing", action="store_true", help="trade compute for memory")
    p.add_argument("--warmup-ratio", type=float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (with a checkpoint)")
    p.add_argument("--save-steps", type=int, help="also checkpoint every N optimizer steps")
    p.add_argument("--no-check-queries", action="store_true",
                   help="accept completions that are not valid Boolean block queries")
    p.add_argument("--prefix-lm", action="store_true",
                   help="the prompt attends both ways (a prefix LM, for an encoder base); generation must do the same")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    def names(value: Optional[str], flag: str) -> Optional[tuple]:
        if value is None:
            return None
        items = tuple(m.strip() for m in value.split(",") if m.strip())
        if not items and flag == "--target-modules":
            raise FinetuneError(f"{flag} is empty")
        return items

    if args.target_modules and args.target_regex:
        raise FinetuneError("give --target-modules or --target-regex, not both")
    modules = args.target_regex or names(args.target_modules, "--target-modules")
    return FinetuneConfig(
        base=args.base, train=args.train, valid=args.valid, out=args.out, rank=args.rank, alpha=args.alpha,
        dropout=args.dropout, target_modules=modules, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        grad_accum=args.grad_accum, max_length=args.max_length, seed=args.seed, resume=args.resume,
        dtype="bfloat16" if args.bf16 else args.dtype, device=args.device,
        gradient_checkpointing=args.gradient_checkpointing, warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay, max_steps=args.max_steps, save_steps=args.save_steps,
        check_queries=not args.no_check_queries, progress=not args.quiet,
        new_tokens=names(args.new_tokens, "--new-tokens"), modules_to_save=names(args.modules_to_save, "--modules-to-save"),
        prefix_lm=args.prefix_lm,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    torch.set_num_threads(max(1, args.threads))
    try:
        result = run_finetune(config_from_args(args))
    except (DataError, FinetuneError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with --resume", file=sys.stderr)
        return 130
    losses = ", ".join("n/a" if x is None else f"{x:.4f}" for x in result.eval_losses)
    state = "stopped at --max-steps" if result.stopped_early else "done"
    print(f"{state}: {result.global_step} steps, {result.seconds:.0f} s; eval loss per epoch: {losses or 'n/a'}")
    print(f"adapter: {result.adapter_dir}  log: {result.log_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
