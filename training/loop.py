"""The training loop shared by LoRA fine-tuning and from-scratch pretraining.

Deterministic (a fixed seed gives the same batches, dropout masks and weights), with a tqdm
progress bar, an evaluation loss per epoch, a JSON log, and resumable checkpoints:
``<out>/checkpoints/step-N/`` holds the trainable weights (through the caller's ``save``),
plus ``state.pt`` (optimizer, scheduler, step, epoch, position in the epoch, RNG state).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from training.examples import IGNORE_INDEX, Example

CHECKPOINTS = "checkpoints"
STATE_FILE = "state.pt"
#: Batches are drawn from windows of this many batches sorted by length (less padding).
BUCKET_WINDOW = 50


class TrainingError(RuntimeError):
    """A training run that cannot start or continue (no data, a checkpoint that does not fit)."""


@dataclass
class LoopConfig:
    """Optimisation settings of one run."""

    epochs: int = 3
    lr: float = 2e-4
    batch_size: int = 8
    grad_accum: int = 1
    seed: int = 0
    warmup_ratio: float = 0.05
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    eval_batch_size: int = 32
    max_steps: Optional[int] = None  # stop (with a checkpoint) after this many optimizer steps
    save_steps: Optional[int] = None  # also checkpoint every N optimizer steps (default: each epoch only)
    keep_checkpoints: int = 1
    progress: bool = True
    desc: str = "training"
    device: str = "cpu"
    autocast_dtype: Optional[str] = None  # "bfloat16"/"float16" mixed precision on CUDA


@dataclass
class LoopResult:
    """What a run did: optimizer steps, losses per epoch, wall time and where the log is."""

    global_step: int
    epochs_done: int
    train_losses: list[float]
    eval_losses: list[float]
    initial_eval_loss: Optional[float]
    seconds: float
    log_path: Path
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)


def collate(examples: Sequence[Example], pad_id: int) -> dict:
    """Right-pad a batch: ``input_ids``, ``attention_mask`` and ``labels`` tensors."""
    import torch

    width = max(len(e) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches (lists of example indices) of one epoch, a pure function of its arguments.

    Indices are shuffled, sorted by length inside windows of ``BUCKET_WINDOW`` batches (so a
    batch holds sequences of similar length), cut into batches, and the batches shuffled.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * BUCKET_WINDOW
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches.extend(chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _loss_tokens(labels) -> int:
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


def evaluate(model: Any, examples: Sequence[Example], pad_id: int, batch_size: int = 32, device: str = "cpu",
             progress: bool = False) -> Optional[float]:
    """Mean loss per predicted token over ``examples`` (``None`` when there are none)."""
    import torch
    from tqdm.auto import tqdm

    if not examples:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]))
    with torch.no_grad():
        for start in tqdm(range(0, len(order), batch_size), desc="evaluating", leave=False, disable=not progress):
            batch = collate([examples[i] for i in order[start : start + batch_size]], pad_id)
            n = _loss_tokens(batch["labels"])
            if n == 0:
                continue
            out = model(**{k: v.to(device) for k, v in batch.items()})
            total += float(out.loss) * n
            count += n
    if was_training:
        model.train()
    return total / count if count else None


def lr_lambda(total_steps: int, warmup_ratio: float, min_lr_ratio: float) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak learning rate."""
    warmup = max(1, int(round(total_steps * warmup_ratio))) if warmup_ratio > 0 else 0

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def latest_checkpoint(out_dir: Path) -> Optional[Path]:
    """The newest ``checkpoints/step-N`` directory with a state file, if any."""
    root = Path(out_dir) / CHECKPOINTS
    if not root.is_dir():
        return None
    found = [p for p in root.iterdir() if p.name.startswith("step-") and (p / STATE_FILE).is_file()]
    if not found:
        return None
    return max(found, key=lambda p: int(p.name.split("-", 1)[1]))


def run(
    model: Any,
    params: Iterable[Any],
    train: Sequence[Example],
    valid: Sequence[Example],
    config: LoopConfig,
    out_dir: Path,
    save: Callable[[Path], None],
    load: Callable[[Path], None],
    pad_id: int,
    resume: bool = False,
    log_name: str = "training_log.json",
    meta: Optional[dict] = None,
) -> LoopResult:
    """Train ``params`` of ``model`` on ``train``; evaluate on ``valid`` after each epoch.

    ``save(dir)``/``load(dir)`` write and read the trainable weights of a checkpoint. With
    ``resume``, the newest checkpoint in ``out_dir/checkpoints`` is loaded and training goes
    on from its step (an error if there is none). The log (``out_dir/log_name``) gets one
    record per epoch: train loss, eval loss, optimizer steps, seconds.
    """
    import torch
    from tqdm.auto import tqdm

    if not train:
        raise TrainingError("no training examples (all were skipped or the data is empty)")
    if config.epochs < 1 or config.batch_size < 1 or config.grad_accum < 1:
        raise TrainingError("epochs, batch size and gradient accumulation must be >= 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / log_name
    params = [p for p in params if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    lengths = [len(e) for e in train]
    batches_per_epoch = math.ceil(len(train) / config.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(total_steps, config.warmup_ratio, config.min_lr_ratio)
    )

    global_step, epoch, batch_pos = 0, 0, 0
    history: list[dict] = []
    initial_eval: Optional[float] = None
    running_loss, running_n = 0.0, 0
    seconds_before = 0.0
    torch.manual_seed(config.seed)
    if resume:
        ckpt = latest_checkpoint(out_dir)
        if ckpt is None:
            raise TrainingError(f"--resume: no checkpoint in {out_dir / CHECKPOINTS}")
        state = torch.load(ckpt / STATE_FILE, weights_only=False)
        try:
            load(ckpt)
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise TrainingError(f"the checkpoint {ckpt} does not fit this model or configuration: {err}") from None
        scheduler.load_state_dict(state["scheduler"])
        scheduler.lr_lambdas[0] = lr_lambda(total_steps, config.warmup_ratio, config.min_lr_ratio)
        global_step, epoch, batch_pos = state["global_step"], state["epoch"], state["batch_pos"]
        history, initial_eval = state["history"], state["initial_eval"]
        running_loss, running_n = state["running_loss"], state["running_n"]
        seconds_before = state.get("seconds", 0.0)
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        print(f"resuming from {ckpt} (epoch {epoch + 1}, step {global_step})", flush=True)
    else:
        initial_eval = evaluate(model, valid, pad_id, config.eval_batch_size, config.device, config.progress)
        if initial_eval is not None:
            print(f"eval loss before training: {initial_eval:.4f}", flush=True)

    t0 = time.perf_counter()

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - t0

    def write_log(final: bool = False) -> None:
        record = {
            "meta": meta or {},
            "config": asdict(config),
            "n_train": len(train),
            "n_valid": len(valid),
            "steps_per_epoch": steps_per_epoch,
            "global_step": global_step,
            "initial_eval_loss": initial_eval,
            "epochs": history,
            "seconds": round(elapsed(), 2),
            "finished": final,
        }
        log_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    def checkpoint() -> None:
        path = out_dir / CHECKPOINTS / f"step-{global_step}"
        tmp = path.with_name(path.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        save(tmp)
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "global_step": global_step,
                "epoch": epoch,
                "batch_pos": batch_pos,
                "history": history,
                "initial_eval": initial_eval,
                "running_loss": running_loss,
                "running_n": running_n,
                "seconds": elapsed(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
            tmp / STATE_FILE,
        )
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
        old = sorted(
            (p for p in (out_dir / CHECKPOINTS).iterdir() if p.name.startswith("step-") and p != path and not p.name.endswith(".tmp")),
            key=lambda p: int(p.name.split("-", 1)[1]),
        )
        for stale in old[: max(0, len(old) - config.keep_checkpoints + 1)]:
            shutil.rmtree(stale)
        write_log()

    autocast = None
    if config.autocast_dtype and config.device.startswith("cuda"):
        autocast = getattr(torch, config.autocast_dtype)
    model.train()
    stopped = False
    bar = tqdm(total=total_steps, initial=global_step, desc=config.desc, unit="step", disable=not config.progress)
    while epoch < config.epochs and not stopped:
        batches = epoch_batches(lengths, config.batch_size, config.seed, epoch)
        micro = 0
        while batch_pos < len(batches):
            batch = collate([train[i] for i in batches[batch_pos]], pad_id)
            batch = {k: v.to(config.device) for k, v in batch.items()}
            if autocast is not None:
                with torch.autocast("cuda", dtype=autocast):
                    out = model(**batch)
            else:
                out = model(**batch)
            n = _loss_tokens(batch["labels"])
            remaining = len(batches) - (batch_pos - micro)
            group = min(config.grad_accum, remaining)
            (out.loss / group).backward()
            running_loss += float(out.loss.detach()) * n
            running_n += n
            batch_pos += 1
            micro += 1
            if micro == group:
                if config.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                global_step += 1
                micro = 0
                bar.update(1)
                bar.set_postfix(loss=f"{running_loss / max(running_n, 1):.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
                done = config.max_steps is not None and global_step >= config.max_steps
                if done or (config.save_steps and global_step % config.save_steps == 0 and batch_pos < len(batches)):
                    checkpoint()
                if done:
                    stopped = True
                    break
        if stopped:
            break
        train_loss = running_loss / max(running_n, 1)
        eval_loss = evaluate(model, valid, pad_id, config.eval_batch_size, config.device, config.progress)
        record = {
            "epoch": epoch + 1,
            "global_step": global_step,
            "train_loss": round(train_loss, 5),
            "eval_loss": None if eval_loss is None else round(eval_loss, 5),
            "seconds": round(elapsed(), 2),
        }
        history.append(record)
        eval_text = "n/a" if eval_loss is None else f"{eval_loss:.4f}"
        bar.write(f"epoch {epoch + 1}/{config.epochs}: train loss {train_loss:.4f}, eval loss {eval_text}, "
                  f"step {global_step}, {elapsed():.0f} s")
        epoch += 1
        batch_pos = 0
        running_loss, running_n = 0.0, 0
        checkpoint()
    bar.close()
    write_log(final=not stopped)
    model.eval()
    return LoopResult(
        global_step=global_step,
        epochs_done=epoch,
        train_losses=[h["train_loss"] for h in history],
        eval_losses=[h["eval_loss"] for h in history],
        initial_eval_loss=initial_eval,
        seconds=elapsed(),
        log_path=log_path,
        stopped_early=stopped,
        history=history,
    )
